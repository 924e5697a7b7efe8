"""The ``bash`` tool: one shell command in its own process group, streamed live.

Each command gets a new session (so a new process group led by the shell). That is what
lets a timeout or an interrupt take down everything the command started — pipelines,
``&`` children, ``python -m torch.distributed`` workers — with one ``killpg``, while a job
the agent deliberately detached in an *earlier* call lives in another group and survives.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import os
import re
import signal
from collections import deque
from pathlib import Path
from typing import Callable

from pydantic import Field

from agent.tools.base import ApprovalSettings, Tool, ToolContext, ToolParams, ToolResult
from agent.secrets import agent_environment
from agent.tools.output import apply_output_budget

DEFAULT_TIMEOUT_S = 120
MAX_TIMEOUT_S = 36_000
#: how long a process group gets between SIGTERM and SIGKILL
KILL_GRACE_S = 2.0
#: after the shell exits, how long we keep reading output that children still write
DRAIN_S = 0.5
#: in-memory capture limit; past it the middle is dropped (a runaway ``yes`` must not OOM us)
CAPTURE_HEAD_CHARS = 4_000_000
CAPTURE_TAIL_CHARS = 4_000_000
#: a partial line longer than this is flushed without waiting for its newline
MAX_PARTIAL_CHARS = 65_536
#: live log: lines are delivered at most this often, and at most this many per delivery
LOG_INTERVAL_S = 0.1
LOG_MAX_LINES = 100

# CSI (colours, cursor moves), OSC (titles, hyperlinks), charset selection (tput sgr0's
# "ESC ( B") and the two-byte escapes.
_ANSI_RE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[()*+][0-9A-Za-z]|[@-Z\\-_])"
)


def strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


def _visible(line: str) -> str:
    """What a terminal would show for one line: progress bars redraw with ``\\r``."""
    line = strip_ansi(line).rstrip("\r")
    if "\r" in line:
        segments = [s for s in line.split("\r") if s]
        line = segments[-1] if segments else ""
    return line


class BashParams(ToolParams):
    command: str = Field(description="The shell command to run with /bin/bash -c.")
    description: str = Field(
        "", description="Five to ten words saying what the command does, shown to the user."
    )
    work_dir: str = Field(
        "",
        description="Directory to run in (absolute, or relative to the session's working "
        "directory). Defaults to the session's working directory.",
    )
    timeout: int = Field(
        DEFAULT_TIMEOUT_S,
        ge=1,
        le=MAX_TIMEOUT_S,
        description=f"Seconds before the command and everything it started are killed "
        f"(default {DEFAULT_TIMEOUT_S}, max {MAX_TIMEOUT_S}). For long jobs prefer running "
        "in the background with nohup and polling the log.",
    )


class _Capture:
    """Keeps the output for the result, bounded: the head and a rolling tail."""

    def __init__(self) -> None:
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self.dropped = 0

    def add(self, line: str) -> None:
        if self._head_len < CAPTURE_HEAD_CHARS:
            self._head.append(line)
            self._head_len += len(line) + 1
            return
        self._tail.append(line)
        self._tail_len += len(line) + 1
        while self._tail_len > CAPTURE_TAIL_CHARS and len(self._tail) > 1:
            old = self._tail.popleft()
            self._tail_len -= len(old) + 1
            self.dropped += len(old) + 1

    def text(self) -> str:
        parts = list(self._head)
        if self.dropped:
            parts.append(f"... [{self.dropped:,} characters of output were not kept in memory] ...")
        parts.extend(self._tail)
        return "\n".join(parts).rstrip("\n")


class _LiveLog:
    """Feeds ``ctx.log`` promptly without flooding it.

    ``cat`` of a big file can print 100k lines in a blink; every one would become an event
    the bus, the store and the UI must carry. Lines are delivered in small bursts, and when
    a burst overflows only its newest lines are kept (the full text is in the result).
    """

    def __init__(self, sink: Callable[[str], None]) -> None:
        self._sink = sink
        self._pending: deque[str] = deque(maxlen=LOG_MAX_LINES)
        self._skipped = 0
        self._last_flush = 0.0

    def push(self, line: str) -> None:
        if len(self._pending) == LOG_MAX_LINES:
            self._skipped += 1
        self._pending.append(line)

    def flush(self, now: float, force: bool = False) -> None:
        if not self._pending or (not force and now - self._last_flush < LOG_INTERVAL_S):
            return
        self._last_flush = now
        if self._skipped:
            self._sink(f"... ({self._skipped:,} lines not shown live) ...")
            self._skipped = 0
        while self._pending:
            self._sink(self._pending.popleft())


class _LineSplitter:
    """Turns raw output chunks into visible lines for the capture and the live log."""

    def __init__(self, capture: _Capture, log: Callable[[str], None]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._capture = capture
        self._log = log
        self._last_progress = ""

    def feed(self, data: bytes) -> None:
        self._split(self._decoder.decode(data))

    def close(self) -> None:
        self._split(self._decoder.decode(b"", final=True))
        if self._partial:
            self._emit(self._partial)
            self._partial = ""

    def _split(self, text: str) -> None:
        buf = self._partial + text
        *lines, self._partial = buf.split("\n")
        for line in lines:
            self._emit(line)
        if len(self._partial) > MAX_PARTIAL_CHARS:
            self._emit(self._partial)
            self._partial = ""
            return
        # A progress bar redraws one line with \r and never sends \n until it is done; show
        # its latest state live, and drop the stale redraws so the buffer stays small.
        cut = self._partial.rstrip("\r").rfind("\r")
        if cut >= 0:
            self._partial = self._partial[cut:]
            progress = _visible(self._partial)
            if progress and progress != self._last_progress:
                self._last_progress = progress
                self._log(progress)

    def _emit(self, raw: str) -> None:
        line = _visible(raw)
        self._capture.add(line)
        if line != self._last_progress:
            self._log(line)
        self._last_progress = ""


def _group_alive(pgid: int) -> bool:
    """True while any non-zombie process is left in the group.

    Orphaned children are re-parented to PID 1, which in containers often never reaps
    them; a zombie holds no resources, so it must not count as "still running".
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


