"""The approval modal: one request at a time, one key per answer.

Keys pressed within ``GRACE_S`` of a card appearing are ignored, so a user typing in the
prompt when the card pops up never approves anything by accident.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static, TextArea

from agent.protocol import ApprovalItem
from widgets.approval_card import ApprovalCard

GRACE_S = 0.4


@dataclass(frozen=True)
class ApprovalAnswer:
    kind: Literal["approve", "reject", "approve_batch", "defer"]
    feedback: str | None = None
    edited_args: dict[str, Any] | None = None


class ApprovalScreen(ModalScreen[ApprovalAnswer]):
    BINDINGS = [
        Binding("y", "answer('approve')", "Approve"),
        Binding("n", "answer('reject')", "Reject"),
        Binding("f", "feedback", "Reject with feedback"),
        Binding("a", "answer('approve_batch')", "Approve all in batch"),
        Binding("e", "edit", "Edit arguments"),
        Binding("escape", "escape", "Leave pending"),
        Binding("ctrl+s", "save_edit", "Approve edited", show=False),
    ]
    DEFAULT_CSS = """
    ApprovalScreen { align: center middle; background: $background 50%; }
    ApprovalScreen > Vertical { width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 0 1; }
    ApprovalScreen .approval-keys { color: $text-muted; margin: 1 0 0 0; }
    ApprovalScreen Input, ApprovalScreen TextArea { display: none; }
    ApprovalScreen.-feedback Input { display: block; }
    ApprovalScreen.-editing TextArea { display: block; height: 14; }
    ApprovalScreen .approval-error { color: $error; display: none; }
    ApprovalScreen.-error .approval-error { display: block; }
    """

    def __init__(self, item: ApprovalItem, position: int, total: int, grace_s: float = GRACE_S):
        super().__init__()
        self.item = item
        self.position = position
        self.total = total
        self.grace_s = grace_s
        self._shown_at = float("inf")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield ApprovalCard(self.item, self.position, self.total)
            yield Input(placeholder="Why reject? The agent sees this. Enter sends, escape goes back.", id="feedback")
            yield TextArea(json.dumps(self.item.arguments, indent=2, ensure_ascii=False), language="json", id="edit")
            yield Static("", classes="approval-error")
            yield Static("y approve · n reject · f reject with feedback · a approve all in this batch · "
                         "e edit arguments · esc leave pending", classes="approval-keys")

    def on_mount(self) -> None:
        self._shown_at = time.monotonic()
        self.app.bell()

    def _in_grace(self) -> bool:
        return time.monotonic() - self._shown_at < self.grace_s

    @property
    def _typing(self) -> bool:
        return self.has_class("-feedback") or self.has_class("-editing")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # while typing feedback or editing, letters are text, not answers
        if self._typing and action in ("answer", "feedback", "edit"):
            return False
        return True

    def action_answer(self, kind: str) -> None:
        if self._in_grace():
            return
        self.dismiss(ApprovalAnswer(kind))  # type: ignore[arg-type]

    def action_feedback(self) -> None:
        if self._in_grace():
            return
        self.add_class("-feedback")
        self.query_one("#feedback", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        self.dismiss(ApprovalAnswer("reject", feedback=text or None))

    def action_edit(self) -> None:
        if self._in_grace():
            return
        self.add_class("-editing")
        self.query_one(".approval-keys", Static).update("ctrl+s approve with these arguments · esc back")
        self.query_one("#edit", TextArea).focus()

    def action_save_edit(self) -> None:
        if not self.has_class("-editing"):
            return
        text = self.query_one("#edit", TextArea).text
        try:
            args = json.loads(text)
            if not isinstance(args, dict):
                raise ValueError("the arguments must be a JSON object")
        except (json.JSONDecodeError, ValueError) as exc:
            self.add_class("-error")
            self.query_one(".approval-error", Static).update(f"Not valid: {exc}")
            return
        self.dismiss(ApprovalAnswer("approve", edited_args=args))

    def action_escape(self) -> None:
        if self._typing:
            self.remove_class("-feedback", "-editing", "-error")
            self.query_one(".approval-keys", Static).update(
                "y approve · n reject · f reject with feedback · a approve all in this batch · "
                "e edit arguments · esc leave pending")
            self.set_focus(None)
            return
        self.dismiss(ApprovalAnswer("defer"))
