"""Shell commands of the sandbox server (``bash``, ``kill``), standard library only.

Each command runs in a new session, so it leads its own process group: a timeout or a
``kill`` takes down everything it started (pipelines, ``&`` children, training workers)
with one signal, while anything an earlier command deliberately detached with ``setsid``
lives on. Output goes to a spill file in full; the answer carries a bounded head and tail.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import tempfile
import threading
import time
import uuid

if __package__:
    from agent.sandbox.remote_files import Refusal, int_param, resolve, text_param
else:  # inside the Space the server's files sit side by side and run as plain scripts
    from remote_files import Refusal, int_param, resolve, text_param

TOKEN_ENV = "SANDBOX_API_TOKEN"
DEFAULT_TIMEOUT_S = 240
MAX_TIMEOUT_S = 1200
#: characters kept of a long output; under the agent's own 25k budget with room for the
#: truncation note and the tool's status line, so the text is never cut a second time
OUTPUT_BUDGET = 24_000
HEAD_FRACTION = 0.25
KILL_GRACE_S = 2.0
#: after the shell exits, how long output from children it left running is still collected
DRAIN_S = 0.5

_ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[()*+][0-9A-Za-z]|[@-Z\\-_])")


def clean(text: str) -> str:
    """What a terminal would show: no colour codes, and only the last redraw of \\r lines."""
    lines = []
    for line in _ANSI_RE.sub("", text).split("\n"):
        line = line.rstrip("\r")
        if "\r" in line:
            line = next((part for part in reversed(line.split("\r")) if part), "")
        lines.append(line)
    return "\n".join(lines).rstrip("\n")


class _Output:
    """A command's output: all of it in a spill file, a bounded head and tail in memory."""

    def __init__(self, spill_dir: str) -> None:
        os.makedirs(spill_dir, exist_ok=True)
        self.fd, self.path = tempfile.mkstemp(prefix="bash-", suffix=".log", dir=spill_dir)
        self.cap = OUTPUT_BUDGET * 4  # bytes: enough for the budget even in 4-byte UTF-8
        self.head, self.tail, self.total = bytearray(), bytearray(), 0
        self.lock = threading.Lock()

    def add(self, data: bytes) -> None:
        with self.lock:
            if self.fd >= 0:
                try:
                    os.write(self.fd, data)
                except OSError:
                    pass  # a full disk loses the spill copy, not the answer
            self.total += len(data)
            room = max(self.cap - len(self.head), 0)
            self.head += data[:room]
            if data[room:]:
                self.tail += data[room:]
                del self.tail[:max(len(self.tail) - self.cap, 0)]

    def finish(self) -> tuple[str, str | None]:
        """The text to answer with, and the spill path (kept only when the text was cut)."""
        with self.lock:
            os.close(self.fd)
            self.fd = -1
            head = clean(self.head.decode("utf-8", "replace"))
            tail = clean(self.tail.decode("utf-8", "replace")) if self.tail else None
        if tail is None and len(head) <= OUTPUT_BUDGET:
            os.unlink(self.path)
            return head or "(no output)", None
        keep_head = int(OUTPUT_BUDGET * HEAD_FRACTION)
        first, last = head[:keep_head], (tail if tail is not None else head)[-(OUTPUT_BUDGET - keep_head):]
        note = (f"... [output truncated: {self.total:,} bytes in all; the full output is in {self.path} "
                "inside the sandbox, read it with offset/limit] ...")
        return f"{first}\n\n{note}\n\n{last}", self.path


def _pump(fd: int, output: _Output, stop: threading.Event) -> None:
    try:
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                data = os.read(fd, 65536)
                if not data:
                    return
                output.add(data)
    finally:
        os.close(fd)  # a leftover writer now gets EPIPE instead of filling a pipe nobody reads


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    """True while a process of the group is left that is not a zombie (zombies hold nothing)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        names = os.listdir("/proc")
    except OSError:
        return True
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def stop_groups(pgids: list[int], grace: float = KILL_GRACE_S) -> None:
    """SIGTERM every group, then SIGKILL whatever is still there after the grace period."""
    for pgid in pgids:
        _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(group_alive(p) for p in pgids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pgid in pgids:
        if group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)


class CommandRunner:
    """Runs ``bash`` requests and remembers their process groups so ``kill`` can stop them."""

    def __init__(self, workdir: str, spill_dir: str | None = None) -> None:
        self.workdir = workdir
        self.spill_dir = spill_dir or os.path.join(tempfile.gettempdir(), "sandbox-output")
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}  # call id -> process group
        self._killed: set[str] = set()

    def bash(self, body: dict) -> dict:
        command = text_param(body, "command")
        timeout = int_param(body, "timeout", DEFAULT_TIMEOUT_S, 1, MAX_TIMEOUT_S)
        cwd = resolve(body.get("cwd") or self.workdir, self.workdir)
        if not os.path.isdir(cwd):
            raise Refusal(400, f"cwd {cwd} does not exist or is not a directory; the command was NOT run.", "bad_cwd")
        call_id = str(body.get("id") or uuid.uuid4().hex)
        env = dict(os.environ)
        env.pop(TOKEN_ENV, None)
        env["PYTHONUNBUFFERED"] = "1"  # so python's prints are in the output even when it is killed
        output = _Output(self.spill_dir)
        # Our own pipe: we wait for the shell alone, then decide how long to keep reading
        # what its background children write (``sleep 600 &`` must not look like a hang).
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(["/bin/bash", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                    stdout=write_fd, stderr=write_fd, start_new_session=True)
        except OSError as exc:
            os.close(read_fd)
            output.finish()
            raise Refusal(500, f"could not start /bin/bash: {exc}", "spawn_failed") from exc
        finally:
            os.close(write_fd)
        stop = threading.Event()
        reader = threading.Thread(target=_pump, args=(read_fd, output, stop), daemon=True)
        reader.start()
        with self._lock:
            self._running[call_id] = proc.pid
        started, timed_out = time.monotonic(), False
        try:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                stop_groups([proc.pid])
                proc.wait()
            reader.join(DRAIN_S)
            lingering = reader.is_alive()
            stop.set()
            reader.join(1.0)
        finally:
            with self._lock:
                self._running.pop(call_id, None)
                killed = call_id in self._killed
                self._killed.discard(call_id)
        text, spill = output.finish()
        if lingering:
            text += ("\n(processes this command left running in the background still write to its output, "
                     "which is no longer captured; redirect their output to a file)")
        return {"output": text, "exit_code": proc.returncode, "timed_out": timed_out, "killed": killed,
                "truncated": spill is not None, "spill_path": spill,
                "duration_s": round(time.monotonic() - started, 3)}

    def kill(self, body: dict) -> dict:
        """Stop the command with ``id``, or every running command when no id is given."""
        wanted = body.get("id")
        with self._lock:
            targets = {cid: pgid for cid, pgid in self._running.items() if wanted in (None, cid)}
            self._killed.update(targets)
        stop_groups(list(targets.values()))
        return {"killed": len(targets)}
