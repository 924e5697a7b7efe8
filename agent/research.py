"""The research sub-agent: an independent agent that reads before the main agent builds.

``ResearchRunner.run`` is what the ``research`` tool calls. The sub-agent has its own
history and system prompt (literature first, then datasets, then code; it ends with a ranked
table of recipes and their sources), a read-only subset of the session's tools, and its own
limits: model calls (``research_max_iterations``) and tokens (``research_max_tokens``; a
wrap-up note at 80%, then a last call without tools).

It is **not** a way around the user (reference §12 item 6, where the sub-agent ran uploads
with no approval): every call it makes is decided by the session's one ``Policy`` - the same
rules, mode and YOLO budget - and runs through a governed router. A call that needs a human
is put to the user through the session's approval queue (the card says it comes from the
research agent); headless, it is refused like any other.

Everything it does is an event on the session's bus tagged with ``parent_call_id`` (the
``research`` call): its model calls (``llm_call`` of kind ``research``, so receipts and
/cost count them apart), its tool calls, states, outputs and approvals. Front ends draw
them inside the research call's card; stream-json readers see them as they happen.
Interrupting the turn cancels the sub-agent at whatever it awaits.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from agent.llm.errors import LLMError
from agent.protocol import (
    ApprovalItem,
    Event,
    ToolCallEvent,
    ToolDecision,
    ToolLog,
    ToolOutput,
    ToolState,
    Usage,
)
from agent.tools.base import ToolContext, ToolResult
from agent.tools.output import apply_output_budget
from agent.tools.router import ParsedCall, ToolRouter

if TYPE_CHECKING:
    from agent.llm.client import LLMClient
    from agent.llm.models import ResolvedModel
    from agent.policy import Decision, Policy
    from agent.tools.base import Tool

log = logging.getLogger(__name__)

#: what the sub-agent may call, when the session has it: reading, never changing (a write it
#: attempts anyway - hf_repo_files upload - is gated by the policy like the main agent's)
RESEARCH_TOOLS: tuple[str, ...] = (
    "hf_papers", "explore_hf_docs", "fetch_hf_docs", "find_hf_api", "hf_inspect_dataset",
    "github_find_examples", "github_list_repos", "github_read_file", "web_search", "fetch_url",
    "hf_repo_files", "read",
)
#: what one tool result may put into the sub-agent's context (head + tail; the rest is spilled)
RESULT_MAX_CHARS = 8_000
WRAP_UP_AT = 0.8
WRAP_UP_NOTE = ("[research budget] You have used most of your token budget. Stop searching: write the final "
                "report now from what you have (ranked recipes with sources).")
FINAL_NOTE = ("[research budget] No more tool calls are possible. Write the final report now from what you "
              "have found, and say what you could not check.")
EFFORT_CAP = ("minimal", "low", "medium", "high")

RESEARCH_SYSTEM = """\
You are the research sub-agent of an ML-engineering assistant. The main agent gives you a task
(what it wants to train, evaluate or build) and hands your report to its own model, which will
write and launch the code. You never write files or launch anything: you read.

Work literature first, then data, then code:
1. Find the anchor papers for the task (hf_papers search / trending; web_search when needed).
   Read the methodology and experiments sections of the best ones (hf_papers read_paper with a
   section), not only abstracts. Follow the citation graph for the strongest follow-ups.
2. Attribute results to recipes: model, data, objective, key hyper-parameters, hardware, and
   the score each achieved on which benchmark.
3. Check the datasets the recipes use (hf_inspect_dataset: splits, size, schema, a few rows;
   is the format what the trainer expects, e.g. chat messages?).
4. Find working code: official examples (github_find_examples, github_read_file), the library
   docs for the API the main agent will use (explore_hf_docs, fetch_hf_docs).

Be economical: a handful of well-chosen calls beat many shallow ones; several independent
calls can go in one response. Never repeat a call you already made.

End with a report of 400-1200 words in Markdown:
- a short summary of what works for this task and why;
- a ranked table of recipes: rank, recipe (model + method), dataset, key hyper-parameters,
  reported result, hardware/cost hint, source (arXiv id, URL or repo path);
