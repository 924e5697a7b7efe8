"""The tool calls of a turn: decide, run, suspend for approval, resume.

The policy decides every call of a batch at once: allowed calls run concurrently, each
isolated, denied ones get a result that says why, and the rest wait for the user - the turn
is then suspended (``ApprovalRequired``) with the calls kept in ``ToolCalls.pending`` until
the user answers (``resume``), sends a new message (abandoned) or interrupts (cancelled).
The YOLO budget pause is the same suspension with no calls: an item that asks whether to
raise the cap.

Every call gets exactly one result in the history, in the model's call order, whatever
happened to it; the texts below are what the model reads when a call did not run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.policy import Decision
from agent.protocol import (
    ApprovalItem,
    ApprovalRequired,
    Guard,
    Processing,
    ToolCallEvent,
    ToolDecision,
    ToolLog,
    ToolOutput,
    ToolState,
)
from agent.tools.base import ToolResult
from agent.tools.router import ParsedCall

if TYPE_CHECKING:
    from agent.loop import TurnEngine

log = logging.getLogger(__name__)
#: how long an approval card waits for a call's review (a Hub write's repo lookup)
REVIEW_TIMEOUT_S = 15.0
REJECTED = "The user rejected this call; it was NOT executed."
ABANDONED = "Abandoned: the user sent a new message instead of approving this call; it was NOT executed."
CANCELLED = "Cancelled: the user interrupted the agent; the call was stopped."
BUDGET_TOOL = "yolo_budget"
BUDGET_STOPPED = ("Stopped: the YOLO budget is spent (${spent:.2f} of the ${cap:.2f} cap). Raise it with "
                  "/yolo <dollars> (or --budget) and send a message to continue.")
CANCELLED_MAYBE_DONE = (
    "Interrupted by the user while this call was running; it may or may not have completed. "
    "Check its effect (e.g. read the file) before relying on it."
)


@dataclass
class Pending:
    calls: list[ParsedCall]
    reasons: dict[str, str]
    #: call id -> the scope "always" would save
    suggested: dict[str, Any] = field(default_factory=dict)
    #: set when the agent paused because the YOLO budget is spent (no calls then)
    budget: ApprovalItem | None = None


async def gather_reviews(calls: list[ParsedCall], tool_context: Any) -> dict[str, Any]:
    """What each gated call would change (a Hub write's files, sizes and card diff), for its
    approval card: looked up concurrently, read-only, each within REVIEW_TIMEOUT_S. A review
    that fails leaves the card without one (the card still shows the arguments)."""

    async def one(call: ParsedCall) -> Any:
        if call.tool is None or call.error:
            return None
        try:
            return await asyncio.wait_for(call.tool.review(call.params, tool_context(call.id, call.name)),
                                          REVIEW_TIMEOUT_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("review of %s %s failed: %r", call.name, call.id, exc)
            return None

    found = await asyncio.gather(*(one(c) for c in calls))
    return {c.id: r for c, r in zip(calls, found) if r is not None}


class ToolCalls:
    def __init__(self, engine: TurnEngine):
        self.engine = engine
        #: the suspension waiting for the user's answer, if any
        self.pending: Pending | None = None
        #: how many calls of a batch run at once (EngineSettings.max_parallel_tools)
        self._slots: asyncio.Semaphore | None = None
        self._slots_size = 0

    def waiting_ids(self) -> set[str]:
        """Calls whose result comes when the user answers: history repair leaves them alone."""
        return {c.id for c in self.pending.calls} if self.pending else set()

    # ------------------------------------------------------------------ a batch from the model

    async def dispatch(self, calls: list[ParsedCall]) -> bool:
        """Run what the policy allows, answer what it denies, queue what needs a human.
        True when the turn is suspended for approval."""
        engine = self.engine
        decisions = engine.policy.decide_batch(calls)  # budget reserved for the batch at once
        auto = [c for c in calls if decisions[c.id].verdict == "allow"]
        ask = [c for c in calls if decisions[c.id].verdict == "ask"]
        results = await self.execute(auto, decisions)
        for call in calls:
            d = decisions[call.id]
            if d.verdict == "allow":
                self.append_result(call, results[call.id])
            elif d.verdict == "deny":
                self._deny(call, d)
        if ask:
            self.pending = Pending(ask, {c.id: decisions[c.id].reason for c in ask},
                                   {c.id: decisions[c.id].suggested_rule for c in ask})
            reviews = await self.reviews(ask)
            engine.emit(ApprovalRequired(items=[
                ApprovalItem(tool_call_id=c.id, tool=c.name, arguments=c.arguments, reason=decisions[c.id].reason,
                             # the policy's estimate: it is None where the tool's own is not
                             # to be trusted (a job with no usable timeout)
                             estimated_cost_usd=decisions[c.id].estimate,
                             suggested_rule=decisions[c.id].suggested_rule,
                             always_ask=decisions[c.id].always_ask, review=reviews.get(c.id))
                for c in ask
            ]))
            return True
        return False

    async def reviews(self, calls: list[ParsedCall]) -> dict[str, Any]:
        return await gather_reviews(calls, self.engine.tool_context)

    def _deny(self, call: ParsedCall, decision: Decision) -> None:
        """A rule forbids the call: the model is told so, the user sees why."""
        emit = self.engine.emit
        emit(ToolCallEvent(tool_call_id=call.id, tool=call.name, arguments=call.arguments))
        emit(ToolState(tool_call_id=call.id, tool=call.name, state="rejected", detail=decision.reason))
        advice = ("Do not retry it; find another way or ask the user." if decision.rule is not None
                  else "Send it again with a distinct call id.")  # the only other denial: ids shared in a batch
        text = f"This call was NOT executed: it is {decision.reason}. {advice}"
        self.append_result(call, ToolResult(text, success=False), state=False)

    async def execute(self, calls: list[ParsedCall], decisions: dict[str, Decision]) -> dict[str, ToolResult]:
        """Run calls concurrently, each isolated. On interrupt, the calls that finished keep
        their real results, the others get a cancellation result, then it re-raises."""
        engine = self.engine
        for call in calls:
            engine.emit(ToolCallEvent(tool_call_id=call.id, tool=call.name, arguments=call.arguments))
        tasks = [asyncio.ensure_future(self._run_one(c, decisions[c.id])) for c in calls]
        try:
            results = await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            finished = {id(t) for t in tasks if t.done() and not t.cancelled()}
            for task in tasks:
                task.cancel()
            # give cancelled tools a moment to stop, but never hold the interrupt for long
            await asyncio.wait(tasks, timeout=0.5)
            for call in calls:  # a call cancelled before it started gives its reservation back
                engine.policy.discard(decisions[call.id])
            for task, call in zip(tasks, calls):
                if id(task) in finished and task.exception() is None:
                    self.append_result(call, task.result())  # it completed: say so, not "cancelled"
                    continue
                engine.emit(ToolState(tool_call_id=call.id, tool=call.name, state="cancelled"))
                text = CANCELLED if call.tool is None or call.name == "bash" else CANCELLED_MAYBE_DONE
                self.append_result(call, ToolResult(text, success=False), emit=False)
            raise
        return {call.id: result for call, result in zip(calls, results)}

    async def _run_one(self, call: ParsedCall, decision: Decision) -> ToolResult:
        if call.error:
            return ToolResult(call.error, success=False)
        engine = self.engine
        limit = max(1, int(getattr(engine.settings, "max_parallel_tools", 8)))
        if self._slots is None or self._slots_size != limit:
            self._slots, self._slots_size = asyncio.Semaphore(limit), limit
        # a reply with 300 calls runs them a few at a time, not 300 shells at once
        async with self._slots:
            engine.emit(ToolState(tool_call_id=call.id, tool=call.name, state="running"))
            try:
                return await engine.router.execute(call, engine.tool_context(call.id, call.name), decision)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # isolation: one broken call is one error result
                return ToolResult(f"ERROR: {call.name} failed: {type(exc).__name__}: {exc}", success=False)

    def append_result(self, call: ParsedCall, result: ToolResult, emit: bool = True, state: bool = True) -> None:
        engine = self.engine
        engine.history.append(
            {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": result.output}, "tool", turn=engine.turn,
        )
        if emit:
            engine.emit(ToolOutput(tool_call_id=call.id, tool=call.name, output=result.output, success=result.success, spill_path=result.spill_path))
            if state and not call.error:
                engine.emit(ToolState(tool_call_id=call.id, tool=call.name, state="completed" if result.success else "failed"))

    # ------------------------------------------------------------------ suspension

    def budget_pause(self) -> bool:
        """In YOLO mode, once the observed spend reaches the cap: ask before the next model
        call whether to raise it (LLM spend counts too). True when suspended."""
        engine = self.engine
        budget = engine.policy.budget
        if engine.policy.mode != "yolo" or not budget.reached():
            return False
        cap, spent = budget.cap_usd or 0.0, budget.spent()
        proposed = round(max(cap * 2, spent + max(cap, 1.0)), 2)
        item = ApprovalItem(
            tool_call_id=f"yolo-budget-{uuid.uuid4().hex[:12]}", tool=BUDGET_TOOL,
            arguments={"cap_usd": round(cap, 2), "spent_usd": round(spent, 4), "new_cap_usd": proposed},
            reason=(f"YOLO budget reached: ${spent:.2f} spent of the ${cap:.2f} cap (model calls and compute). "
                    f"Approve to raise the cap to ${proposed:.2f} (edit new_cap_usd for another amount) and "
                    "continue, or reject to stop here."),
        )
        self.pending = Pending([], {item.tool_call_id: item.reason}, budget=item)
        engine.emit(ApprovalRequired(items=[item]))
        return True

    def close_pending(self, text: str, state: str) -> None:
        """The user moved on (new message, interrupt): each waiting call gets ``text``."""
        assert self.pending is not None
        for call in self.pending.calls:  # a budget pause has none: nothing to answer
            self.append_result(call, ToolResult(text, success=False), emit=False)
            self.engine.emit(ToolState(tool_call_id=call.id, tool=call.name, state=state))  # type: ignore[arg-type]
        self.pending = None

    def take_pending(self) -> Pending:
        pending = self.pending
        assert pending is not None
        self.pending = None
        return pending

    # ------------------------------------------------------------------ the user's answer

    async def run_approved(self, pending: Pending, decisions: list[ToolDecision]) -> None:
        """Apply the user's decisions to suspended calls: save "always" rules, run what was
        approved (with edited arguments if any), answer the rest as rejected."""
        engine = self.engine
        by_id = {d.tool_call_id: d for d in decisions}
        run: list[ParsedCall] = []
        approvals: dict[str, Decision] = {}
        notes: dict[str, str] = {}
        rejected: dict[str, ToolResult] = {}
        for call in pending.calls:
            d = by_id.get(call.id)
            if d is not None and d.remember:
                self._remember(call, d, pending.suggested.get(call.id))
            if d is None or not d.approved:
                text = REJECTED
                if d is None:
                    text += " (No decision was given for it.)"
                elif d.feedback:
                    clean = "".join(ch for ch in d.feedback if ch.isprintable() or ch in "\n\t").strip()
                    text += f" User feedback: {clean}"
                engine.emit(ToolState(tool_call_id=call.id, tool=call.name, state="rejected", detail=(d.feedback or "") if d else ""))
                rejected[call.id] = ToolResult(text, success=False)
                continue
            if d.edited_args is not None:
                edited_json = json.dumps(d.edited_args, ensure_ascii=False)
                call = engine.router.parse(call.id, call.name, edited_json)
                self._rewrite_call_arguments(call.id, edited_json)
                notes[call.id] = f"[Note: the user edited the arguments of this call before approving it; it ran with {edited_json}]"
            approval = engine.policy.approve(call)  # the user's yes, for exactly these arguments
            if not approval.allowed:  # edited into something a deny rule forbids
                engine.emit(ToolState(tool_call_id=call.id, tool=call.name, state="rejected", detail=approval.reason))
                rejected[call.id] = ToolResult(f"{REJECTED} The edited call was {approval.reason}.", success=False)
                continue
            approvals[call.id] = approval
            engine.emit(ToolState(tool_call_id=call.id, tool=call.name, state="approved"))
            run.append(call)
        engine.emit(Processing(message="Running approved calls"))
        results = await self.execute(run, approvals)
        for call in pending.calls:  # results go into history in the model's call order
            if call.id in rejected:
                self.append_result(call, rejected[call.id], emit=True, state=False)
            else:
                ran = next(c for c in run if c.id == call.id)
                result = results[call.id]
                if call.id in notes:
                    result = ToolResult(notes[call.id] + "\n" + result.output, result.success, result.spill_path)
                self.append_result(ran, result)

    def _remember(self, call: ParsedCall, d: ToolDecision, suggested: Any) -> None:
        """"Always allow" / "always deny": the policy saves the rule; the user hears what was kept."""
        self.engine.emit(ToolLog(tool="system", log=self.engine.policy.remember_answer(call, d, suggested)))

    def _rewrite_call_arguments(self, call_id: str, arguments: str) -> None:
        """The history shows the call as it really ran, so the model sees the user's edit."""
        entries = self.engine.history.entries
        for index in range(len(entries) - 1, -1, -1):
            entry = entries[index]
            calls = entry.message.get("tool_calls") or []
            if any(call.get("id") == call_id for call in calls):
                # a new entry, not an edit in place: the session store notices a changed
                # message by identity (agent/store.py)
                changed = [{**call, "function": {**call.get("function", {}), "arguments": arguments}}
                           if call.get("id") == call_id else call for call in calls]
                entries[index] = dataclasses.replace(entry, message={**entry.message, "tool_calls": changed},
                                                     tokens=None)
                return

    def answer_budget(self, item: ApprovalItem, decisions: list[ToolDecision]) -> bool:
        """The user's answer to a budget pause. True when the cap was raised and the turn
        goes on; False when it stops (a ``Guard`` says why, the caller ends the turn)."""
        engine = self.engine
        budget = engine.policy.budget
        d = {d.tool_call_id: d for d in decisions}.get(item.tool_call_id)
        if d is not None and d.approved:
            proposed = float(item.arguments["new_cap_usd"])
            try:
                new_cap = float((d.edited_args or {}).get("new_cap_usd", proposed))
            except (TypeError, ValueError):
                new_cap = proposed
            if not 0 <= new_cap < float("inf"):
                new_cap = proposed
            if not d.edited_args:  # a /yolo <cap> sent while the card waited is not undone by it
                new_cap = max(new_cap, budget.cap_usd or 0.0)
            budget.cap_usd = new_cap
            engine.emit(ToolLog(tool="system", log=f"YOLO cap raised to ${budget.cap_usd:.2f}."))
            engine.on_settings_changed()
            return True
        engine.emit(Guard(kind="budget", ends_turn=True,
                          message=BUDGET_STOPPED.format(spent=budget.spent(), cap=budget.cap_usd or 0.0)))
        return False
