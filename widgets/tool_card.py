"""A tool call in the conversation: its header (tool, the argument that says what it does,
state) and its output, folded until expanded."""

from __future__ import annotations

import json
from typing import Any

from textual.content import Content
from textual.widget import Widget

STATE_ICONS = {
    "pending": "…",
    "waiting": "⏸",
    "approved": "✓",
    "running": "⋯",
    "completed": "✓",
    "failed": "✗",
    "rejected": "✗",
    "cancelled": "⊘",
    "abandoned": "⊘",
}


def key_arguments(tool: str, args: dict[str, Any], limit: int = 90) -> str:
    """The one argument that says what a call does, for the card header."""
    for key in ("command", "path", "operation", "url", "query", "repo_id"):
        if key in args and isinstance(args[key], (str, int, float)):
            text = str(args[key])
            break
    else:
        if tool == "plan_tool" and isinstance(args.get("todos"), list):
            text = f"{len(args['todos'])} items"
        else:
            text = json.dumps(args, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ToolCard(Widget, can_focus=True):
    """A tool call: header with tool, key argument and state; output collapsed until
    expanded (enter/space on the card, or ctrl+o for the latest card).

    One widget, drawn by ``render`` (not a header and a body widget): every layout pass
    walks every mounted widget, and long autonomous runs mount hundreds of cards."""

    BINDINGS = [("enter,space", "toggle", "Expand output")]
    #: lines of output an expanded card shows (the full text stays in the history)
    SHOWN_LINES = 40
    DEFAULT_CSS = """
    ToolCard { height: auto; margin: 1 0 0 0; padding: 0 1; border-left: thick $secondary; }
    ToolCard:focus { background: $boost; }
    ToolCard.-failed { border-left: thick $error; }
    ToolCard.-waiting { border-left: thick $warning; }
    """

    def __init__(self, call_id: str, tool: str, arguments: dict[str, Any]):
        super().__init__(id=f"call-{_safe_id(call_id)}")
        self.call_id = call_id
        self.tool = tool
        self.arguments = arguments
        self.state = "pending"
        self.output = ""

    @property
    def expanded(self) -> bool:
        return self.has_class("-expanded")

    def render(self) -> Content:
        icon = STATE_ICONS.get(self.state, "·")
        style = {"failed": "$error", "rejected": "$error", "waiting": "$warning", "completed": "$success"}.get(self.state, "$foreground-muted")
        count = self.output.count("\n") + 1
        lines = f" · {count} line{'s' if count != 1 else ''}" if self.output else ""
        hint = "" if not self.output else (" ▾" if self.expanded else " ▸")
        header = Content.from_markup(f"[b $secondary]$tool[/] $args  [{style}]{icon} $state$lines[/]$hint",
                                     tool=self.tool, args=key_arguments(self.tool, self.arguments), state=self.state,
                                     lines=lines, hint=hint)
        if not (self.expanded and self.output):
            return header
        body_lines = self.output.splitlines()
        shown = body_lines[: self.SHOWN_LINES]
        if len(body_lines) > len(shown):
            shown.append(f"… {len(body_lines) - len(shown):,} more lines (the model saw the full output)")
        body = Content("\n".join("  " + line for line in shown)).stylize("$foreground-muted")
        return Content("\n").join([header, body])

    def header_text(self) -> str:
        return key_arguments(self.tool, self.arguments)

    def set_state(self, state: str) -> None:
        self.state = state
        self.set_class(state in ("failed", "rejected"), "-failed")
        self.set_class(state == "waiting", "-waiting")
        self.refresh(layout=self.expanded)

    def set_output(self, output: str, success: bool) -> None:
        self.output = output
        self.set_state("completed" if success else ("failed" if self.state not in ("rejected", "cancelled", "abandoned") else self.state))

    def action_toggle(self) -> None:
        self.toggle_class("-expanded")
        self.refresh(layout=True)


def _safe_id(call_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in call_id)
