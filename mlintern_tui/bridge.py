"""From the engine's event bus to the widgets.

Runs in the app's own asyncio loop (the engine does too). Token chunks are coalesced and
written to the answer's MarkdownStream about 20 times a second; tool and job log lines about
15 times a second (job lines per job, to the Jobs pane, which parses losses and buffers
while hidden); everything else is applied as it comes, after flushing pending text so the
order on screen is the order of events.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from agent.protocol import (
    ApprovalRequired,
    AssistantChunk,
    AssistantMessage,
    Compacted,
    CompactionPreview,
    ContextUsage,
    ErrorEvent,
    Event,
    Guard,
    Interrupted,
    JobLog,
    JobUpdate,
    LLMCall,
    McpStatus,
    ModelList,
    NewComplete,
    PinsChanged,
    PlanUpdate,
    Processing,
    Ready,
    ResumeComplete,
    RunList,
    RunRecord,
    SessionTitle,
    SettingsChanged,
    ToolCallEvent,
    ToolLog,
    ToolOutput,
    ToolState,
    TracePreview,
    TraceStatus,
    TurnComplete,
    UndoComplete,
    UserMessage,
)
from mlintern_tui.terminal_safe import safe_event

if TYPE_CHECKING:
    from textual.timer import Timer

    from mlintern_tui.app import MLInternApp

TEXT_FLUSH_S = 0.05
#: a stream faster than this (characters a second, ~400 tokens) is drawn every FAST_FLUSH_S
#: instead: nobody reads words arriving that fast, and each batch that adds a line to the
#: answer costs a layout pass and a repaint of the screen (at 2,000 tokens/s, 200 of each)
FAST_CHARS_PER_S = 1_600
FAST_FLUSH_S = 0.15
LOG_FLUSH_S = 1 / 15
#: how often the status bar's running estimate of streamed tokens moves: every text batch
#: would redraw the status line 20 times a second for a number nobody reads that fast
STREAM_ESTIMATE_S = 0.25


class Bridge:
    def __init__(self, app: MLInternApp):
        self.app = app
        self._text: list[str] = []
        self._log_lines: list[str] = []
        self._log_source: str | None = None
        self._log_call: str | None = None
        self._call_titles: dict[str, str] = {}
        self._streamed_chars = 0
        self._estimate_shown_at = 0.0
        self._estimate_shown = 0  # streamed chars the status bar shows
        self._lock = asyncio.Lock()
        self._wrote_at = 0.0  # when text last went to the answer
        self._fast = False  # the last batches came faster than FAST_CHARS_PER_S
        self._job_lines: dict[str, list[str]] = {}  # job id -> lines since the last flush
        self.events_seen = 0
        #: the app's flush intervals (``start_timers``): paused while there is nothing to flush,
        #: so an idle app does no work at all (35 ticks a second did nothing before)
        self._text_timer: Timer | None = None
        self._log_timer: Timer | None = None

    def start_timers(self) -> None:
        """The text and log flush intervals, paused until something arrives to flush."""
        app = self.app
        self._text_timer = app.set_interval(TEXT_FLUSH_S, self.flush_text, name="flush-text", pause=True)
        self._log_timer = app.set_interval(LOG_FLUSH_S, self.flush_logs, name="flush-logs", pause=True)

    @property
    def idle(self) -> bool:
        """Nothing waits to be drawn (the flush timers are paused)."""
        return not (self._text or self._log_lines or self._job_lines or self._estimate_pending)

    @property
    def _estimate_pending(self) -> bool:
        return self._streamed_chars != self._estimate_shown

    # ------------------------------------------------------------------ batching

    async def flush_text(self) -> None:
        """The flush timer's tick (every TEXT_FLUSH_S; every FAST_FLUSH_S while a stream runs
        faster than anyone reads). Any other event flushes at once, so order is kept."""
        if self._fast and self._text and time.monotonic() - self._wrote_at < FAST_FLUSH_S:
            return
        # the flush timer runs in its own task: without the lock an event handled while a
        # flush awaits its mount could create a second answer or land above a tool card
        async with self._lock:
            await self._flush_text_locked()
            if not self._text and not self._estimate_pending and self._text_timer is not None:
                self._text_timer.pause()  # resumed by the next chunk

    async def _flush_text_locked(self) -> None:
        text = ""
        if self._text:
            text = "".join(self._text)
            self._text.clear()
            self._streamed_chars += len(text)
        # the flush timer calls this without text too, so the last count of a stream that
        # pauses still shows (within STREAM_ESTIMATE_S)
        if self._streamed_chars != self._estimate_shown:
            now = time.monotonic()
            if now - self._estimate_shown_at >= STREAM_ESTIMATE_S:
                self._estimate_shown_at, self._estimate_shown = now, self._streamed_chars
                self.app.update_status(streamed_chars=self._streamed_chars)
        if text:
            now = time.monotonic()
            self._fast = len(text) > FAST_CHARS_PER_S * max(now - self._wrote_at, TEXT_FLUSH_S)
            self._wrote_at = now
            await self.app.conversation.write_answer(text)

    def flush_logs(self) -> None:
        if self._log_timer is not None and not self._log_lines and not self._job_lines:
            self._log_timer.pause()  # resumed by the next line
        if self._log_lines:
            lines, self._log_lines = self._log_lines, []
            self.app.tool_log.write_lines(lines, self._log_source)
        pane = self.app.jobs_pane
        if self._job_lines and pane is not None:
            batches, self._job_lines = self._job_lines, {}
            for job_id, lines in batches.items():
                pane.append_lines(job_id, lines)

    # ------------------------------------------------------------------ research sub-agents

    async def _research_event(self, event: Event) -> None:
        """A sub-agent's event: drawn inside its research card, never as a main-turn block
        (the main answer may be streaming around it). Its spend still counts in /cost."""
        app = self.app
        parent = event.parent_call_id  # type: ignore[union-attr]
        card = app.conversation.cards.get(parent)
        add_step = getattr(card, "add_step", None)
        if isinstance(event, LLMCall):
            app.costs.add(event)
            app.on_llm_call(event)
            if add_step is not None:
                card.add_llm_call(event.usage.prompt_tokens + event.usage.completion_tokens, event.cost_usd)
        elif add_step is None:
            pass  # its card was pruned or never drawn: nothing to update
        elif isinstance(event, ToolCallEvent):
            add_step(event.tool_call_id, event.tool, event.arguments)
        elif isinstance(event, ToolState):
            card.set_step_state(event.tool_call_id, event.state)
        elif isinstance(event, ToolOutput):
            card.set_step_result(event.tool_call_id, event.output, event.success)
        elif isinstance(event, ToolLog) and event.tool == "research":
            card.set_status(event.log)
        elif isinstance(event, ApprovalRequired):
            from widgets.approval_card import BUDGET_TOOL  # the card's module, loaded with the first card

            for item in event.items:
                add_step(item.tool_call_id, item.tool, item.arguments)
                card.set_step_state(item.tool_call_id, "waiting")
        if isinstance(event, ApprovalRequired):
            app.request_approval(event)
            app.signal_terminal(event)

    # ------------------------------------------------------------------ a resumed session

    async def _resumed(self, event: ResumeComplete) -> None:
        """Another session came back: its conversation replaces this one on screen (the tail of
        it), then a line saying what was restored and, when there is news, the away card. The
        engine follows with the plan, the reattached jobs' updates and any pending approval,
        which the usual handlers draw."""
        app = self.app
        self.flush_logs()
        self._text.clear()
        self._call_titles.clear()
        self._log_call = None
        self._streamed_chars = self._estimate_shown = 0
        conv = app.conversation
        await conv.restore(event.transcript)
        app.plan_view.plan = tuple(event.plan)
        app.tool_log.clear()
        app.on_new_conversation()  # the old session's pending approvals are not this one's
        name = f"“{event.title}”" if event.title else "the session"
        spent = f"${event.session_cost_usd:.2f} spent so far"
        if event.unknown_costs:  # never a $0 that only means "not priced"
            spent = (f"{spent} plus {event.unknown_costs} call(s) or job(s) at an unknown price"
                     if event.session_cost_usd else "its cost so far unknown (no known price)")
        await app.notice("info", f"Resumed {name}: {event.restored_messages:,} message"
                                 f"{'s' if event.restored_messages != 1 else ''} restored, {spent}.")
        from widgets.away_card import worth_showing  # its card's module: only once a session is resumed

        if worth_showing(event.jobs, event.interrupted):
            await conv.add_away_card(event.jobs, event.away_s, event.interrupted)
        app.on_resumed(event)

    # ------------------------------------------------------------------ events

    async def pump(self, subscription) -> None:
        async for event in subscription:
            self.events_seen += 1
            try:
                await self.handle(event)
            except Exception as exc:  # a rendering bug must not stop the stream of events
                self.app.log.error(f"bridge failed on {event.type}: {exc!r}")

    async def handle(self, event: Event) -> None:
        event = safe_event(event)  # nothing from outside reaches the terminal as an escape sequence
        async with self._lock:
            await self._handle(event)

    async def _handle(self, event: Event) -> None:
        app = self.app
        conv = app.conversation
        if isinstance(event, AssistantChunk):
            if event.reset:
                self._text.clear()
                await conv.reset_answer()
            else:
                self._text.append(event.content)
                if self._text_timer is not None:
                    self._text_timer.resume()
            return
        if getattr(event, "parent_call_id", None):
            await self._research_event(event)
            return
        if isinstance(event, ToolLog) and event.tool != "system":
            if event.tool_call_id != self._log_call:
                # a header per call that produces output, so interleaved runs stay readable
                self._log_call = event.tool_call_id
                self._log_lines.append(f"── {event.tool} {self._call_titles.get(event.tool_call_id or '', '')} ──")
                app.on_tool_output_started()
            self._log_source = event.tool
            self._log_lines.extend(event.log.splitlines() or [""])
            if self._log_timer is not None:
                self._log_timer.resume()
            return
        if isinstance(event, JobLog):  # no bearing on the conversation: no text flush
            if app.jobs_pane is None:
                await app.ensure_jobs_pane()
            self._job_lines.setdefault(event.job_id, []).extend(event.lines)
            if self._log_timer is not None:
                self._log_timer.resume()
            return
        await self._flush_text_locked()
        if isinstance(event, Ready):
            app.on_engine_ready(event)
        elif isinstance(event, Processing):
            app.update_status(busy=True)
            await conv.open_turn()
            if event.woke_for:  # a turn nobody typed: say why the agent is working
                await app.notice("info", f"{event.message}.")
        elif isinstance(event, AssistantMessage):
            await conv.end_answer(event.content)
        elif isinstance(event, ToolCallEvent):
            self.flush_logs()
            card = await conv.add_tool_call(event.tool_call_id, event.tool, event.arguments, "running")
            self._call_titles[event.tool_call_id] = card.header_text()
        elif isinstance(event, ToolState):
            conv.set_tool_state(event.tool_call_id, event.state)
        elif isinstance(event, ToolOutput):
            self.flush_logs()
            conv.set_tool_output(event.tool_call_id, event.output, event.success)
        elif isinstance(event, ToolLog):
            await app.notice("info", event.log)
        elif isinstance(event, ApprovalRequired):
            from widgets.approval_card import BUDGET_TOOL  # the card's module, loaded with the first card

            for item in event.items:
                if item.tool == BUDGET_TOOL:  # a question about money, not a tool call: no card
                    a = item.arguments
                    await app.notice("guard", f"YOLO paused: ${a.get('spent_usd', 0):.2f} spent of the "
                                              f"${a.get('cap_usd', 0):.2f} cap. Raise it to go on, or stop here.")
                    continue
                await conv.add_tool_call(item.tool_call_id, item.tool, item.arguments, "waiting")
            app.request_approval(event)
            app.signal_terminal(event)
        elif isinstance(event, PlanUpdate):
            app.plan_view.plan = tuple(event.plan)
        elif isinstance(event, LLMCall):
            self._streamed_chars = self._estimate_shown = 0
            app.costs.add(event)
            app.on_llm_call(event)
            app.update_status(streamed_chars=0)
        elif isinstance(event, ContextUsage):
            app.update_status(context_tokens=event.tokens, context_window=event.window)
        elif isinstance(event, UserMessage):
            await conv.land_user_message(event.text, event.steered)  # a message sent while the agent worked
        elif isinstance(event, Compacted):
            await app.compaction.on_compacted(event)
            app.update_status(context_tokens=event.tokens_after)
        elif isinstance(event, CompactionPreview):
            await app.compaction.on_preview(event)
        elif isinstance(event, PinsChanged):
            app.conversation.pins = tuple(event.pins)  # /pins lists them; pinned messages are marked
        elif isinstance(event, Guard):
            spent = ""
            if event.tokens_spent:
                cost = "unknown cost" if event.cost_usd is None else f"${event.cost_usd:.4f}"
                spent = f" ({event.tokens_spent:,} tokens, {cost} spent in the loop)"
            await app.notice("guard", event.message + spent)
            if event.remedies:  # the turn is paused: the doom-loop card asks what to do
                app.offer_remedies(event)
        elif isinstance(event, TurnComplete):
            self.flush_logs()
            await conv.end_answer()  # the final text already arrived as assistant_message
            await conv.add_receipt(event.receipt)
            app.on_turn_end(event.receipt)
            app.signal_terminal(event)
        elif isinstance(event, Interrupted):
            self.flush_logs()
            await conv.end_answer()
            await app.notice("interrupt", "Interrupted." + (" The partial answer was kept." if event.partial_text else ""))
            app.on_turn_end(None)
        elif isinstance(event, ErrorEvent) and event.kind == "mcp":
            await app.on_mcp_error(event.message)  # an answer to /mcp, beside the turn: it goes on
        elif isinstance(event, ErrorEvent) and event.kind == "runs":
            await app.runs.on_error(event.message)  # an answer to the run board, beside the turn
        elif isinstance(event, ErrorEvent) and event.kind == "pin":
            await app.notice("error", event.message)  # /unpin of something not pinned: no turn ends
        elif isinstance(event, ErrorEvent) and event.kind == "traces":
            await app.traces.on_error(event.message)  # an answer to the trace preview: the same
        elif isinstance(event, ErrorEvent):
            self.flush_logs()
            await conv.end_answer()
            await app.notice("error", event.message)
            app.on_turn_end(None)
        elif isinstance(event, UndoComplete):
            await conv.remove_last_turn()
            await app.notice("info", f"Undone: {event.removed_messages} message(s) removed from the conversation.")
        elif isinstance(event, NewComplete):
            conv.drop_pending_steers()  # the engine forgot them with the old conversation
            app.plan_view.plan = ()
            app.tool_log.clear()
            app.on_new_conversation()
            app.show_title("")
        elif isinstance(event, ResumeComplete):
            await self._resumed(event)
        elif isinstance(event, SessionTitle):
            app.show_title(event.title)
            if not event.automatic:
                await app.notice("info", f"Session renamed: “{event.title}”." if event.title else "Session title cleared.")
        elif isinstance(event, JobUpdate):
            self.flush_logs()  # a job's last lines before its final status and notice
            app.costs.job(event)  # /cost lists every job with its latest cost
            await app.on_job_update(event)
            if event.status in ("COMPLETED", "ERROR", "CANCELED"):
                kind = "info" if event.status == "COMPLETED" else "guard"
                await app.notice(kind, f"Job {event.job_id} {event.detail or event.status.lower()}")
                app.signal_terminal(event)
        elif isinstance(event, SettingsChanged):
            await app.on_settings_changed(event)
        elif isinstance(event, ModelList):
            app.on_model_list(event)
        elif isinstance(event, McpStatus):
            await app.on_mcp_status(event)
        elif isinstance(event, TraceStatus):
            await app.traces.on_status(event)
        elif isinstance(event, TracePreview):
            app.traces.on_preview(event)
        elif isinstance(event, RunList):
            app.runs.on_list(event)
        elif isinstance(event, RunRecord):
            app.runs.on_record(event)