#: process groups of bash calls still running (or being killed); killed at interpreter exit
#: so a SIGTERM'd or crashed app never leaves a training run going unattended
_LIVE_GROUPS: set[int] = set()
_REAPERS: set[asyncio.Task] = set()


def kill_live_process_groups() -> None:
    for pgid in list(_LIVE_GROUPS):
        _signal_group(pgid, signal.SIGKILL)
    _LIVE_GROUPS.clear()


atexit.register(kill_live_process_groups)


def _reap_in_background(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM now; SIGKILL after the grace period in a task, so an interrupt returns at once."""
    _signal_group(proc.pid, signal.SIGTERM)
    task = asyncio.get_running_loop().create_task(kill_process_group(proc))
    _REAPERS.add(task)

    def done(t: asyncio.Task) -> None:
        _REAPERS.discard(t)
        _LIVE_GROUPS.discard(proc.pid)

    task.add_done_callback(done)


async def kill_process_group(proc: asyncio.subprocess.Process, grace: float = KILL_GRACE_S) -> None:
    """SIGTERM the command's whole group, then SIGKILL whatever ignores it."""
    pgid = proc.pid  # start_new_session made the shell the group leader
    _signal_group(pgid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while _group_alive(pgid) and loop.time() < deadline:
        await asyncio.sleep(0.02)
    if _group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)
    try:
        await asyncio.wait_for(proc.wait(), timeout=grace)
    except TimeoutError:
        pass


def _timeout_message(seconds: int) -> str:
    return (
        f"ERROR: the command timed out after {seconds}s and was killed together with every "
        "process it started. For long-running work, start it in the background and poll it: "
        "`nohup <command> > run.log 2>&1 &` then check progress with `tail -n 50 run.log` "
        "(and `ps`/`kill <pid>` to inspect or stop it). Or pass a larger timeout "
        f"(max {MAX_TIMEOUT_S}s)."
    )


async def _spawn(
    command: str, work_dir: Path, env: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, asyncio.ReadTransport, asyncio.StreamReader]:
    """Start the shell writing into a pipe we own.

    With ``stdout=PIPE``, asyncio's ``Process.wait()`` only returns once every holder of the
    pipe has closed it, so ``sleep 600 &`` would make a finished command look hung. Owning
    the pipe lets us wait for the shell alone and then decide how long to keep reading.
    """
    # the user's keys and tokens are not the model's to read (agent/secrets.py)
    env = dict(env) if env is not None else agent_environment()
    env["PYTHONUNBUFFERED"] = "1"  # so python's output reaches the live pane as it happens
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/bash", "-c", command,
            cwd=str(work_dir),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    loop = asyncio.get_running_loop()
    stream = asyncio.StreamReader(limit=1 << 20)
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(read_fd, "rb", buffering=0)
        )
    except BaseException:
        await kill_process_group(proc)
        raise
    return proc, transport, stream


