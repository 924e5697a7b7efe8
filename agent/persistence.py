"""A session in the store (agent/store.py): saved as it goes, loaded back by ``resume``.

Saving: every event the session emits is recorded, and at each step that changes what a
resumed session would need (an assistant message, a tool result, an approval asked, a plan,
a job's news, the end of a turn) a ``Checkpoint`` is handed to the store's writer thread.
``turn_complete`` and ``approval_required`` are *held* until their checkpoint is committed,
and every event after them waits behind them, in order: no front end ever sees a turn end
that a ``kill -9`` could still lose. A failing store (full disk, locked file) releases the
held events at once and says so once; the session goes on in memory.

Resuming: the stored conversation, plan, approval mode, YOLO cap, spend and pending approval
come back; jobs are reattached (the job monitor follows a Hub job from the lines its log
file already holds, so no line is lost or written twice), and ``resume_complete`` tells the
front ends what to redraw and what happened while the app was closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

from agent.protocol import (
    ApprovalItem,
    ApprovalRequired,
    AwayJob,
    ContextUsage,
    ErrorEvent,
    Event,
    PinsChanged,
    PlanItem,
    PlanUpdate,
    ResumeComplete,
    SessionTitle,
    ToolLog,
    TranscriptItem,
)

if TYPE_CHECKING:
    from agent.session import Session
    from agent.store import Checkpoint, SessionStore, StoredJob

log = logging.getLogger(__name__)

#: events after which the state a resume needs has changed
CHECKPOINT_EVENTS = frozenset({
    "assistant_message", "tool_call", "tool_output", "approval_required", "plan_update", "job_update", "turn_complete",
    "interrupted", "error", "compacted", "undo_complete", "new_complete", "resume_complete", "session_title",
    "settings_changed", "pins_changed",
})
#: events a front end sees only once their checkpoint is committed
HELD_EVENTS = frozenset({"turn_complete", "approval_required"})
TERMINAL = frozenset({"turn_complete", "interrupted", "error"})
#: events neither stored nor checkpointed (agent/store.py SKIPPED_EVENTS, which are not
#: checkpoint events either)
_NOT_STORED = frozenset({"assistant_chunk", "job_log", "context_usage", "processing", "model_list", "mcp_status"})
TITLE_CHARS = 60
#: the system prompt of the title call (tests/fakes/openai_server.py recognises it)
TITLE_SYSTEM = ("You name chat sessions. Reply with a title of at most six words for the session that starts "
                "with the user's message below: no quotes, no punctuation at the end, nothing else.")
TITLE_MAX_CHARS = 300  # a model that rambles is cut off here (the call is cancelled)


def clean_title(text: str) -> str:
    """A model's answer as a title: one line, no quotes or markdown, at most TITLE_CHARS."""
    line = next((part.strip() for part in text.strip().splitlines() if part.strip()), "")
    line = line.strip("\"'`*#_ ").removeprefix("Title:").strip().strip("\"'`*_ ").rstrip(".")
    line = "".join(ch for ch in line if ch.isprintable())
    return automatic_title(line) if line else ""


