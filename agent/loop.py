"""The turn engine: model -> tool calls -> results -> model, until the answer is done.

One ``TurnEngine`` per conversation. It never touches a screen: everything it does is an
event passed to ``emit``. The session runs each ``run_turn`` / ``resume`` as a task and
cancels that task to interrupt, so every await in here is an interruption point; the
``CancelledError`` handler keeps the partial answer and repairs the history.

This module is the loop and the turn's lifecycle (entry points, interrupts and errors, the
iteration cap, the receipt at the end); the work of each step is done by collaborators that
share the engine's state:

- ``agent.model_step.ModelStep`` - the model request, its streamed text, the assistant
  message it becomes, compaction;
- ``agent.guards.TurnGuards`` - the notes that steer the model (truncation, continuation,
  malformed arguments, repetition, background news);
- ``agent.tool_calls.ToolCalls`` - running a batch of tool calls under the policy, and the
  approval suspend / resume (including the YOLO budget pause).

The texts and types those modules define are re-exported here, where callers import them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable

from agent.context import ContextManager, TokenCounter
from agent.doom_loop import DoomLoopDetector
from agent.guards import CONTINUATION_NOTE, CUT_OFF_NOTE, MALFORMED_NOTE, TRUNCATION_NOTE, TurnGuards
from agent.history import History
from agent.llm.client import LLMClient
from agent.llm.errors import LLMError
from agent.llm.models import ResolvedModel
from agent.model_step import ModelStep
from agent.policy import Policy
from agent.protocol import (
    AssistantChunk,
    AssistantMessage,
    ErrorEvent,
    Event,
    Guard,
    Interrupted,
    LLMCall,
    Processing,
    Receipt,
    ToolDecision,
    TurnComplete,
    UserMessage,
    Usage,
)
from agent.tool_calls import (
    ABANDONED,
    BUDGET_STOPPED,
    BUDGET_TOOL,
    CANCELLED,
    CANCELLED_MAYBE_DONE,
    REJECTED,
    Pending,
    ToolCalls,
)
from agent.tools.base import SessionToolState, ToolContext
from agent.tools.router import ToolRouter

__all__ = [
    "ABANDONED", "BUDGET_STOPPED", "BUDGET_TOOL", "CANCELLED", "CANCELLED_MAYBE_DONE", "CONTINUATION_NOTE",
    "CUT_OFF_NOTE", "MALFORMED_NOTE", "REJECTED", "TRUNCATION_NOTE",
    "EngineSettings", "Pending", "TurnEngine", "TurnStats",
]


@dataclass
class TurnStats:
    usage: Usage = field(default_factory=Usage)
    llm_calls: int = 0
    llm_cost: float = 0.0
    unknown_cost_calls: int = 0
    research_calls: int = 0
    research_cost: float = 0.0


@dataclass
class EngineSettings:
    max_iterations: int = 300
    compaction_threshold: float = 0.9
    context_windows: dict[str, int] = field(default_factory=dict)
    reasoning_effort: str | None = None
    #: a repetition guard pauses the turn for the user's remedy (the app) instead of only
    #: telling the model to change approach (headless, tests)
    pause_on_doom_loop: bool = False
    #: calls of one model reply that run at the same time (the rest wait their turn)
    max_parallel_tools: int = 8


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
        self.model_step = ModelStep(self)
        self.guards = TurnGuards(self)
        self.tool_calls = ToolCalls(self)
        self.settings = settings
        self.tool_context = tool_context
        self.tool_state = tool_state
        self.history = History()
        self.doom = DoomLoopDetector()
        #: messages sent while a turn runs, for its next model step (``steer``)
        self.steers: list[str] = []
        #: facts the user pinned: part of the system prompt, so every compaction keeps them
        self.pins: list[str] = []
        self.turn = 0
        self.session_cost: float = 0.0
        self.session_unknown_calls = 0
        self._stats = TurnStats()
        self._iterations = 0
        self.notes_source: Callable[[], list[str]] = lambda: []
        #: compute spent (USD, jobs without a price) for a turn, or the session when None
        self.compute_source: Callable[[int | None], tuple[float, int]] = lambda turn: (0.0, 0)
        #: called when the engine changed a setting itself (the user raised the YOLO cap); the
        #: session reports its settings from there (it knows the effort the model takes)
        self.on_settings_changed: Callable[[], None] = lambda: None
        #: called once, when the model's answer starts to stream (the session's title call
        #: waits for it: see SessionPersistence.prompt_submitted); None when nobody waits
        self.on_first_text: Callable[[], None] | None = None
        # the one policy that decides every call, shared with the router so that nothing
        # the engine (or anyone else) runs through it escapes the decision
        policy = policy or router.policy or Policy(spent=self.spent_usd)
        if router.policy is None:
            router.policy = policy
        elif router.policy is not policy:
            raise ValueError("the engine and its router must share one approval policy")
        self.policy = policy
        #: where windows stated by servers are remembered (agent/llm/learned_windows.py), if anywhere
        self.learned_windows = None
        self.set_model(model)

    @property
    def pending(self) -> Pending | None:
        """The approval the turn is suspended on, if any."""
        return self.tool_calls.pending

    @pending.setter
    def pending(self, value: Pending | None) -> None:
        self.tool_calls.pending = value

    def reset_conversation_state(self) -> None:
        """/new: forget everything tied to the old conversation."""
        self.doom.reset()
        self.pending = None
        self.steers = []
        self.pins = []
        self.turn = 0
        self.session_cost = 0.0
        self.session_unknown_calls = 0
        self._stats = TurnStats()
        self._iterations = 0
        self.guards.reset()
        self.model_step.partial = []

    # ------------------------------------------------------------------ setup

    def set_model(self, model: ResolvedModel) -> None:
        self.model = model
        self.window = self.client.window(model, self.settings.context_windows)
        counter = TokenCounter(model.litellm_model, tokenizer=self.client.needs_litellm(model))
        self.history.counter = counter
        self.history.recount()
        self.context = ContextManager(
            self.history,
            self.window.tokens,
            threshold_ratio=self.settings.compaction_threshold,
            tools_tokens=lambda: counter.tools(self.router.specs()),
        )

    def steer(self, text: str) -> None:
        """A message for the running turn: it joins at the next model step."""
        self.steers.append(text)

    def _take_steers(self) -> None:
        while self.steers:
            text = self.steers.pop(0)
            self.history.append({"role": "user", "content": text}, "user", turn=self.turn)
            self.emit(UserMessage(text=text, steered=True))

    def refresh_window(self) -> None:
        """The model's window may be known better now (the router's catalog arrived)."""
        if self.window.source in ("config", "server"):
            return
        self.window = self.client.window(self.model, self.settings.context_windows)
        self.context.window = self.window.tokens

    def learn_window(self, tokens: int) -> int:
        """The server said this model's context window is ``tokens``: use it from now on (and in
        later sessions); returns the window it replaces."""
        from agent.llm.pricing import WindowInfo

        old = self.window.tokens
        self.settings.context_windows[self.model.id] = tokens
        self.window = WindowInfo(tokens, "server")
        self.context.window = tokens
        if self.learned_windows is not None:
            self.learned_windows.record(self.model.id, tokens)
        return old

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
            if event.kind == "research":
                s.research_calls += 1
                s.research_cost += event.cost_usd or 0.0
        if self.model_step.unsent_text and not isinstance(event, AssistantChunk):
            self.model_step.flush_text()  # text streamed so far goes out before whatever follows it
        event.turn = self.turn
        self._emit(event)

    # ------------------------------------------------------------------ entry points

    async def run_turn(self, text: str | None) -> None:
        """A turn for the user's ``text``; None: a turn the agent starts itself (a job it
        started ended), whose first step reads the waiting notes."""
        if self.pending:
            self.tool_calls.close_pending(ABANDONED, "abandoned")
        self.turn += 1
        self._stats = TurnStats()
        self._iterations = 0
        self.guards.reset()
        self._take_steers()  # sent during a turn that ended before reading them (interrupted)
        if text is not None:
            self.history.append({"role": "user", "content": text}, "user", turn=self.turn)
            self.emit(UserMessage(text=text))
        await self._guarded(self._drive())

    async def resume(self, decisions: list[ToolDecision]) -> None:
        if not self.pending:
            self.emit(ErrorEvent(message="There is no pending approval to answer.", kind="no_pending_approval"))
            return
        await self._guarded(self._resume(decisions))

    async def compact(self, focus: str | None = None) -> None:
        await self._guarded(self.model_step.compact(force=True, focus=focus))

    def cancel_pending(self) -> None:
        """An interrupt while an approval waits: the calls are cancelled, not left hanging."""
        if self.pending:
            self.tool_calls.close_pending(CANCELLED, "cancelled")
            self.emit(Interrupted())

    # ------------------------------------------------------------------ the loop

    async def _guarded(self, work) -> None:
        self.model_step.partial = []
        try:
            await work
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            partial = "".join(self.model_step.partial)
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
            self.model_step.partial = []

    def _repair(self) -> None:
        """Stub results for calls that never got one - except calls still waiting for the
        user's approval: their real result comes when the user answers."""
        self.history.repair_dangling_tool_calls(skip_ids=self.tool_calls.waiting_ids())

    async def _drive(self) -> None:
        self.emit(Processing())
        max_it = self.settings.max_iterations
        step, guards = self.model_step, self.guards
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
            if self.tool_calls.budget_pause():
                return  # suspended: the user decides whether to raise the YOLO cap
            self._take_steers()
            guards.inject_notes()
            if guards.inject_guards() and self.settings.pause_on_doom_loop:
                self._complete(None, "doom_loop")  # the user picks a remedy (continue, a hint, another model)
                return
            result = await step.call()
            self._iterations += 1
            if result.tool_calls and result.finish_reason == "length":
                guards.dropped_tool_calls(result)
                continue
            if not result.tool_calls:
                if guards.maybe_continue(result):
                    continue
                step.append_assistant(result, None)
                if self.steers:  # the user wrote while this answer was made: it is answered too
                    self.emit(AssistantMessage(content=result.content))
                    continue
                self.emit(AssistantMessage(content=result.content, final=True))
                self._complete(guards.whole_answer(result), "done")
                return
            calls = [self.router.parse(c.id, c.name, c.arguments) for c in result.tool_calls]
            guards.saw_tool_calls(calls)
            step.append_assistant(result, calls)
            if result.content:
                self.emit(AssistantMessage(content=result.content))
            if await self.tool_calls.dispatch(calls):
                return  # suspended for approval

    async def _resume(self, decisions: list[ToolDecision]) -> None:
        pending = self.tool_calls.take_pending()
        if pending.budget is not None:
            if not self.tool_calls.answer_budget(pending.budget, decisions):
                self._complete(None, "budget")
                return
            # the cap was raised: drive on (the next step asks again if it is still spent)
        else:
            await self.tool_calls.run_approved(pending, decisions)
        await self._drive()

    # ------------------------------------------------------------------ the end of a turn

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
                research_llm_calls=s.research_calls,
                research_cost_usd=round(s.research_cost, 6),
                compute_cost_usd=compute,
                unknown_compute_jobs=unknown_jobs,
                session_cost_usd=round(self.spent_usd(), 6),
                session_unknown_cost_calls=self.session_unknown_calls,
                budget_left_usd=self._budget_left(),
                budget_exact=self.policy.budget_exact(),
            ),
        ))

    def _budget_left(self) -> float | None:
        left = self.policy.budget_left()
        return None if left is None else round(left, 6)
