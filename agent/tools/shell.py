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
from agent.process_tracker import tag_environment
from agent.secrets import agent_environment
from agent.tools.output import apply_output_budget

DEFAULT_TIMEOUT_S = 120
MAX_TIMEOUT_S = 36_000
#: how long a process group gets between SIGTERM and SIGKILL
KILL_GRACE_S = 2.0
#: after the shell exits, how long we keep reading output that children still write
DRAIN_S = 0.5
#: raw bytes kept in memory from the start and the end of a command's output; all of it (up to
#: SPILL_CAP_BYTES) goes to a spill file at pipe speed once it outgrows them
HEAD_BYTES = 1_000_000
TAIL_BYTES = 1_000_000
SPILL_CAP_BYTES = int(os.environ.get("MLINTERN_BASH_SPILL_CAP_MB", "200")) * 1_000_000
#: a live delivery with more new lines than this is a flood: one summary line and the newest lines
FLOOD_LINES = 200
FLOOD_SHOWN = 3
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


class _RawOutput:
    """Every byte a command prints, counted; the first and last ``HEAD_BYTES``/``TAIL_BYTES``
    kept in memory; past them the whole stream goes to a spill file (up to the cap), written
    as it arrives. No per-line work: a flood costs what writing it to disk costs."""

    def __init__(self, spill_dir: Path, label: str = "bash"):
        self.total = 0
        self.head = bytearray()
        self._tail: deque[bytes] = deque()  # whole chunks: trimming never copies the rest
        self._tail_len = 0
        self.spill_dir = spill_dir
        self.label = label
        self.path: Path | None = None
        self._file = None
        self.spilled = 0
        self.spill_error: str | None = None

    def add(self, data: bytes) -> None:
        earlier = self.total
        self.total += len(data)
        if self._file is not None:
            self._write(data)
        elif self.total > HEAD_BYTES + TAIL_BYTES:
            # the output outgrew memory: the spill file gets all of it so far (the head, then the
            # bytes after it, which the tail still holds: earlier <= HEAD_BYTES + TAIL_BYTES), then this
            self._open()
            self._write(bytes(self.head[:earlier]))
            after_head = earlier - len(self.head)
            if after_head > 0:
                self._write(self.tail[len(self.tail) - after_head:])
            self._write(data)
        room = HEAD_BYTES - len(self.head)
        if room > 0:
            self.head += data[:room]
        self._tail.append(data)
        self._tail_len += len(data)
        while self._tail_len - len(self._tail[0]) >= TAIL_BYTES:
            self._tail_len -= len(self._tail.popleft())

    @property
    def tail(self) -> bytes:
        """The last ``TAIL_BYTES`` (fewer while the output is shorter)."""
        joined = b"".join(self._tail)
        return joined[-TAIL_BYTES:] if len(joined) > TAIL_BYTES else joined

    def _open(self) -> None:
        import time

        try:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            self.path = self.spill_dir / f"{self.label}-{int(time.time())}-{os.getpid()}-{id(self):x}.txt"
            self._file = open(self.path, "wb")
        except OSError as exc:  # a full disk: the head and tail still reach the model
            self.spill_error = str(exc)

    def _write(self, data: bytes) -> None:
        if self._file is None or self.spill_error is not None or self.spilled >= SPILL_CAP_BYTES:
            return
        take = data[:SPILL_CAP_BYTES - self.spilled]
        try:
            self._file.write(take)
            self.spilled += len(take)
        except OSError as exc:
            self.spill_error = str(exc)

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                self.spill_error = self.spill_error or str(exc)
            self._file = None

    @property
    def whole(self) -> bool:
        """Everything the command printed is in memory (head and tail overlap or touch)."""
        return self.total <= HEAD_BYTES + TAIL_BYTES and self.path is None

    def text(self) -> tuple[str, bool]:
        """(visible text, whether any bytes were not valid UTF-8) when it is ``whole``."""
        tail = self.tail
        data = bytes(self.head) + tail[max(0, len(tail) - (self.total - len(self.head))):] \
            if self.total > len(self.head) else bytes(self.head)
        text = data.decode("utf-8", errors="replace")
        return text, "\ufffd" in text and b"\xef\xbf\xbd" not in data


def _visible_text(data: bytes, keep: str, limit: int) -> tuple[str, bool]:
    """The first ("head", a cut last line dropped) or last ("tail", a cut first line dropped)
    ``limit`` characters of the lines as a terminal shows them. Only lines that can show are
    cleaned: a 1 MB head of short lines is half a million regex calls, a quarter of a second
    of the event loop (the app's keys freeze) to keep 6,000 characters."""
    text = data.decode("utf-8", errors="replace")
    bad = "\ufffd" in text and b"\xef\xbf\xbd" not in data
    lines = text.split("\n")
    if keep == "head" and len(lines) > 1:
        lines = lines[:-1]
    elif keep == "tail" and len(lines) > 1:
        lines = lines[1:]
    shown: list[str] = []
    joined = -1  # the length of "\n".join(shown)
    for line in lines if keep == "head" else reversed(lines):
        if joined >= limit:
            break
        shown.append(_visible(line))
        joined += len(shown[-1]) + 1
    if keep == "head":
        return "\n".join(shown)[:limit], bad
    return "\n".join(reversed(shown))[-limit:], bad


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

    def flood(self, lines: int, size: int, newest: list[str]) -> None:
        """Many lines since the last delivery: one line saying how much, then the newest few."""
        self._pending.clear()
        self._skipped = 0
        self._sink(f"... {lines:,} more lines ({size:,} bytes) not shown live ...")
        for line in newest[-FLOOD_SHOWN:]:
            self._sink(line)