class BashTool(Tool):
    name = "bash"
    description = (
        "Run a shell command with /bin/bash -c in the local working directory and return its "
        "combined stdout and stderr (ANSI codes stripped; long output keeps the head and tail "
        "and the full text is saved to a file you can read). stdin is closed, so interactive "
        "commands fail. The command and everything it starts is killed on timeout or when the "
        "user interrupts. For long jobs (training, big downloads) run them in the background: "
        "`nohup python train.py > train.log 2>&1 &` and poll the log with later calls."
    )
    Params = BashParams

    def approval_reason(self, params: BashParams, settings: ApprovalSettings) -> str | None:
        if settings.mode == "ask":
            return "ask mode: bash commands need approval"
        return None

    async def run(self, params: BashParams, ctx: ToolContext) -> ToolResult:
        work_dir = Path(params.work_dir).expanduser() if params.work_dir else ctx.cwd
        if not work_dir.is_absolute():
            work_dir = ctx.cwd / work_dir
        if not work_dir.is_dir():
            return ToolResult(
                f"ERROR: work_dir {work_dir} does not exist or is not a directory. "
                "The command was NOT run.",
                success=False,
            )
        try:
            env = await ctx.environment(ctx.tool_call_id, f"bash: {_one_line(params.command)}") \
                if ctx.environment else None
            proc, transport, stdout = await _spawn(params.command, work_dir, env)
        except OSError as exc:
            return ToolResult(f"ERROR: could not start /bin/bash: {exc}", success=False)

        capture = _Capture()
        live = _LiveLog(ctx.log)
        splitter = _LineSplitter(capture, live.push)
        loop = asyncio.get_running_loop()

        async def pump() -> None:
            while True:
                try:
                    # the timeout only wakes us to deliver lines that are waiting; a
                    # cancelled StreamReader.read() loses no data
                    chunk = await asyncio.wait_for(stdout.read(65_536), LOG_INTERVAL_S)
                except TimeoutError:
                    live.flush(loop.time(), force=True)
                    continue
                if not chunk:
                    return
                splitter.feed(chunk)
                live.flush(loop.time())

        reader = asyncio.create_task(pump())
        timed_out = False
        note = ""
        reaping = False
        _LIVE_GROUPS.add(proc.pid)
        try:
            try:
                await asyncio.wait_for(proc.wait(), timeout=params.timeout)
            except TimeoutError:
                timed_out = True
                await kill_process_group(proc)
            # The shell is gone, but an `&` child may still hold the pipe open; read what is
            # already there and stop rather than wait for it.
            done, _ = await asyncio.wait({reader}, timeout=DRAIN_S)
            if not done:
                reader.cancel()
                note = (
                    "(processes this command left running in the background still write to "
                    "its output, which is no longer captured; redirect their output to a file)"
                )
        except asyncio.CancelledError:
            reader.cancel()
            _reap_in_background(proc)
            reaping = True
            raise
        finally:
            # closing our end means a leftover writer gets EPIPE instead of blocking forever
            transport.close()
            if not reaping:
                _LIVE_GROUPS.discard(proc.pid)
        splitter.close()
        live.flush(loop.time(), force=True)

        body = capture.text() or "(no output)"
        if note:
            body = f"{body}\n{note}"
        body, spill = apply_output_budget(body, ctx.spill_dir, label="bash")
        if timed_out:
            return ToolResult(f"{body}\n\n{_timeout_message(params.timeout)}", False, spill)
        code = proc.returncode
        if code == 0:
            return ToolResult(body, True, spill)
        if code is not None and code < 0:
            try:
                signame = signal.Signals(-code).name
            except ValueError:
                signame = "unknown signal"
            status = f"Command was killed by signal {-code} ({signame})."
        else:
            status = f"Command failed with exit code {code}."
        return ToolResult(f"{body}\n\n{status}", False, spill)


def _one_line(command: str, limit: int = 60) -> str:
    text = " ".join(command.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
