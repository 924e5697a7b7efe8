"""``mlintern -p PROMPT``: one turn without a screen.

``text`` prints the final answer on stdout and progress on stderr; ``json`` prints one object
at the end; ``stream-json`` prints every protocol event as one JSON line as it happens.
Without ``--yolo`` any call that needs approval is rejected with a result telling the model
why (there is nobody to ask). With ``--yolo`` gated calls run within the budget (``--budget``,
default the config's ``yolo_cap_usd``); a call over it, an unestimable one or a scheduled job
is rejected with that reason, and once the spend reaches the cap the turn stops.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import signal
import sys
import threading
import time
from typing import Any, TextIO

from agent.config import Config, ConfigError, load_config
from agent.costs import CostLedger
from agent.encodable import encodable
from agent.llm.models import ModelIdError
from agent.protocol import (
    ApprovalRequired,
    Compacted,
    ErrorEvent,
    Event,
    ExecApproval,
    Guard,
    Interrupted,
    JobLog,
    JobUpdate,
    LLMCall,
    McpStatus,
    Ready,
    Resume,
    Shutdown,
    Steer,
    ToolCallEvent,
    ToolDecision,
    ToolLog,
    ToolOutput,
    TurnComplete,
    UserInput,
)
from agent.session import Session
from agent.terminal_text import visible
from agent.tools.output import short_json

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
PROGRESS_S = 30.0  # a line about the jobs waited for, this often
MCP_WAIT_S = 20.0  # the longest the first model call waits for MCP servers still connecting
SHUTDOWN_WAIT_S = 10.0  # the session's shutdown: local jobs' SIGTERM grace (3 s) and their last log lines
FORCE_EXIT_S = SHUTDOWN_WAIT_S + 5.0  # after a signal, the longest the clean path may take


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _progress(session: Session) -> str:
    parts = []
    for job in session.jobs.monitor.running():
        cost = session.jobs.monitor.cost_so_far(job)
        started = job.info.started_at
        ran = f" {_span(time.time() - started)}" if started else ""
        parts.append(f"{job.info.id} {job.info.stage.lower()}{ran}" + (f" ${cost:.2f}" if cost else ""))
    return "still waiting: " + ", ".join(parts)


def _follow_hint(session: Session, job) -> str:
    if job.info.backend == "hf":
        return f"{job.info.id} on Hugging Face Jobs ({job.info.flavor}): `hf jobs logs {job.info.id}`"
    return f"{job.info.id} (local): it stops with this process"


def _left_running(printer: HeadlessPrinter, session: Session, running: list) -> None:
    print(f"{len(running)} job(s) still running (--wait-jobs 0):", file=printer.err, flush=True)
    for job in running:
        print(f"  {_follow_hint(session, job)}", file=printer.err, flush=True)
    print(f"  `mlintern --resume {session.id[:12]}` follows them and lets the agent read their results",
          file=printer.err, flush=True)


def _stop_waiting(printer: HeadlessPrinter, session: Session, waited: float) -> None:
    running = session.jobs.monitor.running()
    print(f"stopped waiting after {_span(waited)} (--wait-jobs); still running:", file=printer.err, flush=True)
    for job in running:
        print(f"  {_follow_hint(session, job)}", file=printer.err, flush=True)
    print(f"  `mlintern --resume {session.id[:12]}` follows them", file=printer.err, flush=True)




_exit_armed = threading.Lock()


def _arm_force_exit(code: int, grace_s: float = FORCE_EXIT_S) -> None:
    """A signal always ends the process: if the clean path (tools stopped, jobs' last lines
    logged, the store closed) has not finished ``grace_s`` from now - a thread stuck in a read
    would hold the interpreter's exit forever - or a second signal comes, the exit hooks that
    kill live bash and job process groups run and the process ends with ``code``."""
    if not _exit_armed.acquire(blocking=False):
        _exit_now(code)

    def watchdog() -> None:
        threading.Event().wait(grace_s)
        _exit_now(code)

    threading.Thread(target=watchdog, name="exit-watchdog", daemon=True).start()


def _exit_now(code: int) -> None:
    try:
        atexit._run_exitfuncs()
    finally:
        os._exit(code)


def _agreed_permissions(config: Config, yolo: bool, err: TextIO) -> Config:
    """The config with the permissions the user agreed to where the file widened them since
    (agent/permissions.py): nobody is here to ask, so a widening is ignored with a warning -
    unless ``--yolo`` is on this command line, which takes the file as it is for this run
    (still warned about, and not remembered as agreed). Narrowing applies at once."""
    from agent.config import budget_override
    from agent.permissions import review_permissions

    review = review_permissions(config, cli_cap=budget_override() is not None)
    if review.note:
        print(f"Warning: {review.note}", file=err, flush=True)
    if not review.widened:
        return config
    changes = "\n".join(f"  + {line}" for line in review.wider)
    if yolo:
        print(f"Warning: {review.config_file} gives the agent more room than you last agreed to, and --yolo is on "
              f"the command line, so this run uses it (it is not remembered as agreed):\n{changes}",
              file=err, flush=True)
        return config
    print(f"Warning: {review.config_file} gives the agent more room than you last agreed to; this run ignores "
          f"that and keeps what you agreed to:\n{changes}\nStart `mlintern` to review the change and accept or "
          "undo it.", file=err, flush=True)
    return review.safe_config(config)


def _refusal(reason: str, yolo: bool) -> str:
    if yolo:
        return (f"Running headless, so nobody can approve this ({reason}). Continue without it, or explain "
                "what the user must approve or which --budget it needs.")
    return (f"Running headless without --yolo, so nobody can approve this ({reason}). "
            "Continue without it, or explain what the user must run with --yolo.")


class HeadlessPrinter:
    def __init__(self, fmt: str, out: TextIO, err: TextIO, yolo: bool = False):
        self.fmt = fmt
        self.out = out
        self.err = err
        self.why = "headless, nobody to approve it" if yolo else "headless without --yolo"
        self._mcp_states: dict[str, str] = {}

    def _mcp(self, event: McpStatus) -> None:
        """Each MCP server's news once per change, on stderr in every format but stream-json.
        Hugging Face's default server stays quiet when it cannot be reached (offline)."""
        for server in event.servers:
            before = self._mcp_states.get(server.name)
            self._mcp_states[server.name] = server.state
            if server.state == before or server.state in ("connecting", "disabled"):
                continue
            if server.state == "ready":
                n = len(server.tools)
                self.notice(f"MCP: {server.name} ready ({n} tool{'s' if n != 1 else ''})")
            elif server.state == "failed" and server.origin != "default":
                first, _, rest = (server.error or "no reason given").partition("\n")
                self.notice(f"MCP: {server.name} failed: {first}" + ("".join(f"\n    {line}" for line in rest.splitlines())))
            elif server.state == "untrusted":
                self.notice(f"MCP: {server.name} not started: {server.error} (run `mlintern mcp trust` there)")

    def status(self, line: str) -> None:
        if self.fmt == "text":
            print(visible(line), file=self.err, flush=True)

    def notice(self, line: str) -> None:
        """On stderr whatever the format (stdout carries only the answer or JSON). Text reaching
        a terminal never carries escape sequences (agent/terminal_text.py)."""
        print(visible(line), file=self.err, flush=True)

    def handle(self, event: Event) -> None:
        if self.fmt == "stream-json":
            print(event.model_dump_json(), file=self.out, flush=True)
            return
        if isinstance(event, McpStatus):
            self._mcp(event)
            return
        if getattr(event, "parent_call_id", None):
            self._research(event)
            return
        if isinstance(event, Ready):
            self.status(f"model: {event.model_label} · tools: {event.tool_count} · cwd: {event.cwd}")
        elif isinstance(event, ToolCallEvent):
            self.status(f"▸ {event.tool} {short_json(event.arguments)}")
        elif isinstance(event, ToolOutput) and not event.success:
            self.status(f"  ✗ {event.tool}: {event.output.strip().splitlines()[0][:200] if event.output.strip() else 'failed'}")
        elif isinstance(event, ToolLog) and event.tool == "system":
            self.status(f"  · {event.log}")
        elif isinstance(event, Guard):
            self.status(f"⚠ {event.message}")
        elif isinstance(event, Compacted):
            self.status(f"context compacted: {event.tokens_before:,} → {event.tokens_after:,} tokens ({event.method})")
        elif isinstance(event, ApprovalRequired):
            for item in event.items:
                self.status(f"✗ rejected {item.tool}: {item.reason} ({self.why})")
        elif isinstance(event, ErrorEvent):
            self.notice(f"Error: {event.message}")
        elif isinstance(event, JobUpdate) and event.status in ("COMPLETED", "ERROR", "CANCELED"):
            self.status(f"job {event.job_id}: {event.detail or event.status}")
        elif isinstance(event, JobLog):
            for line in event.lines:
                self.status(f"  [{event.job_id}] {line}")


    def _research(self, event: Event) -> None:
        """A research sub-agent's events, indented under its ``research`` call."""
        if isinstance(event, ToolCallEvent):
            self.status(f"  │ research ▸ {event.tool} {short_json(event.arguments, 80)}")
        elif isinstance(event, ToolOutput) and not event.success:
            first = event.output.strip().splitlines()[0][:160] if event.output.strip() else "failed"
            self.status(f"  │   ✗ {event.tool}: {first}")
        elif isinstance(event, ToolLog) and event.tool == "research" and not event.log.startswith(("tokens:", "▸ ")):
            self.status(f"  │ research: {event.log}")
        elif isinstance(event, ApprovalRequired):
            for item in event.items:
                self.status(f"  │   ✗ rejected {item.tool}: {item.reason} ({self.why})")