class _NoCapture:
    def add(self, line: str) -> None:
        pass


def _result_text(raw: _RawOutput, spill_dir: Path) -> tuple[str, str | None]:
    """What the model reads of a command's output, within the output budget, and the spill file.
    A big output says its true size: bytes printed, bytes kept, where."""
    if raw.whole:
        text, bad = raw.text()
        if "\x1b" in text or "\r" in text:  # else every line is already what a terminal shows
            text = "\n".join(_visible(line) for line in text.split("\n"))
        body = text.rstrip("\n") or "(no output)"
        body, spill = apply_output_budget(body, spill_dir, label="bash")
    else:
        head, bad_head = _visible_text(bytes(raw.head), "head", 6_000)
        tail, bad_tail = _visible_text(raw.tail, "tail", 18_000)
        bad = bad_head or bad_tail
        tail = tail.rstrip("\n")
        if raw.path is not None and raw.spill_error is None:
            kept = ("all of it is" if raw.spilled >= raw.total else
                    f"the first {raw.spilled:,} bytes are (the rest was not kept: MLINTERN_BASH_SPILL_CAP_MB)")
            where = f"{kept} in {raw.path} (use read with offset/limit)"
        else:
            where = f"it could not be saved ({raw.spill_error or 'no spill file'})"
        body = (f"{head}\n\n... [the command printed {raw.total:,} bytes; {where}; shown here: its start and "
                f"its end] ...\n\n{tail}")
        spill = str(raw.path) if raw.path is not None and raw.spill_error is None else None
    if bad:
        body += "\n(the output was not valid UTF-8: bytes that could not be decoded are shown as \ufffd)"
    return body, spill


class _LineSplitter:
    """Turns raw output chunks into visible lines for the capture and the live log."""

    def __init__(self, capture: _NoCapture, log: Callable[[str], None]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._capture = capture
        self._log = log
        self._last_progress = ""

    def feed(self, data: bytes) -> None:
        self._split(self._decoder.decode(data))

    def reset(self) -> None:
        """Bytes were skipped (a flood): start afresh at the next line."""
        self._decoder.reset()
        self._partial = ""
        self._last_progress = ""

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
    command: str, work_dir: Path, env: dict[str, str] | None = None, tag: str = ""
) -> tuple[asyncio.subprocess.Process, asyncio.ReadTransport, asyncio.StreamReader]:
    """Start the shell writing into a pipe we own.

    With ``stdout=PIPE``, asyncio's ``Process.wait()`` only returns once every holder of the
    pipe has closed it, so ``sleep 600 &`` would make a finished command look hung. Owning
    the pipe lets us wait for the shell alone and then decide how long to keep reading.
    """
    # the user's keys and tokens are not the model's to read (agent/secrets.py)
    env = dict(env) if env is not None else agent_environment()
    env["PYTHONUNBUFFERED"] = "1"  # so python's output reaches the live pane as it happens
    tag_environment(env, tag)  # what it leaves running in the background is found again at exit
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
            proc, transport, stdout = await _spawn(params.command, work_dir, env, ctx.process_tag)
        except OSError as exc:
            return ToolResult(f"ERROR: could not start /bin/bash: {exc}", success=False)

        raw = _RawOutput(ctx.spill_dir)
        live = _LiveLog(ctx.log)
        # the live view decodes only what it shows: a flood is counted, not split into lines
        splitter = _LineSplitter(_NoCapture(), live.push)
        loop = asyncio.get_running_loop()
        window = bytearray()
        pending = {"lines": 0, "bytes": 0, "last": 0.0, "flooding": False}

        def deliver(force: bool = False) -> None:
            now = loop.time()
            interval = 0.5 if pending["flooding"] else LOG_INTERVAL_S
            if not pending["bytes"] or (not force and now - pending["last"] < interval):
                return
            pending["last"] = now
            if pending["lines"] > FLOOD_LINES or pending["bytes"] > len(window):
                # only the newest few show: cleaned from the end, not all ~30,000 lines of the window
                newest: list[str] = []
                for line in reversed(bytes(window).decode("utf-8", errors="replace").split("\n")[1:]):
                    if len(newest) == FLOOD_SHOWN:
                        break
                    if visible := _visible(line):
                        newest.insert(0, visible)
                live.flood(pending["lines"], pending["bytes"], newest)
                splitter.reset()
                pending["flooding"] = True
            else:
                splitter.feed(bytes(window))
                live.flush(now, force=True)
                pending["flooding"] = False
            window.clear()
            pending["lines"] = pending["bytes"] = 0

        async def pump() -> None:
            while True:
                try:
                    # the timeout only wakes us to deliver lines that are waiting; a
                    # cancelled StreamReader.read() loses no data
                    chunk = await asyncio.wait_for(stdout.read(65_536), LOG_INTERVAL_S)
                except TimeoutError:
                    deliver(force=True)
                    continue
                if not chunk:
                    return
                raw.add(chunk)
                window.extend(chunk)
                if len(window) > 65_536:
                    del window[:len(window) - 65_536]
                pending["lines"] += chunk.count(b"\n")
                pending["bytes"] += len(chunk)
                deliver()

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
        deliver(force=True)
        splitter.close()
        live.flush(loop.time(), force=True)
        raw.close()
        body, spill = _result_text(raw, ctx.spill_dir)
        if note:
            body = f"{body}\n{note}"
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
