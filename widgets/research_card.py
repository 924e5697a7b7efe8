"""The research card: a ``research`` call and its sub-agent's work, live.

A research call runs an independent agent for a minute or more; a bare tool card would say
"running" all that time. This card streams the sub-agent's own tool calls as they happen
(each with its state), its model calls' tokens and cost, and its last progress line; when
the report arrives the card keeps the steps and offers the report behind enter/space, like
any tool card.

One widget drawn by ``render`` (no child per step): a long research run makes dozens of
calls, and every mounted widget costs every layout pass.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from textual.content import Content

from widgets.tool_card import STATE_ICONS, ToolCard, key_arguments

STATE_STYLES = {"failed": "$error", "rejected": "$error", "waiting": "$warning", "completed": "$success",
                "cancelled": "$warning"}


@dataclass(frozen=True)
class ResearchStep:
    call_id: str
    tool: str
    summary: str
    state: str = "running"
    #: why a step failed (the first line of its result), shown under it
    note: str = ""


def step_summary(arguments: dict[str, Any], limit: int = 72) -> str:
    """A sub-agent's call in a few words: its argument values, in order ("read_paper · 2406.12345 · 4")."""
    parts = [" ".join(str(v).split()) for v in arguments.values() if isinstance(v, (str, int, float)) and str(v).strip()]
    text = " · ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ResearchCard(ToolCard):
    """A ``ToolCard`` whose body, collapsed, is the sub-agent's latest steps."""

    #: steps shown while collapsed (all of them when expanded)
    RECENT_STEPS = 4
    DEFAULT_CSS = """
    ResearchCard { border-left: thick $accent; }
    ResearchCard.-failed { border-left: thick $error; }
    ResearchCard.-waiting { border-left: thick $warning; }
    """

    def __init__(self, call_id: str, tool: str, arguments: dict[str, Any]):
        super().__init__(call_id, tool, arguments)
        self.steps: tuple[ResearchStep, ...] = ()
        self.tokens = 0
        self.cost_usd = 0.0
        self.unknown_cost = False
        self.llm_calls = 0
        self.status_line = ""

    # ------------------------------------------------------------------ fed by the bridge

    def add_step(self, call_id: str, tool: str, arguments: dict[str, Any]) -> None:
        if any(s.call_id == call_id for s in self.steps):
            return
        self.steps = (*self.steps, ResearchStep(call_id, tool, step_summary(arguments)))
        self._changed()

    def set_step_state(self, call_id: str, state: str) -> None:
        self.steps = tuple(replace(s, state=state) if s.call_id == call_id else s for s in self.steps)
        self._changed()

    def set_step_result(self, call_id: str, output: str, success: bool) -> None:
        first = next((line.strip() for line in output.splitlines() if line.strip()), "")
        note = "" if success else " ".join(first.removeprefix("ERROR:").split())[:110]
        self.steps = tuple(replace(s, state="completed" if success else "failed", note=note)
                           if s.call_id == call_id else s for s in self.steps)
        self._changed()

    def add_llm_call(self, tokens: int, cost_usd: float | None) -> None:
        self.llm_calls += 1
        self.tokens += tokens
        if cost_usd is None:
            self.unknown_cost = True
        else:
            self.cost_usd += cost_usd
        self.refresh()

    def set_status(self, line: str) -> None:
        if line.startswith(("tokens:", "▸ ")):
            return  # the card shows these itself
        self.status_line = " ".join(line.split())[:100]
        self.refresh()

    def _changed(self) -> None:
        self.refresh(layout=True)

    # ------------------------------------------------------------------ drawing

    def render(self) -> Content:
        icon = STATE_ICONS.get(self.state, "·")
        style = STATE_STYLES.get(self.state, "$foreground-muted")
        cost = f"${self.cost_usd:.4f}" + (" + unknown" if self.unknown_cost else "")
        meter = f"{len(self.steps)} tool call{'s' if len(self.steps) != 1 else ''} · {self.tokens:,} tokens · {cost}"
        hint = " ▾" if self.expanded else " ▸"
        header = Content.from_markup(
            f"[b $accent]research[/] $task  [{style}]$icon $state[/] [dim]· $meter[/]$hint",
            task=key_arguments("research", {"query": self.arguments.get("task", "")}, limit=70),
            icon=icon, state=self.state, meter=meter, hint=hint,
        )
        lines = [header]
        steps = self.steps if self.expanded else self.steps[-self.RECENT_STEPS:]
        hidden = len(self.steps) - len(steps)
        if hidden:
            lines.append(Content(f"  … {hidden} earlier call{'s' if hidden != 1 else ''} (enter to expand)")
                         .stylize("$foreground-muted"))
        for step in steps:
            s_style = STATE_STYLES.get(step.state, "$foreground-muted")
            lines.append(Content.from_markup(f"  [{s_style}]$icon[/] [b]$tool[/] [dim]$summary[/]",
                                             icon=STATE_ICONS.get(step.state, "·"),
                                             tool=step.tool, summary=step.summary))
            if step.note:  # one line: cut to the card's width rather than wrapped under the steps
                room = max(20, (self.size.width or 80) - 8)
                note = step.note if len(step.note) <= room else step.note[: room - 1] + "…"
                lines.append(Content(f"      {note}").stylize(f"{s_style} italic"))
        if self.status_line and self.state in ("running", "pending", "approved"):
            lines.append(Content(f"  {self.status_line}").stylize("italic $foreground-muted"))
        if self.expanded and self.output:
            body = self.output.splitlines()
            shown = body[: self.SHOWN_LINES]
            if len(body) > len(shown):
                shown.append(f"… {len(body) - len(shown):,} more lines (the model saw the full report)")
            lines.append(Content("\n".join("  " + line for line in shown)))
        return Content("\n").join(lines)
