"""One model step: fit the history into the window, stream the answer, record it.

Before each request the history is compacted if it is near the window (and once more, then
retried, if the provider still says it is too long). While the answer streams, its text goes
out as ``AssistantChunk`` events, coalesced per network read, and is kept as the partial
answer an interrupt preserves. When it is done, the answer (text, tool calls, thinking
blocks) becomes one assistant message in the history.

Compaction's summary is the other request the engine makes, so it lives here too.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from agent.context import SUMMARY_SYSTEM, render_transcript
from agent.encodable import encodable
from agent.history import for_request
from agent.llm.client import LLMResult
from agent.llm.errors import LLMError
from agent.llm.learned_windows import stated_window
from agent.protocol import AssistantChunk, Compacted, CompactionPreview, ContextUsage, ToolLog
from agent.tools.router import ParsedCall

if TYPE_CHECKING:
    from agent.loop import TurnEngine


def _encodable_result(result: LLMResult) -> LLMResult:
    """The answer with text every serialiser takes: a lone surrogate in the model's text or in
    a call's id, name or arguments becomes U+FFFD (agent/encodable.py), never a crashed turn."""
    result.content = encodable(result.content or "")
    for call in result.tool_calls:
        call.id, call.name = encodable(call.id or ""), encodable(call.name or "")
        call.arguments = encodable(call.arguments or "")
    return result


class ModelStep:
    def __init__(self, engine: TurnEngine):
        self.engine = engine
        #: text of the answer streaming now; what an interrupt keeps
        self.partial: list[str] = []
        #: streamed text not yet emitted (see on_text)
        self.unsent_text: list[str] = []
        self._flush_pending = False

    # ------------------------------------------------------------------ the request

    async def call(self) -> LLMResult:
        engine = self.engine
        await self.compact(force=False)
        context = engine.context
        engine.emit(ContextUsage(tokens=context.usage(), window=context.window, threshold=context.threshold))
        overflow_retried = False
        while True:
            self.partial = []
            try:
                # client and model are looked up per request, never kept: /model swaps the model
                return _encodable_result(await engine.client.stream(
                    engine.model,
                    for_request(engine.history.messages()),
                    engine.router.specs(),
                    kind="main",
                    on_text=self.on_text,
                    on_reset=self.on_reset,
                    reasoning_effort=engine.settings.reasoning_effort,
                ))
            except LLMError as exc:
                if exc.info.kind != "context_overflow" or overflow_retried:
                    raise
                overflow_retried = True
                stated = stated_window(f"{exc.info.detail} {exc.info.message}")
                reason = "the provider said the context is too long"
                if stated is not None and stated < engine.window.tokens:
                    old = engine.learn_window(stated)
                    reason = f"the server's context window is {stated:,} tokens, not {old:,}"
                    engine.emit(ToolLog(tool="system", log=(
                        f"{engine.model.label}'s server says its context window is {stated:,} tokens (it was taken "
                        f"as {old:,}): compacting to fit, and remembering it for this model.")))
                await self.compact(force=True, reason=reason)

    # ------------------------------------------------------------------ streamed text

    def on_text(self, piece: str) -> None:
        # pieces parsed from one network read go out as one event: the bus, the UI bridge
        # and stream-json readers see a few hundred events per answer, not one per token
        piece = encodable(piece)
        self.partial.append(piece)
        self.unsent_text.append(piece)
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self.flush_text)

    def flush_text(self) -> None:
        self._flush_pending = False
        if self.unsent_text:
            text = "".join(self.unsent_text)
            self.unsent_text.clear()
            self.engine.emit(AssistantChunk(content=text))
            hook = self.engine.on_first_text
            if hook is not None:
                self.engine.on_first_text = None
                hook()

    def on_reset(self) -> None:
        """The stream dropped and is retried: what it said so far is void."""
        self.partial = []
        self.unsent_text.clear()
        self.engine.emit(AssistantChunk(content="", reset=True))

    # ------------------------------------------------------------------ the answer in history

    def append_assistant(self, result: LLMResult, calls: list[ParsedCall] | None) -> None:
        engine = self.engine
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
        engine.history.append(
            msg, "assistant", turn=engine.turn, cost_usd=result.cost_usd,
            llm_tokens=result.usage.prompt_tokens + result.usage.completion_tokens,
        )
        self.partial = []

    # ------------------------------------------------------------------ compaction

    async def compact(self, *, force: bool, focus: str | None = None, reason: str = "") -> None:
        engine = self.engine
        if not force and not engine.context.needs_compaction():
            return
        engine._repair()

        async def summarise(middle: list[dict[str, Any]]) -> str:
            return await self.summarise(middle, focus)

        if not force:  # an automatic compaction: what it takes and keeps, shown as it starts
            plan = engine.context.plan()
            engine.emit(CompactionPreview(summarise=plan.summarise, keep=plan.keep, pinned=list(engine.pins),
                                          tokens=plan.tokens, threshold=plan.threshold, automatic=True))
        report = await engine.context.compact(summarise, force=True)
        engine.doom.reset()
        if report.method != "none" or force:
            detail = report.detail + (f" ({reason})" if reason else "")
            engine.emit(Compacted(
                tokens_before=report.tokens_before, tokens_after=report.tokens_after,
                messages_before=report.messages_before, messages_after=report.messages_after,
                method=report.method, detail=detail.strip(),  # type: ignore[arg-type]
                summary=report.summary, dropped=report.dropped or [],
            ))

    async def summarise(self, middle: list[dict[str, Any]], focus: str | None) -> str:
        engine = self.engine
        budget_chars = max(8_000, int(engine.window.tokens * 0.5) * 4)
        transcript = render_transcript(middle)
        chunks = [transcript[i:i + budget_chars] for i in range(0, len(transcript), budget_chars)] or [""]
        summary = ""
        for n, chunk in enumerate(chunks, 1):
            ask = "Summarise this part of the agent's log." if len(chunks) == 1 else f"Part {n} of {len(chunks)} of the agent's log."
            if summary:
                ask += f"\n\nSummary of the earlier parts (merge it into your answer):\n{summary}"
            if focus:
                ask += f"\n\nThe user asked to focus the summary on: {focus}"
            result = await engine.client.stream(
                engine.model,
                [{"role": "system", "content": SUMMARY_SYSTEM}, {"role": "user", "content": f"{ask}\n\n<log>\n{chunk}\n</log>"}],
                None,
                kind="compaction",
                max_tokens=min(4096, max(256, engine.window.tokens // 10)),
            )
            summary = result.content
        return summary
