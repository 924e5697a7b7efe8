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
import ipaddress
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import urlsplit

from agent.costs import Bucket
from agent.llm.errors import LLMError
from agent.protocol import (
    ApprovalItem,
    ApprovalRule,
    Event,
    ToolCallEvent,
    ToolDecision,
    ToolLog,
    ToolOutput,
    ToolState,
)
from agent.tools.base import ToolContext, ToolResult
from agent.tools.output import apply_output_budget, short_json
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
    #: tokens a run may use, prompt and completion summed over its calls (it wraps up at 80%)
    max_tokens: int = 500_000


#: the marker of a sub-agent's call ids (``<research call id>~r<n>``): unique per run, so two
#: sub-agents whose models number their calls alike never share an approval
SUB_CALL_MARK = "~r"


def is_sub_agent_call(call_id: str) -> bool:
    """A question asked from inside a running call: a research sub-agent's (``~r``) or a Hub
    gateway request of a process the agent started (``~g``, agent/gateway_policy.py)."""
    return SUB_CALL_MARK in call_id or "~g" in call_id


@dataclass
class ResearchStats:
    #: the sub-agent's model calls, counted as /cost counts a kind of call
    llm: Bucket = field(default_factory=Bucket)
    tool_calls: int = 0
    #: the size of the sub-agent's context at its last call (prompt + completion tokens)
    context_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.llm.usage.prompt_tokens + self.llm.usage.completion_tokens

    def money(self) -> str:
        return f"${self.llm.cost_usd:.4f}" + (" + unknown" if self.llm.unknown_calls else "")

    def footer(self) -> str:
        return (f"[research: {self.llm.calls} model call(s), {self.tool_calls} tool call(s), "
                f"{self.tokens:,} tokens, {self.money()}]")


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
        context_window: Callable[[ResolvedModel], int] = lambda model: 128_000,
        cwd: Path | None = None,
        mask: Callable[[str], str] = lambda text: text,
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
        self.context_window = context_window
        #: where the sub-agent may read without asking (the session's working directory)
        self.cwd = (cwd or Path.cwd()).resolve()
        #: the session's secret masker: the sub-agent's results are masked like the agent's
        self.mask = mask

    def router(self) -> ToolRouter:
        """A governed router over the research subset, decided by the session's policy."""
        chosen = [t for t in self._tools() if t.name in RESEARCH_TOOLS]
        router = ToolRouter(chosen, policy=self.policy)
        router.mask = self.mask
        return router

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
        self._seq = 0

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
        # the context may use 80% of the model's window; the run, max_tokens summed over its calls
        context_cap = int(0.8 * runner.context_window(model))
        self.progress(f"Research sub-agent started on {model.label} ({len(self.router)} tools; any write asks first).")
        for iteration in range(limits.max_iterations):
            stop = self._budget_stop()
            if stop is not None:
                return stop
            if iteration == limits.max_iterations - 1:
                return await self._final(model, "iteration limit")
            if self.stats.tokens >= limits.max_tokens or self.stats.context_tokens >= context_cap:
                return await self._final(model, "token budget")
            if not self.wrapped_up and (self.stats.tokens >= WRAP_UP_AT * limits.max_tokens
                                        or self.stats.context_tokens >= WRAP_UP_AT * context_cap):
                self.wrapped_up = True
                self.messages.append({"role": "user", "content": WRAP_UP_NOTE})
                self.progress("Token budget 80% used: asked the sub-agent to wrap up.")
            try:
                result = await self._call(model, tools=True)
            except LLMError as exc:
                if exc.info.kind == "context_overflow":
                    return await self._final(model, "context window", shrink=True)
                return self._failed(exc)
            if not result.tool_calls:
                self.progress("Research complete.")
                return result.content or "(the research agent returned an empty report)", True, self.stats
            calls = [self.router.parse(self._next_id(), c.name, c.arguments) for c in result.tool_calls]
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

    def _next_id(self) -> str:
        self._seq += 1
        return f"{self.parent}{SUB_CALL_MARK}{self._seq}"

    def _budget_stop(self) -> tuple[str, bool, ResearchStats] | None:
        """In YOLO mode a spent budget stops the sub-agent before its next model call (the
        main loop only pauses between its own steps, after the research call returned)."""
        policy = self.runner.policy
        if policy.mode != "yolo" or not policy.budget.reached():
            return None
        self.progress("Stopped: the YOLO budget is spent.")
        found = next((m["content"] for m in reversed(self.messages) if m.get("role") == "assistant" and m.get("content")),
                     "")
        text = ("Research stopped before it finished: the YOLO budget is spent "
                f"(${policy.budget.spent():.2f} of the ${policy.budget.cap_usd or 0:.2f} cap).")
        if found:
            text += f"\n\nWhat the research agent had written so far:\n{found}"
        return text, False, self.stats

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
        s.llm.add_usage(result.usage, result.cost_usd)
        s.context_tokens = result.usage.prompt_tokens + result.usage.completion_tokens
        self.progress(f"tokens: {s.tokens:,} · cost: {s.money()}")
        return result

    async def _final(self, model: ResolvedModel, why: str, shrink: bool = False) -> tuple[str, bool, ResearchStats]:
        stop = self._budget_stop()
        if stop is not None:
            return stop
        self.progress(f"Stopping at the {why}: asking for the final report.")
        if shrink:  # the provider refused the context: keep every result, but only its head
            for i, message in enumerate(self.messages):
                if message.get("role") == "tool" and len(message.get("content") or "") > 1500:
                    # a new dict, never an edit in place: the client reuses what it encoded for
                    # a message it has sent before (agent/llm/round_memo.py)
                    self.messages[i] = {**message, "content": message["content"][:1500] + "\n[... cut to fit the context window]"}
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
            self.progress(f"▸ {call.name} {short_json(call.arguments, 80)}")
            d = decisions[call.id]
            if d.verdict == "allow":
                reason = self._research_gate(call)
                if reason:  # reading outside the project, or a private address: the user decides
                    policy.discard(d)
                    d = decisions[call.id] = replace(d, verdict="ask", reason=reason, used=False)
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

    def _research_gate(self, call: ParsedCall) -> str:
        """What the research agent may not do on its own although the main agent may: it reads
        the least trusted text (web pages, READMEs), so a file outside the project or a page
        on a private address (a chain like "read the token file, fetch evil/?t=...") asks."""
        if call.error or call.params is None:
            return ""
        if call.name == "read":
            target = (self.runner.cwd / str(getattr(call.params, "path", ""))).resolve()
            if target != self.runner.cwd and self.runner.cwd not in target.parents:
                return f"reads {target}, outside the working directory"
        if call.name == "fetch_url":
            host = urlsplit(str(getattr(call.params, "url", ""))).hostname or ""
            if _private_host(host):
                return f"fetches from {host}, a local or private address"
        return ""

    async def _ask(self, calls: list[ParsedCall], decisions: dict[str, Decision]) -> dict[str, ToolResult]:
        """Calls the policy will not run on its own go to the user, like the main agent's."""
        from agent.tool_calls import gather_reviews

        policy = self.runner.policy
        reviews = await gather_reviews(calls, self.runner.tool_context)
        items = [ApprovalItem(tool_call_id=c.id, tool=c.name, arguments=c.arguments,
                              reason=f"research agent: {decisions[c.id].reason}",
                              estimated_cost_usd=decisions[c.id].estimate, always_ask=decisions[c.id].always_ask,
                              suggested_rule=decisions[c.id].suggested_rule, review=reviews.get(c.id))
                 for c in calls]
        answers = {d.tool_call_id: d for d in await self.runner.ask_user(items, self.parent)}
        out: dict[str, ToolResult] = {}
        approved: list[tuple[ParsedCall, Decision]] = []
        for call in calls:
            answer = answers.get(call.id)
            if answer is not None and answer.remember:
                self._remember(call, answer, decisions[call.id].suggested_rule)
            if answer is None or not answer.approved:
                feedback = f" User feedback: {answer.feedback}" if answer is not None and answer.feedback else ""
                self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="rejected",
                                    detail=(answer.feedback or "") if answer else ""))
                out[call.id] = ToolResult(f"The user rejected this call; it was NOT executed.{feedback}", False)
                continue
            if answer.edited_args is not None:  # the user changed the call: what runs is what they approved
                edited = json.dumps(answer.edited_args, ensure_ascii=False)
                call = self.router.parse(call.id, call.name, edited)
                self._rewrite_arguments(call.id, edited)
                if call.error:
                    self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="rejected", detail=call.error))
                    out[call.id] = ToolResult(f"The user's edited arguments were not valid: {call.error}", False)
                    continue
            decision = policy.approve(call)  # the user's yes, for exactly these arguments
            if not decision.allowed:
                self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="rejected", detail=decision.reason))
                out[call.id] = ToolResult(f"This call was NOT executed: it is {decision.reason}.", False)
                continue
            self.emit(ToolState(tool_call_id=call.id, tool=call.name, state="approved"))
            approved.append((call, decision))
        ran = await asyncio.gather(*(self._execute(c, d) for c, d in approved))
        for (call, _), result in zip(approved, ran):
            answer = answers[call.id]
            if answer.edited_args is not None:
                result = ToolResult("[Note: the user edited the arguments of this call before approving it; it ran "
                                    f"with {call.raw_arguments}]\n" + result.output, result.success, result.spill_path)
            out[call.id] = result
        return out

    def _rewrite_arguments(self, call_id: str, arguments: str) -> None:
        """The sub-agent's history shows the call as it really ran."""
        for message in reversed(self.messages):
            for call in message.get("tool_calls") or []:
                if call.get("id") == call_id:
                    call["function"]["arguments"] = arguments
                    return

    def _remember(self, call: ParsedCall, answer: ToolDecision, suggested: ApprovalRule | None) -> None:
        """"Always allow / deny" on a research card saves the same rule as on the agent's own."""
        self.runner.emit(ToolLog(tool="system", log=self.runner.policy.remember_answer(call, answer, suggested)))

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


def _private_host(host: str) -> bool:
    """A literal loopback, private or link-local address, or a local name (no DNS lookup)."""
    host = host.strip("[]").lower()
    if host in ("localhost", "") or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_unspecified
