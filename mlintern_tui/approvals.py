"""The approval queue as the app runs it: one modal card per request, in arrival order;
the batch goes back to the engine once every item is decided. Escape leaves the rest
pending (ctrl+r reopens them); a typed message moves on without them.

Cards are shown from a worker (``push_screen_wait``), never awaited in a message handler.
Mixed into ``MLInternApp``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work

if TYPE_CHECKING:
    from agent.protocol import ApprovalRequired, ToolDecision

#: keys pressed within this many seconds of a card appearing are ignored: a user typing in the
#: prompt when a card opens must not answer it by accident (mlintern_tui/screens/approval.py)
GRACE_S = 0.4


class ApprovalsMixin:
    # set by the app's __init__
    session: Any
    cwd: Path | None
    pending_approval: ApprovalRequired | None
    _pending_answers: dict[str, ToolDecision]
    #: requests that came while another was being reviewed (research sub-agents ask while the
    #: turn runs, several at once): reviewed in arrival order, never replacing an open one
    _approval_backlog: list[ApprovalRequired]
    approval_grace_s: float

    def request_approval(self, event: ApprovalRequired) -> None:
        # the turn now waits for the user: a typed message is sent (and abandons these
        # calls) rather than queued behind an approval nobody is looking at; a research
        # sub-agent's question comes while the turn still runs
        if event.parent_call_id is None:
            self.update_status(busy=False)
        if self.pending_approval is not None and self.pending_approval is not event:
            self._approval_backlog.append(event)
            return
        self._start_review(event)

    def _start_review(self, event: ApprovalRequired) -> None:
        self.pending_approval = event
        self._pending_answers = {}
        self._approval_worker = self.review_approvals()

    def clear_approvals(self) -> None:
        """The turn is over (answered, abandoned or cancelled): nothing is left to reopen."""
        self.pending_approval = None
        self._approval_backlog = []

    @work(exclusive=True, group="approvals", exit_on_error=False)
    async def review_approvals(self) -> None:
        """One modal per request, in arrival order; the batch is sent when all are decided."""
        event = self.pending_approval
        if event is None:
            return
        from agent.protocol import ExecApproval, ToolDecision
        from mlintern_tui.screens.approval import ApprovalScreen  # the first card loads it, not the first frame

        items = event.items
        for index, item in enumerate(items, 1):
            if item.tool_call_id in self._pending_answers:
                continue
            answer = await self.push_screen_wait(
                ApprovalScreen(item, index, len(items), self.approval_grace_s, project=self.project_dir()))
            if answer.kind == "defer":
                left = len(items) - len(self._pending_answers)
                if event.parent_call_id is not None:  # the turn waits for it: a typed message would only queue
                    await self.notice("info", f"The research agent waits for {left} answer(s): ctrl+r to review "
                                              "them, or esc to stop the turn.")
                else:
                    await self.notice("info", f"{left} approval(s) left pending; ctrl+r to review them, or type a "
                                              "message to move on without them.")
                return
            if answer.kind == "approve_batch":
                # the rest of the batch, except calls a human must see on their own
                # (scheduled jobs): those still get their card
                for rest in items:
                    if rest is item or not rest.always_ask:
                        self._pending_answers.setdefault(rest.tool_call_id,
                                                         ToolDecision(tool_call_id=rest.tool_call_id, approved=True))
                continue
            self._pending_answers[item.tool_call_id] = ToolDecision(
                tool_call_id=item.tool_call_id, approved=answer.kind == "approve",
                feedback=answer.feedback, edited_args=answer.edited_args, remember=answer.remember,
            )
        decisions = [self._pending_answers[i.tool_call_id] for i in items]
        self.pending_approval = None
        self._pending_answers = {}
        self.submit(ExecApproval(decisions=decisions))
        if self._approval_backlog:
            self.call_later(self._start_review, self._approval_backlog.pop(0))

    def project_dir(self) -> str | None:
        """Where a "this project" rule applies: the session's working directory."""
        if self.session is not None:
            return str(self.session.cwd)
        return str(self.cwd) if self.cwd is not None else None

    def action_review_approvals(self) -> None:
        if self.pending_approval is not None:
            self._approval_worker = self.review_approvals()
