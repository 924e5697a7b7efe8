"""The agent's plan as a checklist: pending, in progress, done, and "k/n done"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

if TYPE_CHECKING:
    from agent.protocol import PlanItem

MARKS = {"completed": ("✓", "$success"), "in_progress": ("▸", "$accent"), "pending": ("○", "$foreground-muted")}


class PlanView(Widget):
    DEFAULT_CSS = """
    PlanView { height: auto; max-height: 50%; padding: 0 1; border: round $panel; border-title-color: $text-muted; }
    PlanView.-empty > .plan-items { color: $text-muted; text-style: italic; }
    PlanView > .plan-items { height: auto; }
    """

    plan: reactive[tuple[PlanItem, ...]] = reactive((), recompose=True)

    def on_mount(self) -> None:
        self._update_title()

    def watch_plan(self) -> None:
        self._update_title()

    def _update_title(self) -> None:
        done = sum(1 for p in self.plan if p.status == "completed")
        self.border_title = f"Plan {done}/{len(self.plan)} done" if self.plan else "Plan"
        self.set_class(not self.plan, "-empty")

    def compose(self) -> ComposeResult:
        if not self.plan:
            yield Static("No plan yet. The agent writes one for tasks of three or more steps.", classes="plan-items")
            return
        lines = []
        for item in self.plan:
            mark, colour = MARKS.get(item.status, ("·", "$foreground-muted"))
            style = "strike $foreground-muted" if item.status == "completed" else ("b" if item.status == "in_progress" else "")
            lines.append(Content.from_markup(f"[{colour}]{mark}[/] [{style}]$text[/]" if style else f"[{colour}]{mark}[/] $text",
                                             text=item.content))
        yield Static(Content("\n").join(lines), classes="plan-items")
