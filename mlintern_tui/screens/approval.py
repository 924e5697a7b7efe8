"""The approval modal: one request at a time, one key per answer.

Keys pressed within ``GRACE_S`` of a card appearing are ignored, and so is typing that was
under way when it appeared, until a pause of ``GRACE_S`` (``widgets/type_ahead.py``): a
user typing in the prompt when the card pops up never approves anything by accident, however
long the message.

"Always" is two keys, never one: ``A`` (allow) or ``D`` (deny) shows the exact scope the
rule would cover and asks where to keep it, ``p`` this project or ``u`` all projects.

The YOLO budget pause arrives as an approval item too (tool ``yolo_budget``): ``y`` raises
the cap to the proposed amount, ``e`` types another one, ``n`` stops the turn.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static, TextArea

from agent.protocol import ApprovalItem, RuleScope
from mlintern_tui.approvals import GRACE_S
from widgets.type_ahead import KeyGuard
from widgets.approval_card import BUDGET_TOOL, ApprovalCard

__all__ = ["GRACE_S", "ApprovalAnswer", "ApprovalScreen"]


@dataclass(frozen=True)
class ApprovalAnswer:
    kind: Literal["approve", "reject", "approve_batch", "defer"]
    feedback: str | None = None
    edited_args: dict[str, Any] | None = None
    #: also keep the answer as a rule for this project or for every project
    remember: RuleScope | None = None


class ApprovalScreen(ModalScreen[ApprovalAnswer]):
    BINDINGS = [
        Binding("y", "answer('approve')", "Approve"),
        Binding("n", "answer('reject')", "Reject"),
        Binding("f", "feedback", "Reject with feedback"),
        Binding("a", "answer('approve_batch')", "Approve all in batch"),
        Binding("e", "edit", "Edit arguments"),
        Binding("A,shift+a", "always('allow')", "Always allow…"),
        Binding("D,shift+d", "always('deny')", "Always deny…"),
        Binding("p", "remember('project')", "This project", show=False),
        Binding("u", "remember('user')", "All projects", show=False),
        Binding("escape", "escape", "Leave pending"),
        Binding("ctrl+s", "save_edit", "Approve edited", show=False),
    ]
    DEFAULT_CSS = """
    ApprovalScreen { align: center middle; background: $background 50%; }
    ApprovalScreen > Vertical { width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 0 1; }
    ApprovalScreen .approval-keys { color: $text-muted; margin: 1 0 0 0; }
    ApprovalScreen.-always .approval-keys { color: $foreground; }
    ApprovalScreen Input, ApprovalScreen TextArea { display: none; }
    ApprovalScreen.-feedback #feedback { display: block; }
    ApprovalScreen.-capping #new-cap { display: block; }
    ApprovalScreen.-editing TextArea { display: block; height: 14; }
    ApprovalScreen .approval-error { color: $error; display: none; }
    ApprovalScreen.-error .approval-error { display: block; }
    """

    def __init__(self, item: ApprovalItem, position: int, total: int, grace_s: float = GRACE_S,
                 project: str | None = None):
        super().__init__()
        self.item = item
        self.position = position
        self.total = total
        self.grace_s = grace_s
        #: the directory a "this project" rule is kept for (shown in the scope choice)
        self.project = project
        self.is_budget = item.tool == BUDGET_TOOL
        self._always: Literal["allow", "deny"] | None = None
        self._keys: KeyGuard | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield ApprovalCard(self.item, self.position, self.total)
            yield Input(placeholder="Why reject? The agent sees this. Enter sends, escape goes back.", id="feedback")
            if self.is_budget:
                yield Input(self._proposed_cap(), placeholder="New cap in dollars, e.g. 10", id="new-cap")
            yield TextArea(json.dumps(self.item.arguments, indent=2, ensure_ascii=False), language="json", id="edit")
            yield Static("", classes="approval-error")
            yield Static(self.key_hint(), classes="approval-keys")

    def on_mount(self) -> None:
        # no answer within the grace period, nor from typing under way when the card opened (a
        # message for the running turn): a key is an answer after a pause as long as the grace
        self._keys = KeyGuard(self.app, self.grace_s, grace_s=self.grace_s)
        self.app.bell()

    # ------------------------------------------------------------------ what the keys say

    def key_hint(self) -> Content:
        if self.is_budget:
            return Content(f"y raise the cap to ${self._proposed_cap()} · e another amount · n stop here · "
                           "esc leave pending")
        text = "y approve · n reject · f reject with feedback · "
        if self.total > 1:  # on a card of its own, a is y: not worth the space
            text += "a approve all in this batch · "
        text += "e edit arguments · "
        if self.item.suggested_rule is not None:
            text += "A always allow… · D always deny… · "
        return Content(text + "esc leave pending")

    def _always_hint(self, effect: str) -> Content:
        rule = self.item.suggested_rule
        assert rule is not None
        where = f" ({self.project})" if self.project else ""
        now = "this call runs now" if effect == "allow" else "this call is rejected now"
        # what a deny covers beyond its prefix (find -delete, python -c …): a template
        # variable, never markup, since it holds "$(...)"
        from agent import rules as R

        note = R.deny_note(rule) if effect == "deny" else ""
        return Content.from_markup(
            f"[b]Always {effect}[/] $scope ($now), kept\n" + ("[dim]$note[/]\n" if note else "")
            + "[b $accent]p[/] for this project$where · [b $accent]u[/] for all your projects · [b $accent]esc[/] back",
            scope=rule.label, now=now, where=where, note=note)

    def _proposed_cap(self) -> str:
        value = self.item.arguments.get("new_cap_usd")
        return f"{float(value):.2f}" if isinstance(value, (int, float)) else ""

    # ------------------------------------------------------------------ state

    def _in_grace(self) -> bool:
        """Whether a key coming now would be ignored."""
        return self._keys is None or self._keys.typing_now()

    def _not_an_answer(self) -> bool:
        """The key being handled came too soon: in the grace period, or in typing that was under
        way when the card opened and has not paused since."""
        return self._keys is None or not self._keys.is_answer()

    @property
    def _typing(self) -> bool:
        return self.has_class("-feedback") or self.has_class("-editing") or self.has_class("-capping")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # while typing feedback or editing, letters are text, not answers
        if self._typing and action in ("answer", "feedback", "edit", "always", "remember"):
            return False
        # choosing where to keep a rule: only the scope keys and esc
        if self._always is not None:
            return action in ("remember", "escape")
        if action == "remember":
            return False
        if action == "always":
            return self.item.suggested_rule is not None and not self.is_budget
        if self.is_budget and (action == "feedback" or (action == "answer" and parameters == ("approve_batch",))):
            return False  # one question, and the agent never reads a reason for it
        return True

    def _back(self) -> None:
        self._always = None
        self.remove_class("-feedback", "-editing", "-capping", "-error", "-always")
        self.query_one(".approval-keys", Static).update(self.key_hint())
        self.set_focus(None)

    # ------------------------------------------------------------------ actions

    def action_answer(self, kind: str) -> None:
        if self._not_an_answer():
            return
        self.dismiss(ApprovalAnswer(kind))  # type: ignore[arg-type]

    def action_always(self, effect: str) -> None:
        if self._not_an_answer():
            return
        self._always = effect  # type: ignore[assignment]
        self.add_class("-always")
        self.query_one(".approval-keys", Static).update(self._always_hint(effect))

    def action_remember(self, scope: str) -> None:
        if self._not_an_answer() or self._always is None:
            return
        kind = "approve" if self._always == "allow" else "reject"
        self.dismiss(ApprovalAnswer(kind, remember=scope))  # type: ignore[arg-type]

    def action_feedback(self) -> None:
        if self._not_an_answer():
            return
        self.add_class("-feedback")
        self.query_one("#feedback", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "new-cap":
            self._submit_cap(event.value)
            return
        text = event.value.strip()
        self.dismiss(ApprovalAnswer("reject", feedback=text or None))

    def _submit_cap(self, text: str) -> None:
        try:
            cap = float(text.strip().lstrip("$").replace(",", ""))
            if not math.isfinite(cap) or cap < 0:
                raise ValueError
        except ValueError:
            self.add_class("-error")
            self.query_one(".approval-error", Static).update(
                Content(f"Not a dollar amount: {text!r}. Type a number such as 10 or 12.50."))
            return
        self.dismiss(ApprovalAnswer("approve", edited_args={"new_cap_usd": round(cap, 2)}))

    def action_edit(self) -> None:
        if self._not_an_answer():
            return
        if self.is_budget:
            self.add_class("-capping")
            self.query_one(".approval-keys", Static).update("enter raise the cap to this amount · esc back")
            cap = self.query_one("#new-cap", Input)
            cap.focus()
            cap.action_select_all()
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
            self.query_one(".approval-error", Static).update(Content(f"Not valid: {exc}"))
            return
        self.dismiss(ApprovalAnswer("approve", edited_args=args))

    def action_escape(self) -> None:
        if self._typing or self._always is not None:
            self._back()
            return
        self.dismiss(ApprovalAnswer("defer"))