- the dataset findings (format problems, splits, size);
- the code to start from (exact file paths or URLs), and the pitfalls you found;
- what you could not verify.
"""


@dataclass
class ResearchLimits:
    max_iterations: int = 40
    max_tokens: int = 150_000


@dataclass
class ResearchStats:
    llm_calls: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    unknown_cost_calls: int = 0
    tool_calls: int = 0
    #: the size of the sub-agent's context at its last call (prompt + completion tokens)
    context_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.usage.prompt_tokens + self.usage.completion_tokens

    def footer(self) -> str:
        cost = f"${self.cost_usd:.4f}" + (" + unknown" if self.unknown_cost_calls else "")
        return (f"[research: {self.llm_calls} model call(s), {self.tool_calls} tool call(s), "
                f"{self.tokens:,} tokens, {cost}]")


#: asks the user about calls that need approval; answers one decision per item
AskUser = Callable[[list[ApprovalItem], str], Awaitable[list[ToolDecision]]]


class ResearchRunner:
    """Runs research sub-agents for one session (several at once if the model asks)."""

    def __init__(
        self,
        *,
        client: LLMClient,
        tools: Callable[[], list[Tool]],
        policy: Policy,
        emit: Callable[[Event], None],
        model: Callable[[], ResolvedModel],
        tool_context: Callable[[str, str], ToolContext],
        ask_user: AskUser,
        limits: ResearchLimits | None = None,
        reasoning_effort: Callable[[], str | None] = lambda: None,
    ):
        self.client = client
        self._tools = tools
        self.policy = policy
        self.emit = emit
        self.model = model
        self.tool_context = tool_context
        self.ask_user = ask_user
        self.limits = limits or ResearchLimits()
        self.reasoning_effort = reasoning_effort

    def router(self) -> ToolRouter:
        """A governed router over the research subset, decided by the session's policy."""
        chosen = [t for t in self._tools() if t.name in RESEARCH_TOOLS]
        return ToolRouter(chosen, policy=self.policy)

    async def run(self, task: str, context: str | None, parent_call_id: str) -> tuple[str, bool, ResearchStats]:
        """The sub-agent's final report, whether it finished, and what it spent."""
        run = _Run(self, parent_call_id)
        return await run.drive(task, context)