def user_text(line: str) -> str:
    """The text of one stdin line in Claude Code's stream-json input shape,
    ``{"type": "user", "message": {"role": "user", "content": TEXT or [{"type": "text", "text": …}]}}``;
    ValueError says what is wrong with it."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("type") != "user":
        raise ValueError('expected {"type": "user", "message": {...}}')
    message = data.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        content = "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    if not isinstance(content, str) or not content.strip():
        raise ValueError("the message has no text content")
    return encodable(content)  # "\ud800" is valid JSON, and would fail the model request


async def _read_messages(session: Session, state: dict, printer: HeadlessPrinter, stdin: Any = None) -> None:
    """Each stdin line is a user message: a new turn when none runs, else it steers the running one.
    Lines are read on a daemon thread, so a stdin left open never keeps the process alive."""
    import threading

    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    stream = stdin or sys.stdin

    def pump() -> None:
        try:
            for line in stream:
                loop.call_soon_threadsafe(lines.put_nowait, line)
        except (OSError, ValueError):
            pass
        finally:
            loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=pump, name="stdin-messages", daemon=True).start()
    number = 0
    try:
        while (line := await lines.get()) is not None:
            number += 1
            if not line.strip():
                continue
            try:
                text = user_text(line)
            except ValueError as exc:
                printer.notice(f"stdin line {number} skipped: {exc}")
                continue
            state["sent"] += 1
            session.submit(Steer(text=text))
    finally:
        state["eof"] = True


async def run_headless(
    prompt: str | None,
    *,
    model: str | None,
    output_format: str,
    yolo: bool,
    max_iterations: int | None,
    jobs_backend: str | None = None,
    budget: float | None = None,
    resume: str | None = None,
    wait_jobs: float | None = None,
    mcp_files: tuple = (),
    input_format: str = "text",
    keep_background: bool = False,
    stdin: Any = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"Error: {exc}", file=err)
        return EXIT_USAGE
    config = _agreed_permissions(config, yolo, err)
    mode = "yolo" if yolo else ("auto" if config.approval_mode == "yolo" else config.approval_mode)
    try:
        session = Session(config, model_id=model, approval_mode=mode, max_iterations=max_iterations,
                          jobs_backend=jobs_backend, yolo_cap_usd=budget, mcp_files=tuple(mcp_files))
    except (ModelIdError, ValueError) as exc:
        print(f"Error: {exc}", file=err)
        return EXIT_USAGE
    session.persist.headless = True  # saved like any session; the picker says it ran headless
    session.keep_background = keep_background
    # MCP servers still connecting get this long before the first model call (then it goes on)
    session.mcp_wait_s = MCP_WAIT_S
    printer = HeadlessPrinter(output_format, out, err, yolo=mode == "yolo")
    ledger = CostLedger()
    sub = session.subscribe("headless")
    runner = session.start()
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_sigint() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1 and not waiting:
            print("interrupting… (Ctrl+C again to quit)", file=err, flush=True)
            session.interrupt()
        else:
            runner.cancel()  # also while waiting for local jobs: the shutdown stops them

    def on_terminate() -> None:
        # killed by a CI timeout, `timeout(1)` or a closed terminal: stop the tools (their
        # process groups) and leave, rather than leave a training run going unattended. A
        # second signal, or a clean path that hangs (a thread stuck in a read), ends it for sure
        _arm_force_exit(EXIT_INTERRUPTED)
        print("terminating: stopping running tools…", file=err, flush=True)
        session.interrupt()
        runner.cancel()

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for sig, handler in ((signal.SIGINT, on_sigint), (signal.SIGTERM, on_terminate), (signal.SIGHUP, on_terminate)):
        try:
            loop.add_signal_handler(sig, handler)
        except (NotImplementedError, RuntimeError):
            pass
    if resume is not None:
        session.submit(Resume(target_session_id=resume))
    streamed = input_format == "stream-json"
    inputs = {"eof": not streamed, "sent": 0}
    reader = asyncio.create_task(_read_messages(session, inputs, printer, stdin)) if streamed else None
    if prompt is not None:
        session.submit(UserInput(text=encodable(prompt)))  # argv bytes that are not UTF-8 arrive as surrogates

    def more_to_come() -> bool:
        """stream-json input: lines may still come, or one came that no turn answered yet."""
        return streamed and (not inputs["eof"] or session.busy or not session._queue.empty())
    code = EXIT_ERROR
    waiting = False
    announced = False
    deadline: float | None = None
    next_progress = 0.0
    final: TurnComplete | None = None
    error: ErrorEvent | None = None
    async def next_event(timeout: float | None = None):
        # the session may stop without a terminal event (cancelled, crashed): do not wait forever
        getter = asyncio.ensure_future(sub.get())
        try:
            done, _ = await asyncio.wait({getter, runner}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                return getter.result()
        finally:
            if not getter.done():
                getter.cancel()  # a getter left behind would swallow a later event
        if not done:
            raise asyncio.TimeoutError
        if not sub.queue.empty():
            return sub.get_nowait()
        raise asyncio.CancelledError

    try:
        while True:
            if waiting:
                running = session.jobs.monitor.running()
                if not session.jobs.monitor.unsettled() and session.settled and sub.queue.empty():
                    break  # every job ended, the agent has read the news, and every event is printed
                if deadline is not None and loop.time() >= deadline:
                    _stop_waiting(printer, session, wait_jobs or 0.0)
                    break
                if running and loop.time() >= next_progress:
                    next_progress = loop.time() + PROGRESS_S
                    printer.notice(_progress(session))
            try:
                event = await next_event(1.0 if waiting else (0.2 if streamed else None))
            except asyncio.TimeoutError:
                if streamed and not waiting and not more_to_come() and session.settled and sub.queue.empty():
                    if inputs["sent"] == 0 and prompt is None:
                        printer.notice("no user message on stdin (one JSON line per message: "
                                       '{"type": "user", "message": {"role": "user", "content": "…"}})')
                        code = EXIT_USAGE
                    break
                continue
            printer.handle(event)
            if isinstance(event, LLMCall):
                ledger.add(event)
            elif isinstance(event, JobUpdate):
                ledger.job(event)
            if isinstance(event, ApprovalRequired):
                session.submit(ExecApproval(decisions=[
                    ToolDecision(tool_call_id=i.tool_call_id, approved=False, feedback=_refusal(i.reason, mode == "yolo"))
                    for i in event.items
                ]))
            elif isinstance(event, TurnComplete):
                final, code = event, EXIT_OK
                monitor = session.jobs.monitor
                if wait_jobs == 0:
                    if monitor.running():
                        _left_running(printer, session, monitor.running())
                    break
                # a job that ended a moment ago still has its log and its note to come, and a
                # turn for a job's news may already be queued or running
                unsettled = monitor.unsettled()
                if unsettled or not session.settled:
                    if unsettled and not announced:
                        announced = True
                        # the agent started jobs: wait for them, and it takes up their results in a new
                        # turn of its own as each ends (a local job would also die if we left now)
                        until = "until they end" if wait_jobs is None else f"up to {_span(wait_jobs)}"
                        printer.notice(f"waiting for {len(unsettled)} running job(s) {until}; the agent reads "
                                       "each result when it ends (Ctrl+C stops waiting)…")
                        deadline = None if wait_jobs is None else loop.time() + wait_jobs
                        next_progress = loop.time() + PROGRESS_S
                    waiting = True
                    continue
                if more_to_come():
                    continue  # the next stdin message starts the next turn
                break
            elif isinstance(event, ErrorEvent):
                error, code = event, EXIT_ERROR
                if waiting and session.jobs.monitor.running():
                    continue  # a wake turn failed (a provider error): the jobs are still worth waiting for
                if more_to_come():
                    continue  # that turn failed; the next message may still be answered
                break
            elif isinstance(event, Interrupted):
                code = EXIT_INTERRUPTED
                break
    except asyncio.CancelledError:
        code = EXIT_INTERRUPTED
    finally:
        if reader is not None:
            reader.cancel()
        for sig in handled:
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
        session.submit(Shutdown())
        try:
            # long enough for local jobs to get SIGTERM, their grace, and their last lines logged
            await asyncio.wait_for(runner, timeout=SHUTDOWN_WAIT_S)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            runner.cancel()
        while True:  # what the session said on the way out (stream-json ends with "shutdown")
            try:
                printer.handle(sub.get_nowait())
            except asyncio.QueueEmpty:
                break
    if output_format == "text" and final is not None:
        print(visible(final.final_response or ""), file=out, flush=True)
        r = final.receipt
        cost = f"${r.llm_cost_usd:.4f}" + (f" + {r.unknown_cost_calls} call(s) at unknown price" if r.unknown_cost_calls else "")
        printer.status(f"--- turn complete ({final.reason}): {r.llm_calls} model call(s), "
                       f"{r.usage.prompt_tokens:,} in / {r.usage.completion_tokens:,} out tokens, {cost}")
    elif output_format == "json":
        print(json.dumps({
            "session_id": session.id,
            "model": session.model.id,
            "is_error": code != EXIT_OK,
            "result": final.final_response if final else None,
            "reason": final.reason if final else ("interrupted" if code == EXIT_INTERRUPTED else "error"),
            "error": error.message if error else None,
            "receipt": final.receipt.model_dump() if final else None,
            # what was spent even when the turn did not complete
            "spent": {"llm_cost_usd": round(ledger.total.cost_usd, 6), "llm_calls": ledger.total.calls,
                      "unknown_cost_calls": ledger.total.unknown_calls,
                      "prompt_tokens": ledger.total.usage.prompt_tokens,
                      "completion_tokens": ledger.total.usage.completion_tokens,
                      # jobs end after the turn's receipt: their final cost is here
                      "compute_cost_usd": ledger.compute_cost_usd,
                      "unknown_compute_jobs": ledger.unknown_compute_jobs,
                      "jobs": {job_id: {"flavor": f, "status": st, "cost_usd": c}
                               for job_id, (f, st, c) in ledger.jobs.items()}},
        }), file=out, flush=True)
    return code
