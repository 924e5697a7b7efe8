"""A message the user sent, as the conversation shows it: sent, queued for after the turn, or
sent while the agent worked (a steer) - waiting for the agent's next step, or joined there."""

from __future__ import annotations

from typing import Literal

from textual.content import Content
from textual.widgets import Static

#: a message sent while the agent worked (``steer``): waiting for the next step, joined the
#: turn there, or never sent (the conversation was replaced first)
SteerState = Literal["pending", "landed", "dropped"]
STEER_LABELS = {
    "pending": "[b $accent]↳ joins at the next step ·[/] ",
    "landed": "[b $accent]↳ sent while working ·[/] ",
    "dropped": "[b $foreground-muted]↳ not sent (new conversation) ·[/] ",
}


class UserBlock(Static):
    DEFAULT_CSS = """
    UserBlock {
        margin: 1 0 0 0;
        padding: 0 1;
        background: $boost;
        border-left: thick $primary;
    }
    UserBlock.-queued { border-left: thick $warning; color: $text-muted; }
    UserBlock.-steer-pending, UserBlock.-steer-dropped { border-left: thick $accent; color: $text-muted; }
    UserBlock.-steer-landed { border-left: thick $accent; }
    UserBlock.-pinned { margin: 0; border-top: blank; border-title-color: $accent; border-title-style: bold; }
    UserBlock.-selected { border-left: outer $accent; background: $accent 20%; }
    """

    def __init__(self, text: str, queued: bool = False, steer: SteerState | None = None):
        super().__init__(classes="-queued" if queued else "")
        self.text = text
        self.queued = queued
        self.steer: SteerState | None = None
        if steer is not None:
            self.set_steer(steer)
        else:
            self._refresh_content()

    @property
    def steered(self) -> bool:
        """Sent while a turn ran: it belongs to that turn, it does not start one."""
        return self.steer is not None

    def _refresh_content(self) -> None:
        if self.queued:
            label = Content.from_markup("[b $warning]queued[/] ")
        elif self.steer is not None:
            label = Content.from_markup(STEER_LABELS[self.steer])
        else:
            label = Content("")
        self.update(label + Content(self.text))

    def set_steer(self, state: SteerState) -> None:
        if self.steer is not None:
            self.remove_class(f"-steer-{self.steer}")
        self.steer = state
        self.add_class(f"-steer-{state}")
        self._refresh_content()

    def mark_delivered(self) -> None:
        self.queued = False
        self.remove_class("-queued")
        self._refresh_content()