class _Run:
    """One research sub-agent: its history, its limits, its events."""

    def __init__(self, runner: ResearchRunner, parent: str):
        self.runner = runner
        self.parent = parent
        self.router = runner.router()
        self.stats = ResearchStats()
        self.messages: list[dict[str, Any]] = []
        self.seen_calls: dict[str, int] = {}
        self.wrapped_up = False

    # ------------------------------------------------------------------ events

    def emit(self, event: Event) -> None:
        event.parent_call_id = self.parent  # type: ignore[union-attr]
        self.runner.emit(event)

    def progress(self, line: str) -> None:
        self.emit(ToolLog(tool="research", log=line, tool_call_id=self.parent))

    # ------------------------------------------------------------------ the loop

    async def drive(self, task: str, context: str | None) -> tuple[str, bool, ResearchStats]:
        runner = self.runner
        limits = runner.limits
        user = f"Research task: {task.strip()}"
        if context and context.strip():
            user += f"\n\nContext from the main agent:\n{context.strip()}"
        available = ", ".join(self.router.names) or "(none)"
        self.messages = [{"role": "system", "content": RESEARCH_SYSTEM + f"\nYour tools: {available}.\n"},
                         {"role": "user", "content": user}]
        model = runner.model()
        self.progress(f"Research sub-agent started on {model.label} ({len(self.router)} read-only tools).")
        for iteration in range(limits.max_iterations):
            last = iteration == limits.max_iterations - 1
            over = self.stats.context_tokens >= limits.max_tokens
            if last or over:
                return await self._final(model, "iteration limit" if last else "token budget")
            if not self.wrapped_up and self.stats.context_tokens >= WRAP_UP_AT * limits.max_tokens:
                self.wrapped_up = True
                self.messages.append({"role": "user", "content": WRAP_UP_NOTE})
                self.progress("Token budget 80% used: asked the sub-agent to wrap up.")
            try:
                result = await self._call(model, tools=True)
            except LLMError as exc:
                return self._failed(exc)
            if not result.tool_calls:
                self.progress("Research complete.")
                return result.content or "(the research agent returned an empty report)", True, self.stats
            calls = [self.router.parse(c.id, c.name, c.arguments) for c in result.tool_calls]
            self.messages.append({
                "role": "assistant", "content": result.content or "",
                "tool_calls": [{"id": c.id, "type": "function",
                                "function": {"name": c.name, "arguments": c.raw_arguments or "{}"}} for c in calls],
            })
            results = await self._run_batch(calls)
            for call in calls:
                self.messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name,
                                      "content": results[call.id].output})
        return await self._final(model, "iteration limit")

    async def _call(self, model: ResolvedModel, *, tools: bool):
        runner = self.runner
        effort = runner.reasoning_effort()
        if effort is not None and effort not in EFFORT_CAP:
            effort = "high"  # research reads; the deepest levels cost much for little here
        result = await runner.client.stream(
            model, self.messages, self.router.specs() if tools else None, kind="research",
            reasoning_effort=effort, parent_call_id=self.parent,
        )
        s = self.stats
        s.llm_calls += 1
        s.usage = s.usage + result.usage
        if result.cost_usd is None:
            s.unknown_cost_calls += 1
        else:
            s.cost_usd += result.cost_usd
        s.context_tokens = result.usage.prompt_tokens + result.usage.completion_tokens
        self.progress(f"tokens: {s.tokens:,} · cost: ${s.cost_usd:.4f}" + (" + unknown" if s.unknown_cost_calls else ""))
        return result

    async def _final(self, model: ResolvedModel, why: str) -> tuple[str, bool, ResearchStats]:
        self.progress(f"Stopping at the {why}: asking for the final report.")
        self.messages.append({"role": "user", "content": FINAL_NOTE})
        try:
            result = await self._call(model, tools=False)
        except LLMError as exc:
            return self._failed(exc)
        self.progress("Research complete.")
        note = f"\n\n(The research agent stopped at its {why}.)"
        return (result.content or "(no report)") + note, True, self.stats

    def _failed(self, exc: LLMError) -> tuple[str, bool, ResearchStats]:
        self.progress(f"Research failed: {exc.info.message}")
        return f"Research agent model error: {exc.info.message}", False, self.stats

    # ------------------------------------------------------------------ tool calls

    async def _run_batch(self, calls: list[ParsedCall]) -> dict[str, ToolResult]:
        policy = self.runner.policy
        decisions = policy.decide_batch(calls)
        out: dict[str, ToolResult] = {}
        ask: list[ParsedCall] = []
        for call in calls:
            self.emit(ToolCallEvent(tool_call_id=call.id, tool=call.name, arguments=call.arguments))
            self.stats.tool_calls += 1
            self.progress(f"▸ {call.name} {_short(call.arguments)}")
            d = decisions[call.id]
            if d.verdict == "deny":
                self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="rejected", detail=d.reason))
                out[call.id] = ToolResult(f"This call was NOT executed: it is {d.reason}. Find another way.", False)
            elif d.verdict == "ask":
                ask.append(call)
        if ask:
            out.update(await self._ask(ask, {c.id: decisions[c.id] for c in ask}))
        run = [c for c in calls if decisions[c.id].verdict == "allow"]
        ran = await asyncio.gather(*(self._execute(c, decisions[c.id]) for c in run))
        out.update({c.id: r for c, r in zip(run, ran)})
        for call in calls:
            self._note_repeat(call, out[call.id])
        return out

    async def _ask(self, calls: list[ParsedCall], decisions: dict[str, Decision]) -> dict[str, ToolResult]:
        """Calls the policy will not run on its own go to the user, like the main agent's."""
        from agent.tool_calls import gather_reviews

        policy = self.runner.policy
        reviews = await gather_reviews(calls, self.runner.tool_context)
        items = [ApprovalItem(tool_call_id=c.id, tool=c.name, arguments=c.arguments,
                              reason=f"research agent: {decisions[c.id].reason}",
                              estimated_cost_usd=decisions[c.id].estimate, always_ask=decisions[c.id].always_ask,
                              review=reviews.get(c.id))
                 for c in calls]
        answers = {d.tool_call_id: d for d in await self.runner.ask_user(items, self.parent)}
        out: dict[str, ToolResult] = {}
        approved: list[tuple[ParsedCall, Decision]] = []
        for call in calls:
            answer = answers.get(call.id)
            if answer is None or not answer.approved:
                feedback = f" User feedback: {answer.feedback}" if answer is not None and answer.feedback else ""
                self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="rejected",
                                    detail=(answer.feedback or "") if answer else ""))
                out[call.id] = ToolResult(f"The user rejected this call; it was NOT executed.{feedback}", False)
                continue
            decision = policy.approve(call)  # the user's yes, for exactly these arguments
            if not decision.allowed:
                self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="rejected", detail=decision.reason))
                out[call.id] = ToolResult(f"This call was NOT executed: it is {decision.reason}.", False)
                continue
            self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="approved"))
            approved.append((call, decision))
        ran = await asyncio.gather(*(self._execute(c, d) for c, d in approved))
        out.update({c.id: r for (c, _), r in zip(approved, ran)})
        return out

    async def _execute(self, call: ParsedCall, decision: Decision) -> ToolResult:
        self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="running"))
        ctx = self.runner.tool_context(call.id, call.name)
        # the tool's own progress lines, shown inside the research card
        ctx.log = lambda line: self.emit(ToolLog(tool=call.name, log=line, tool_call_id=call.id))
        try:
            result = await self.router.execute(call, ctx, decision)
        except asyncio.CancelledError:
            self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="cancelled"))
            raise
        text, spill = result.output, result.spill_path
        if len(text) > RESULT_MAX_CHARS:
            text, spill2 = apply_output_budget(text, ctx.spill_dir, max_chars=RESULT_MAX_CHARS, label=f"research-{call.name}")
            spill = spill or spill2
        result = ToolResult(text, result.success, spill)
        self.emit(ToolOutput(tool_call_id=call.id, tool=call.name, output=text, success=result.success,
                             spill_path=spill))
        self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="completed" if result.success else "failed"))
        return result

    def _note_repeat(self, call: ParsedCall, result: ToolResult) -> None:
        """The same call with the same arguments a third time: tell the sub-agent once."""
        key = json.dumps([call.name, call.arguments], sort_keys=True, default=str)
        count = self.seen_calls[key] = self.seen_calls.get(key, 0) + 1
        if count == 3:
            result.output += ("\n\n[SYSTEM: you made this exact call three times. Its answer will not change: use "
                              "what you have or try something different.]")
            self.progress(f"Repetition: {call.name} called 3 times with the same arguments.")


def _short(arguments: dict[str, Any], limit: int = 80) -> str:
    text = json.dumps(arguments, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