def automatic_title(prompt: str) -> str:
    """A first prompt as a title: its first line, cut at a word near TITLE_CHARS."""
    line = next((part.strip() for part in prompt.strip().splitlines() if part.strip()), "")
    line = " ".join(line.split())
    if len(line) <= TITLE_CHARS:
        return line
    cut = line[:TITLE_CHARS].rsplit(" ", 1)[0]
    return (cut if len(cut) > TITLE_CHARS // 2 else line[:TITLE_CHARS]).rstrip(",.;:") + "…"


class SessionPersistence:
    def __init__(self, session: Session):
        self.session = session
        self.store: SessionStore | None = None
        #: why nothing is saved (None while it is, or before ``open``)
        self.error: str | None = None
        self.created = time.time()
        self.title = ""
        self.title_auto = True
        self.first_prompt = ""
        self.headless = False
        self.title_cost = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._held: deque[tuple[Event, int | None]] = deque()
        self._taken = 0  # checkpoints handed to the store
        self._saved = 0  # the newest one committed (or failed: the session goes on regardless)
        self._pending_items: list[ApprovalItem] = []
        self._title_task: asyncio.Task | None = None
        self._title_decided = False  # asked for (or not to be asked): once per session

    # ------------------------------------------------------------------ opening and closing

    async def open(self) -> None:
        """Open ``<data dir>/sessions.db`` (in a thread). A store that cannot be opened is said
        once; the session then runs in memory only."""
        self._loop = asyncio.get_running_loop()
        if not self.session.config.save_sessions:
            self.error = "save_sessions is off in the config"
            return
        from agent.store import SessionStore, db_path

        path = db_path(self.session.data_dir)
        try:
            self.store = await asyncio.to_thread(SessionStore.open, path, self._store_failed)
        except Exception as exc:
            self.error = f"{path} cannot be used: {exc}"
            self.session.emit(ToolLog(tool="system", log=f"Sessions are not being saved: {self.error}."))

    async def close(self) -> None:
        """The last checkpoint, then the writer stops; anything still held goes out."""
        if self._title_task is not None and not self._title_task.done():
            self._title_task.cancel()
        store = self.store
        if store is None:
            self._release_all()
            return
        self.checkpoint(status=self._status(None))
        await asyncio.to_thread(store.close)
        self.store = None
        self._release_all()

    def _store_failed(self, message: str) -> None:
        """From the writer thread: said on the loop as a system notice (not an error event: a
        turn may be running, and an ``error`` would end it for the front ends)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.session.emit, ToolLog(tool="system", log=f"Session store: {message}."))

    # ------------------------------------------------------------------ saving as it goes

    def intercept(self, event: Event) -> bool:
        """Called for every stamped event before it is published. True: held back (published
        later by ``_release``, in order)."""
        store = self.store
        if store is None:
            return False
        kind = event.type
        if kind in _NOT_STORED:  # the stream's chunks: a set lookup per token, nothing more
            if self._held:
                self._held.append((event, None))
                return True
            return False
        store.record(event)
        if kind == "llm_call" and event.kind == "title":  # type: ignore[attr-defined]
            self.title_cost += event.cost_usd or 0.0  # type: ignore[attr-defined]
        elif kind == "turn_complete":  # a first turn that streamed no text asks at its end
            self._title_if_wanted()
        main = getattr(event, "parent_call_id", None) is None  # a sub-agent's steps are not the session's
        if kind == "approval_required" and main:
            self._pending_items = list(event.items)  # type: ignore[attr-defined]
        number: int | None = None
        if kind in CHECKPOINT_EVENTS and main:
            number = self.checkpoint(status=self._status(kind))
        if number is not None and kind in HELD_EVENTS:
            self._held.append((event, number))
            return True
        if self._held:
            self._held.append((event, None))
            return True
        return False

    def _status(self, kind: str | None) -> str:
        session = self.session
        if session.engine.pending is not None or kind == "approval_required":
            return "waiting"
        if kind in TERMINAL or kind is None:
            return "idle"
        return "running" if session.busy else "idle"

    def checkpoint(self, status: str) -> int | None:
        store = self.store
        if store is None:
            return None
        self._taken += 1
        number = self._taken
        loop = self._loop

        def done(ok: bool) -> None:  # on the writer thread
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self._release, number)

        store.checkpoint(self._snapshot(status), done)
        return number

    def _snapshot(self, status: str) -> Checkpoint:
        from agent.store import Checkpoint

        session = self.session
        engine = session.engine
        entries = engine.history.entries
        body = entries[1:] if entries and entries[0].kind == "system" else list(entries)
        pending = engine.pending
        state: dict[str, Any] = {
            "mode": session.policy.mode,
            "yolo_cap_usd": session.policy.budget.cap_usd,
            "turn": engine.turn,
            "session_cost": engine.session_cost,
            "unknown_calls": engine.session_unknown_calls,
            "plan": [item.model_dump() for item in session.tool_state.plan],
            "pins": list(engine.pins),
            "pending": [item.model_dump() for item in self._pending_items] if pending is not None else None,
            "model": session.model.id,
            "effort": session.engine_settings.reasoning_effort,
            "title_cost": self.title_cost,
        }
        compute, unknown_jobs = session._compute_spent(None)
        state["unknown_jobs"] = unknown_jobs
        return Checkpoint(
            session_id=session.id, title=self.title, title_auto=self.title_auto, model=session.model.id,
            cwd=str(session.cwd), created=self.created, first_prompt=self.first_prompt, turns=engine.turn,
            # the title call is in the engine's total; the store keeps it apart
            spend_model=round(engine.session_cost - self.title_cost, 6), spend_compute=compute,
            spend_title=round(self.title_cost, 6),
            status=status, headless=self.headless, state=state, entries=body,
            jobs=[_job_row(job) for job in session.jobs.monitor.jobs.values()],
        )

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def _release(self, number: int) -> None:
        self._saved = max(self._saved, number)
        publish = self.session.bus.publish
        while self._held:
            event, waits_for = self._held[0]
            if waits_for is not None and waits_for > self._saved:
                return
            self._held.popleft()
            publish(event)

    def _release_all(self) -> None:
        self._saved = self._taken
        self._release(self._taken)

    # ------------------------------------------------------------------ titles

    def prompt_submitted(self, text: str) -> None:
        """A user prompt: the first one is the session's first prompt and automatic title."""
        if self.first_prompt:
            return
        self.first_prompt = text[:2000]
        if self.title_auto and not self.title:
            title = automatic_title(text)
            if title:
                self.title = title
                self.session.emit(SessionTitle(title=title, automatic=True))
        if self.title_auto and not self._title_decided:
            # the model's title is asked for once the answer streams: the request cannot
            # delay the answer's first token (a local server with one slot serves it second),
            # and the title shows while the turn runs. A turn that streams no text asks at its end
            self.session.engine.on_first_text = self._title_if_wanted

    def _title_if_wanted(self) -> None:
        """Ask the model for the title, once, unless the user named the session."""
        if self.title_auto and not self._title_decided and self.first_prompt:
            self._ask_for_title()

    def _ask_for_title(self) -> None:
        self._title_decided = True
        session = self.session
        if not session.config.model_titles or session.model.is_demo or self.headless:
            return  # the first prompt's line stays the title (a headless run exits before it would come)
        self._title_task = asyncio.create_task(self._model_title(), name="session-title")

    async def _model_title(self) -> None:
        """A short title from the model, once the first answer streams (a real model only): the
        first prompt's line stays the title if the call fails or the user named the session."""
        session = self.session
        received = 0
        task = asyncio.current_task()

        def on_text(piece: str) -> None:
            nonlocal received
            received += len(piece)
            if received > TITLE_MAX_CHARS and task is not None:
                task.cancel()

        try:
            result = await session.client.stream(
                session.model, [{"role": "system", "content": TITLE_SYSTEM},
                                {"role": "user", "content": self.first_prompt[:2000]}],
                None, kind="title", max_tokens=24, max_attempts=1, timeout_s=30, on_text=on_text)
        except asyncio.CancelledError:
            return
        except Exception as exc:  # the prompt's own line stays the title
            log.info("session title: the model call failed: %s", exc)
            return
        title = clean_title(result.content)
        if title and self.title_auto:
            self.title = title
            session.emit(SessionTitle(title=title, automatic=True))

    def rename(self, title: str) -> None:
        clean = " ".join("".join(ch for ch in title if ch.isprintable()).split())[:200]
        if not clean:
            self.session.emit(ErrorEvent(message="A title needs some text: /rename <title>.", kind="usage"))
            return
        self.title, self.title_auto = clean, False
        if self.store is not None:
            self.store.rename(self.session.id, clean)
        self.session.emit(SessionTitle(title=clean, automatic=False))

    def new_session(self) -> None:
        """/new: the old session stays in the store as it was; this one starts empty."""
        if self._title_task is not None and not self._title_task.done():
            self._title_task.cancel()
        self._title_task, self._title_decided = None, False
        self.session.engine.on_first_text = None
        self.created = time.time()
        self.title, self.title_auto, self.first_prompt, self.title_cost = "", True, "", 0.0
        self._pending_items = []

    # ------------------------------------------------------------------ resuming

    async def resume(self, target: str) -> None:
        from agent.history import Entry
        from agent.store import SessionNotFound

        session = self.session
        store = self.store
        if store is None:
            session.emit(ErrorEvent(kind="not_available", message=(
                f"Sessions are not being saved ({self.error or 'the store is not open yet'}), so there is nothing "
                "to resume.")))
            return
        try:
            summary = await asyncio.to_thread(store.find, target)
            if summary.id == session.id:
                session.emit(ErrorEvent(kind="already_open", message="That is the session open now."))
                return
            stored = await asyncio.to_thread(store.load, summary.id)
        except SessionNotFound as exc:
            session.emit(ErrorEvent(kind="not_found", message=f"Cannot resume: {exc}."))
            return
        engine = session.engine
        if engine.pending:
            engine.cancel_pending()
        self.checkpoint(status=self._status(None))  # the session left behind stays as it was
        previous = session.id
        state = stored.state

        session.id = summary.id
        session._seq = stored.last_seq
        engine.reset_conversation_state()
        session.tool_state.reset()
        engine.history.entries = [Entry(m.message, m.kind, turn=m.turn, cost_usd=m.cost)  # type: ignore[arg-type]
                                  for m in stored.messages if m.kind != "system"]
        store.adopt(summary.id, engine.history.entries)
        pins = state.get("pins")
        engine.pins = [str(p) for p in pins] if isinstance(pins, list) else []
        session._render_system_prompt()
        engine.turn = int(state.get("turn") or summary.turns or 0)
        engine.session_cost = float(state.get("session_cost") or 0.0)
        engine.session_unknown_calls = int(state.get("unknown_calls") or 0)
        session.tool_state.plan = _plan(state.get("plan"))
        self.created, self.title, self.title_auto = summary.created, summary.title, stored.title_auto
        if self._title_task is not None and not self._title_task.done():
            self._title_task.cancel()  # the title of the session left behind
        self._title_task, self._title_decided = None, bool(summary.first_prompt)
        engine.on_first_text = None
        self.title_cost = float(state.get("title_cost") or 0.0)
        self.first_prompt = summary.first_prompt
        mode = state.get("mode")
        if mode in ("ask", "auto", "yolo"):
            session.policy.set_mode(mode)
        cap = state.get("yolo_cap_usd")
        if isinstance(cap, (int, float)) and cap >= 0:
            session.policy.budget.cap_usd = float(cap)
            session.config.yolo_cap_usd = float(cap)

        interrupted = summary.status == "running"
        items = self._restore_pending(state.get("pending")) if summary.status == "waiting" else []
        if not items:
            self._pending_items = []
            engine.history.repair_dangling_tool_calls()  # calls cut off mid-run get their "interrupted" result
        jobs = await self._reattach(stored.jobs, since=summary.updated)
        session.emit(ResumeComplete(
            restored_messages=len(engine.history.entries) - 1, previous_session_id=previous, title=summary.title,
            model=str(state.get("model") or summary.model), transcript=transcript(engine.history.entries),
            plan=list(session.tool_state.plan), jobs=jobs, interrupted=interrupted,
            away_s=max(0.0, time.time() - summary.updated), session_cost_usd=round(engine.spent_usd(), 6),
            unknown_costs=engine.session_unknown_calls + session._compute_spent(None)[1],
        ))
        session.emit(PinsChanged(pins=list(engine.pins)))  # the marks on its messages, and /pins
        session.emit(PlanUpdate(plan=list(session.tool_state.plan)))
        context = engine.context
        try:  # the context gauge for the restored conversation (counting a long one takes a moment)
            tokens = await asyncio.to_thread(context.usage)
            session.emit(ContextUsage(tokens=tokens, window=context.window, threshold=context.threshold))
        except Exception:
            log.exception("resume: counting the restored context failed")
        session._settings_changed()
        if items:
            session.emit(ApprovalRequired(items=items))

    def _restore_pending(self, stored: Any) -> list[ApprovalItem]:
        """The approval the session waited for, back in the queue: its calls are parsed again
        from the conversation (the last assistant message), so answering runs them as before."""
        from agent.tool_calls import BUDGET_TOOL, Pending

        if not isinstance(stored, list) or not stored:
            return []
        try:
            items = [ApprovalItem.model_validate(item) for item in stored]
        except Exception:
            return []
        engine = self.session.engine
        if len(items) == 1 and items[0].tool == BUDGET_TOOL:
            engine.pending = Pending([], {items[0].tool_call_id: items[0].reason}, budget=items[0])
            self._pending_items = items
            return items
        wanted = {item.tool_call_id for item in items}
        entries = engine.history.entries
        last = next((e for e in reversed(entries) if e.message.get("role") == "assistant"), None)
        answered = {e.message.get("tool_call_id") for e in entries if e.message.get("role") == "tool"}
        calls = []
        for call in (last.message.get("tool_calls") or []) if last is not None else []:
            if call.get("id") in wanted and call.get("id") not in answered:
                function = call.get("function") or {}
                calls.append(engine.router.parse(call["id"], function.get("name", ""), function.get("arguments", "{}")))
        if {c.id for c in calls} != wanted:
            return []  # the conversation does not hold them as asked: repaired instead
        engine.pending = Pending(calls, {i.tool_call_id: i.reason for i in items},
                                 {i.tool_call_id: i.suggested_rule for i in items})
        self._pending_items = items
        return items

    async def _reattach(self, stored: list[StoredJob], since: float) -> list[AwayJob]:
        """Each stored job back in the monitor: ended ones listed and counted, running Hub jobs
        followed again from where their log stopped, local ones reported lost (they ran as
        this app's children and ended with it)."""
        from agent.jobs.base import JobError

        session = self.session
        monitor = session.jobs.monitor
        out: list[AwayJob] = []
        for job in stored:
            info = _job_info(job)
            if info.id in monitor.jobs:
                continue
            if info.finished:
                monitor.restore(self._backend(job.backend), info, job.turn, job.call_id, job.cost)
                continue
            if job.backend != "hf":
                info.stage, info.finished_at = "ERROR", info.finished_at or since
                info.message = "stopped when the app that ran it was closed (local jobs run as its children)"
                watched = monitor.restore(self._backend(job.backend), info, job.turn, job.call_id, 0.0)
                out.append(AwayJob(job_id=info.id, backend=job.backend, flavor=info.flavor, status=info.stage,
                                   cost_usd=0.0, ended_while_away=True, detail=info.message))
                continue
            backend = self._backend("hf")
            detail = ""
            try:
                info = await backend.inspect(info.id)
            except JobError as exc:
                detail = f"its state could not be checked ({exc}); following it anyway"
            except Exception as exc:
                detail = f"its state could not be checked ({type(exc).__name__}); following it anyway"
            watched = monitor.watch(backend, info, turn=job.turn, call_id=job.call_id, resume_log=True)
            out.append(AwayJob(job_id=info.id, backend="hf", flavor=info.flavor, status=info.stage,
                               cost_usd=monitor.cost_so_far(watched), ended_while_away=info.finished,
                               detail=detail or ("its log is being caught up" if info.finished else
                                                 "still running: reattached")))
        return out

    def _backend(self, name: str) -> Any:
        session = self.session
        if session.jobs.backend.name == name:
            return session.jobs.backend
        if name == "hf":
            return session.process_access._hf_backend()
        return session.jobs.backend


def transcript(entries: list[Any]) -> list[TranscriptItem]:
    from agent.history import message_text

    """What a front end redraws of a conversation: prompts, answers, tool calls and results
    (the system prompt and injected guard notes are the model's, not the user's)."""
    out: list[TranscriptItem] = []
    names: dict[str, str] = {}
    for entry in entries:
        message, kind = entry.message, entry.kind
        role = message.get("role")
        if kind == "system" or role == "system":
            continue
        text = message_text({"content": message.get("content")})  # content only, not the calls
        if role == "user":
            if kind == "user":
                out.append(TranscriptItem(kind="user", text=text, turn=entry.turn))
            elif kind in ("note", "summary"):
                out.append(TranscriptItem(kind="note", text=text, turn=entry.turn))
        elif role == "assistant":
            if text.strip():
                out.append(TranscriptItem(kind="assistant", text=text, turn=entry.turn))
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                names[call.get("id", "")] = function.get("name", "")
                out.append(TranscriptItem(kind="tool_call", tool=function.get("name", ""), tool_call_id=call.get("id"),
                                          arguments=_arguments(function.get("arguments")), turn=entry.turn))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            success = not text.startswith(("ERROR", "This call was NOT executed", "Tool was not executed"))
            out.append(TranscriptItem(kind="tool_output", text=text, tool=message.get("name") or names.get(call_id or ""),
                                      tool_call_id=call_id, success=success, turn=entry.turn))
    return out


def _arguments(raw: Any) -> dict[str, Any]:
    import json

    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {"(unparsed)": str(raw)[:500]}
    return value if isinstance(value, dict) else {"value": value}


def _plan(stored: Any) -> list[PlanItem]:
    plan = []
    for item in stored or []:
        try:
            plan.append(PlanItem.model_validate(item))
        except Exception:
            continue
    return plan


def _job_row(job: Any) -> dict[str, Any]:
    info = job.info
    return {"job_id": info.id, "backend": info.backend, "flavor": info.flavor, "stage": info.stage,
            "call_id": job.call_id, "turn": job.turn, "log_path": str(job.log_path), "log_offset": job.lines_seen,
            "cost": job.cost_usd, "info": asdict(info)}


def _job_info(job: StoredJob) -> Any:
    from agent.jobs.base import JobInfo

    known = {f.name for f in fields(JobInfo)}
    data = {k: v for k, v in job.info.items() if k in known}
    data.setdefault("id", job.job_id)
    data.setdefault("backend", job.backend)
    data.setdefault("stage", job.stage or "UNKNOWN")
    data.setdefault("flavor", job.flavor)
    return JobInfo(**data)


__all__ = ["SessionPersistence", "TITLE_SYSTEM", "automatic_title", "clean_title", "transcript"]
