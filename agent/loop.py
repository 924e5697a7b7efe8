"""The turn engine: model -> tool calls -> results -> model, until the answer is done.

One ``TurnEngine`` per conversation. It never touches a screen: everything it does is an
event passed to ``emit``. The session runs each ``run_turn`` / ``resume`` as a task and
cancels that task to interrupt, so every await in here is an interruption point; the
``CancelledError`` handler keeps the partial answer and repairs the history.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from agent.context import SUMMARY_SYSTEM, ContextManager, TokenCounter, render_transcript
from agent.doom_loop import DoomLoopDetector
from agent.history import History, for_request
from agent.llm.client import LLMClient, LLMResult
from agent.llm.errors import LLMError
from agent.llm.models import ResolvedModel
from agent.llm.pricing import context_window
from agent.policy import Decision, Policy
from agent.rules import describe as describe_rule
from agent.protocol import (
    ApprovalItem,
    ApprovalRequired,
    AssistantChunk,
    AssistantMessage,
    Compacted,
    ContextUsage,
    ErrorEvent,
    Event,
    Guard,
    Interrupted,
    LLMCall,
    Processing,
    Receipt,
    SettingsChanged,
    ToolCallEvent,
    ToolDecision,
    ToolLog,
    ToolOutput,
    ToolState,
    TurnComplete,
    Usage,
)
from agent.tools.base import SessionToolState, ToolContext, ToolResult
from agent.tools.router import ParsedCall, ToolRouter

TRUNCATION_NOTE = (
    "[SYSTEM: Your previous response hit the output token limit and was cut off, so these tool "
    "calls were dropped and NOT executed: {names}. Send smaller calls: write long files in parts "
    "(create, then append with edit), use a bash heredoc for big content, or split the edit.]"
)
CONTINUATION_NOTE = (
    "[SYSTEM: CONTINUATION GUARD] Your previous response ended without any tool call, but the "
    "plan still has unfinished items: {items}. Continue the work now with at least one tool call, "
    "or update the plan with plan_tool if the items are done or no longer needed."
)
CUT_OFF_NOTE = (
    "[SYSTEM: Your previous answer was cut off at the output token limit. Continue exactly where it "
    "stopped, without repeating what you already wrote.]"
)
MALFORMED_NOTE = (
    "[SYSTEM: Repeated malformed tool arguments detected for '{tool}'. Two calls in a row had "
    "arguments that were not valid JSON and were NOT executed. Change strategy: send a much smaller "
    "JSON object, write large content with a bash heredoc, or split the change into several edits.]"
)
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


@dataclass
class TurnStats:
    usage: Usage = field(default_factory=Usage)
    llm_calls: int = 0
    llm_cost: float = 0.0
    unknown_cost_calls: int = 0


@dataclass
class EngineSettings:
    max_iterations: int = 300
    compaction_threshold: float = 0.9
    context_windows: dict[str, int] = field(default_factory=dict)
    reasoning_effort: str | None = None


class TurnEngine:
    def __init__(
        self,
        *,
        model: ResolvedModel,
        router: ToolRouter,
        client: LLMClient,
        emit: Callable[[Event], None],
        settings: EngineSettings,
        tool_context: Callable[[str, str], ToolContext],
        tool_state: SessionToolState,
        policy: Policy | None = None,
    ):
        self.router = router
        self.client = client
        self._emit = emit
        self._text_out: list[str] = []  # streamed text not yet emitted (see _on_text)
        self._text_flush_pending = False
        self.settings = settings
        self.tool_context = tool_context
        self.tool_state = tool_state
        self.history = History()
        self.doom = DoomLoopDetector()
        self.pending: Pending | None = None
        self.turn = 0
        self.session_cost: float = 0.0
        self.session_unknown_calls = 0
        self._stats = TurnStats()
        self._iterations = 0
        self._continuations = 0
        self._malformed: dict[str, int] = {}
        self._partial: list[str] = []
        self._cut_off_parts: list[str] = []
        self.notes_source: Callable[[], list[str]] = lambda: []
        #: compute spent (USD, jobs without a price) for a turn, or the session when None
        self.compute_source: Callable[[int | None], tuple[float, int]] = lambda turn: (0.0, 0)
        #: called when the engine changed a setting itself (the user raised the YOLO cap)
        self.on_settings_changed: Callable[[], None] = self._emit_settings
        # the one policy that decides every call, shared with the router so that nothing
        # the engine (or anyone else) runs through it escapes the decision
        policy = policy or router.policy or Policy(spent=self.spent_usd)
        if router.policy is None:
            router.policy = policy
        elif router.policy is not policy:
            raise ValueError("the engine and its router must share one approval policy")
        self.policy = policy
        self.set_model(model)

    def reset_conversation_state(self) -> None:
        """/new: forget everything tied to the old conversation."""
        self.doom.reset()
        self.pending = None
        self.turn = 0
        self.session_cost = 0.0
        self.session_unknown_calls = 0
        self._stats = TurnStats()
        self._iterations = self._continuations = 0
        self._malformed.clear()
        self._partial = []
        self._cut_off_parts = []

    # ------------------------------------------------------------------ setup

    def set_model(self, model: ResolvedModel) -> None:
        self.model = model
        self.window = context_window(model, self.settings.context_windows)
        counter = TokenCounter(model.litellm_model)
        self.history.counter = counter
        self.history.recount()
        self.context = ContextManager(
            self.history,
            self.window.tokens,
            threshold_ratio=self.settings.compaction_threshold,
            tools_tokens=lambda: counter.tools(self.router.specs()),
        )

    def emit(self, event: Event) -> None:
        if isinstance(event, LLMCall):
            s = self._stats
            s.llm_calls += 1
            s.usage = s.usage + event.usage
            if event.cost_usd is None:
                s.unknown_cost_calls += 1
                self.session_unknown_calls += 1
            else:
                s.llm_cost += event.cost_usd
                self.session_cost += event.cost_usd
        if self._text_out and not isinstance(event, AssistantChunk):
            self._flush_text_out()  # text streamed so far goes out before whatever follows it
        event.turn = self.turn
        self._emit(event)

    def _flush_text_out(self) -> None:
        self._text_flush_pending = False
        if self._text_out:
            text = "".join(self._text_out)
            self._text_out.clear()
            self.emit(AssistantChunk(content=text))

    # ------------------------------------------------------------------ entry points

    async def run_turn(self, text: str) -> None:
        if self.pending:
            self._close_pending(ABANDONED, "abandoned")
        self.turn += 1
        self._stats = TurnStats()
        self._iterations = 0
        self._continuations = 0
        self._malformed.clear()
        self._cut_off_parts = []
        self.history.append({"role": "user", "content": text}, "user", turn=self.turn)
        await self._guarded(self._drive())

    async def resume(self, decisions: list[ToolDecision]) -> None:
        if not self.pending:
            self.emit(ErrorEvent(message="There is no pending approval to answer.", kind="no_pending_approval"))
            return
        await self._guarded(self._resume(decisions))

    async def compact(self, focus: str | None = None) -> None:
        await self._guarded(self._compact(force=True, focus=focus), finish_turn=False)

    def cancel_pending(self) -> None:
        """An interrupt while an approval waits: the calls are cancelled, not left hanging."""
        if self.pending:
            self._close_pending(CANCELLED, "cancelled")
            self.emit(Interrupted())

    # ------------------------------------------------------------------ the loop

    async def _guarded(self, work, finish_turn: bool = True) -> None:
        self._partial = []
        try:
            await work
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            partial = "".join(self._partial)
            if partial:
                self.history.append({"role": "assistant", "content": partial + "\n\n[interrupted by the user]"}, "assistant", turn=self.turn)
            self._repair()
            self.emit(Interrupted(partial_text=partial))
        except LLMError as exc:
            self._repair()
            self.emit(ErrorEvent(message=exc.info.message, kind=exc.info.kind, detail=exc.info.detail))
        except Exception as exc:  # a bug must end the turn with a message, not kill the session
            self._repair()
            self.emit(ErrorEvent(message=f"Internal error: {type(exc).__name__}: {exc}", kind="internal"))
        finally:
            self._partial = []

    def _repair(self) -> None:
        """Stub results for calls that never got one - except calls still waiting for the
        user's approval: their real result comes when the user answers."""
        waiting = {c.id for c in self.pending.calls} if self.pending else set()
        self.history.repair_dangling_tool_calls(skip_ids=waiting)

    async def _drive(self) -> None:
        self.emit(Processing())
        max_it = self.settings.max_iterations
        while True:
            if max_it >= 0 and self._iterations >= max_it:
                self.emit(Guard(
                    kind="iteration_cap", ends_turn=True,
                    message=f"Stopped after {self._iterations} model calls in this turn (the iteration cap, "
                    "--max-iterations / max_iterations in the config). Send a message to continue.",
                ))
                self._complete(None, "iteration_cap")
                return
            self._repair()
            if self._budget_pause():
                return  # suspended: the user decides whether to raise the YOLO cap
            self._inject_notes()
            self._inject_guards()
            result = await self._call_model()
            self._iterations += 1
            if result.tool_calls and result.finish_reason == "length":
                names = ", ".join(c.name or "?" for c in result.tool_calls)
                if result.content:
                    self._append_assistant(result, None)
                self.history.append({"role": "user", "content": TRUNCATION_NOTE.format(names=names)}, "guard", turn=self.turn)
                self.emit(Guard(kind="truncation", message=f"The model's output hit its token limit; dropped tool calls: {names}. Asked it to send smaller calls."))
                continue
            if not result.tool_calls:
                if await self._maybe_continue(result):
                    continue
                self._append_assistant(result, None)
                self.emit(AssistantMessage(content=result.content, final=True))
                # an answer cut off at the output limit and continued is one answer
                final = "".join(self._cut_off_parts) + (result.content or "")
                self._cut_off_parts = []
                self._complete(final, "done")
                return
            self._continuations = 0
            calls = [self.router.parse(c.id, c.name, c.arguments) for c in result.tool_calls]
            self._append_assistant(result, calls)
            if result.content:
                self.emit(AssistantMessage(content=result.content))
            if await self._dispatch(calls):
                return  # suspended for approval

    async def _maybe_continue(self, result: LLMResult) -> bool:
        unfinished = [p for p in self.tool_state.plan if p.status != "completed"]
        if result.finish_reason == "length" and self._continuations < 2:
            note, guard = CUT_OFF_NOTE, "The answer hit the output token limit; asked the model to continue."
            kind = "truncation"
        elif unfinished and self._continuations < 2:
            items = "; ".join(p.content for p in unfinished[:4])
            note = CONTINUATION_NOTE.format(items=items)
            guard = f"The model stopped with {len(unfinished)} plan item(s) unfinished; asked it to continue."
            kind = "continuation"
        else:
            return False
        self._continuations += 1
        if kind == "truncation":
            self._cut_off_parts.append(result.content or "")
        self._append_assistant(result, None)
        if result.content:
            self.emit(AssistantMessage(content=result.content))
        self.history.append({"role": "user", "content": note}, "guard", turn=self.turn)
        self.emit(Guard(kind=kind, message=guard))  # type: ignore[arg-type]
        return True

    def _inject_notes(self) -> None:
        """Background news (a job finished) the model should see at its next step."""
        for note in self.notes_source():
            self.history.append({"role": "user", "content": note}, "note", turn=self.turn)

    def _inject_guards(self) -> None:
        for tool, streak in list(self._malformed.items()):
            if streak >= 2:
                self._malformed[tool] = 0
                self.history.append({"role": "user", "content": MALFORMED_NOTE.format(tool=tool)}, "guard", turn=self.turn)
                self.emit(Guard(kind="malformed_args", message=f"Two malformed calls in a row for {tool}; told the model to change strategy."))
        messages = self.history.messages()
        hit = self.doom.check(messages)
        if hit:
            entries = self.history.entries
            costs = [entries[i].cost_usd for i in hit.assistant_indices if i < len(entries)]
            tokens = sum(entries[i].llm_tokens for i in hit.assistant_indices if i < len(entries))
            cost = None if any(c is None for c in costs) else round(sum(c for c in costs if c), 6)
            self.history.append({"role": "user", "content": hit.message}, "guard", turn=self.turn)
            self.emit(Guard(kind="doom_loop", message=f"Repetition guard: {hit.summary}. Told the model to change approach.", tokens_spent=tokens, cost_usd=cost))

    async def _call_model(self) -> LLMResult:
        await self._compact(force=False)
        self.emit(ContextUsage(tokens=self.context.usage(), window=self.context.window, threshold=self.context.threshold))
        overflow_retried = False
        while True:
            self._partial = []
            try:
                return await self.client.stream(
                    self.model,
                    for_request(self.history.messages()),
                    self.router.specs(),
                    kind="main",
                    on_text=self._on_text,
                    on_reset=self._on_reset,
                    reasoning_effort=self.settings.reasoning_effort,
                )
            except LLMError as exc:
                if exc.info.kind != "context_overflow" or overflow_retried:
                    raise
                overflow_retried = True
                await self._compact(force=True, reason="the provider said the context is too long")

    def _on_text(self, piece: str) -> None:
        # pieces parsed from one network read go out as one event: the bus, the UI bridge
        # and stream-json readers see a few hundred events per answer, not one per token
        self._partial.append(piece)
        self._text_out.append(piece)
        if not self._text_flush_pending:
            self._text_flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush_text_out)

    def _on_reset(self) -> None:
        self._partial = []
        self._text_out.clear()
        self.emit(AssistantChunk(content="", reset=True))

    def _append_assistant(self, result: LLMResult, calls: list[ParsedCall] | None) -> None:
        msg: dict[str, Any] = {"role": "assistant", "content": result.content or None}
        if calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": "{}" if c.malformed else c.raw_arguments or "{}"}}
                for c in calls
            ]
            if not msg["content"]:
                msg["content"] = ""  # some chat templates crash on a missing content
        if result.thinking_blocks:  # Anthropic wants them back within a tool loop (dropped for others)
            msg["thinking_blocks"] = result.thinking_blocks
        self.history.append(
            msg, "assistant", turn=self.turn, cost_usd=result.cost_usd,
            llm_tokens=result.usage.prompt_tokens + result.usage.completion_tokens,
        )
        self._partial = []

    # ------------------------------------------------------------------ tools

    async def _dispatch(self, calls: list[ParsedCall]) -> bool:
        """Run what the policy allows, answer what it denies, queue what needs a human.
        True when the turn is suspended for approval."""
        for call in calls:
            if call.malformed:
                self._malformed[call.name] = self._malformed.get(call.name, 0) + 1
            elif call.tool is not None:
                self._malformed.pop(call.name, None)
        decisions = self.policy.decide_batch(calls)  # budget reserved for the batch at once
        auto = [c for c in calls if decisions[c.id].verdict == "allow"]
        ask = [c for c in calls if decisions[c.id].verdict == "ask"]
        results = await self._execute_calls(auto, decisions)
        for call in calls:
            d = decisions[call.id]
            if d.verdict == "allow":
                self._append_result(call, results[call.id])
            elif d.verdict == "deny":
                self._deny(call, d)
        if ask:
            self.pending = Pending(ask, {c.id: decisions[c.id].reason for c in ask},
                                   {c.id: decisions[c.id].suggested_rule for c in ask})
            self.emit(ApprovalRequired(items=[
                ApprovalItem(tool_call_id=c.id, tool=c.name, arguments=c.arguments, reason=decisions[c.id].reason,
                             estimated_cost_usd=self.router.estimate(c),
                             suggested_rule=decisions[c.id].suggested_rule)
                for c in ask
            ]))
            return True
        return False

    def _deny(self, call: ParsedCall, decision: Decision) -> None:
        """A rule forbids the call: the model is told so, the user sees why."""
        self.emit(ToolCallEvent(tool_call_id=call.id, tool=call.name, arguments=call.arguments))
        self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="rejected", detail=decision.reason))
        text = f"This call was NOT executed: it is {decision.reason}. Do not retry it; find another way or ask the user."
        self._append_result(call, ToolResult(text, success=False), state=False)

    def _budget_pause(self) -> bool:
        """In YOLO mode, once the observed spend reaches the cap: ask before the next model
        call whether to raise it (LLM spend counts too)."""
        budget = self.policy.budget
        if self.policy.mode != "yolo" or not budget.reached():
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
        self.emit(ApprovalRequired(items=[item]))
        return True

    async def _execute_calls(self, calls: list[ParsedCall], decisions: dict[str, Decision]) -> dict[str, ToolResult]:
        """Run calls concurrently, each isolated. On interrupt, the calls that finished keep
        their real results, the others get a cancellation result, then it re-raises."""
        for call in calls:
            self.emit(ToolCallEvent(tool_call_id=call.id, tool=call.name, arguments=call.arguments))
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
                self.policy.discard(decisions[call.id])
            for task, call in zip(tasks, calls):
                if id(task) in finished and task.exception() is None:
                    self._append_result(call, task.result())  # it completed: say so, not "cancelled"
                    continue
                self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="cancelled"))
                text = CANCELLED if call.tool is None or call.name == "bash" else CANCELLED_MAYBE_DONE
                self._append_result(call, ToolResult(text, success=False), emit=False)
            raise
        return {call.id: result for call, result in zip(calls, results)}

    async def _run_one(self, call: ParsedCall, decision: Decision) -> ToolResult:
        if call.error:
            return ToolResult(call.error, success=False)
        self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="running"))
        try:
            return await self.router.execute(call, self.tool_context(call.id, call.name), decision)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # isolation: one broken call is one error result
            return ToolResult(f"ERROR: {call.name} failed: {type(exc).__name__}: {exc}", success=False)

    def _append_result(self, call: ParsedCall, result: ToolResult, emit: bool = True, state: bool = True) -> None:
        self.history.append(
            {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": result.output}, "tool", turn=self.turn,
        )
        if emit:
            self.emit(ToolOutput(tool_call_id=call.id, tool=call.name, output=result.output, success=result.success, spill_path=result.spill_path))
            if state and not call.error:
                self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="completed" if result.success else "failed"))

    def _close_pending(self, text: str, state: str) -> None:
        assert self.pending is not None
        for call in self.pending.calls:  # a budget pause has none: nothing to answer
            self._append_result(call, ToolResult(text, success=False), emit=False)
            self.emit(ToolState(tool_call_id=call.id, tool=call.name, state=state))  # type: ignore[arg-type]
        self.pending = None

    async def _resume(self, decisions: list[ToolDecision]) -> None:
        pending = self.pending
        assert pending is not None
        self.pending = None
        by_id = {d.tool_call_id: d for d in decisions}
        if pending.budget is not None:
            await self._resume_budget(pending.budget, by_id.get(pending.budget.tool_call_id))
            return
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
                self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="rejected", detail=(d.feedback or "") if d else ""))
                rejected[call.id] = ToolResult(text, success=False)
                continue
            if d.edited_args is not None:
                edited_json = json.dumps(d.edited_args, ensure_ascii=False)
                call = self.router.parse(call.id, call.name, edited_json)
                self._rewrite_call_arguments(call.id, edited_json)
                notes[call.id] = f"[Note: the user edited the arguments of this call before approving it; it ran with {edited_json}]"
            approval = self.policy.approve(call)  # the user's yes, for exactly these arguments
            if not approval.allowed:  # edited into something a deny rule forbids
                self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="rejected", detail=approval.reason))
                rejected[call.id] = ToolResult(f"{REJECTED} The edited call was {approval.reason}.", success=False)
                continue
            approvals[call.id] = approval
            self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="approved"))
            run.append(call)
        self.emit(Processing(message="Running approved calls"))
        results = await self._execute_calls(run, approvals)
        for call in pending.calls:  # results go into history in the model's call order
            if call.id in rejected:
                self._append_result(call, rejected[call.id], emit=True, state=False)
            else:
                ran = next(c for c in run if c.id == call.id)
                result = results[call.id]
                if call.id in notes:
                    result = ToolResult(notes[call.id] + "\n" + result.output, result.success, result.spill_path)
                self._append_result(ran, result)
        await self._drive()

    def _remember(self, call: ParsedCall, d: ToolDecision, suggested: Any) -> None:
        """"Always allow" / "always deny": save the rule the card showed (or the one sent)."""
        rule = d.rule or suggested
        if rule is None:
            self.emit(ToolLog(tool="system", log=f"No rule saved for {call.name}: this call cannot be approved "
                                                  "for good (it always asks), so it was answered once."))
            return
        rule = rule.model_copy(update={"effect": "allow" if d.approved else "deny", "label": ""})
        saved, error = self.policy.add_rule(rule, d.remember)  # type: ignore[arg-type]
        where = f"this session only: {error}" if error else \
            f"saved for {'this project' if d.remember == 'project' else 'all your projects'}"
        self.emit(ToolLog(tool="system", log=f"Rule: {describe_rule(saved)} ({where})."))

    async def _resume_budget(self, item: ApprovalItem, d: ToolDecision | None) -> None:
        budget = self.policy.budget
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
            self.emit(ToolLog(tool="system", log=f"YOLO cap raised to ${budget.cap_usd:.2f}."))
            self.on_settings_changed()
            await self._drive()  # asks again if the new cap is still spent
            return
        self.emit(Guard(kind="budget", ends_turn=True,
                        message=BUDGET_STOPPED.format(spent=budget.spent(), cap=budget.cap_usd or 0.0)))
        self._complete(None, "budget")

    def _rewrite_call_arguments(self, call_id: str, arguments: str) -> None:
        """The history shows the call as it really ran, so the model sees the user's edit."""
        for entry in reversed(self.history.entries):
            for call in entry.message.get("tool_calls") or []:
                if call.get("id") == call_id:
                    call["function"]["arguments"] = arguments
                    entry.tokens = None
                    return

    # ------------------------------------------------------------------ compaction & end

    async def _compact(self, *, force: bool, focus: str | None = None, reason: str = "") -> None:
        if not force and not self.context.needs_compaction():
            return
        self._repair()

        async def summarise(middle: list[dict[str, Any]]) -> str:
            return await self._summarise(middle, focus)

        report = await self.context.compact(summarise, force=True)
        self.doom.reset()
        if report.method != "none" or force:
            detail = report.detail + (f" ({reason})" if reason else "")
            self.emit(Compacted(
                tokens_before=report.tokens_before, tokens_after=report.tokens_after,
                messages_before=report.messages_before, messages_after=report.messages_after,
                method=report.method, detail=detail.strip(),  # type: ignore[arg-type]
            ))

    async def _summarise(self, middle: list[dict[str, Any]], focus: str | None) -> str:
        budget_chars = max(8_000, int(self.window.tokens * 0.5) * 4)
        transcript = render_transcript(middle)
        chunks = [transcript[i:i + budget_chars] for i in range(0, len(transcript), budget_chars)] or [""]
        summary = ""
        for n, chunk in enumerate(chunks, 1):
            ask = "Summarise this part of the agent's log." if len(chunks) == 1 else f"Part {n} of {len(chunks)} of the agent's log."
            if summary:
                ask += f"\n\nSummary of the earlier parts (merge it into your answer):\n{summary}"
            if focus:
                ask += f"\n\nThe user asked to focus the summary on: {focus}"
            result = await self.client.stream(
                self.model,
                [{"role": "system", "content": SUMMARY_SYSTEM}, {"role": "user", "content": f"{ask}\n\n<log>\n{chunk}\n</log>"}],
                None,
                kind="compaction",
                max_tokens=min(4096, max(256, self.window.tokens // 10)),
            )
            summary = result.content
        return summary

    def spent_usd(self) -> float:
        """Known spend of the session: model calls plus compute (jobs, sandboxes)."""
        return self.session_cost + self.compute_source(None)[0]

    def _complete(self, final: str | None, reason: str) -> None:
        s = self._stats
        compute, unknown_jobs = self.compute_source(self.turn)
        self.emit(TurnComplete(
            final_response=final,
            reason=reason,  # type: ignore[arg-type]
            history_size=len(self.history),
            receipt=Receipt(
                usage=s.usage,
                llm_calls=s.llm_calls,
                llm_cost_usd=round(s.llm_cost, 6),
                unknown_cost_calls=s.unknown_cost_calls,
                compute_cost_usd=compute,
                unknown_compute_jobs=unknown_jobs,
                session_cost_usd=round(self.spent_usd(), 6),
                session_unknown_cost_calls=self.session_unknown_calls,
                budget_left_usd=self._budget_left(),
            ),
        ))

    def _budget_left(self) -> float | None:
        left = self.policy.budget_left()
        return None if left is None else round(left, 6)

    def _emit_settings(self) -> None:
        self.emit(SettingsChanged(
            model=self.model.id, model_label=self.model.label, effort=self.settings.reasoning_effort,
            yolo=self.policy.mode == "yolo", yolo_cap_usd=self.policy.budget.cap_usd,
            context_window=self.window.tokens, approval_mode=self.policy.mode, budget_left_usd=self._budget_left(),
        ))
