"""Every process the agent started, found again at exit, however it detached.

Each ``bash`` command runs with ``MLINTERN_PROC_TAG=<its session's tag>`` in its environment;
children inherit it through ``&``, ``nohup`` and ``setsid``, which move a process out of the
command's process group but keep its environment. At exit the tagged processes still running
are listed from ``/proc`` and stopped (SIGTERM, then SIGKILL) unless the user keeps them. Work
that should outlive the app belongs in a job (``hf_jobs``), which is what the message says.

Linux only (``/proc``); elsewhere nothing is found and nothing is stopped.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass

TAG_VAR = "MLINTERN_PROC_TAG"


def new_tag() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Leftover:
    pid: int
    command: str


def tag_environment(env: dict[str, str], tag: str) -> dict[str, str]:
    if tag:
        env[TAG_VAR] = tag
    return env


def _environ(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[-1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def process_group(pid: int) -> int | None:
    """The process group ``pid`` is in (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[-1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def leftovers(tag: str) -> list[Leftover]:
    """Processes still running with our tag (this process and its zombies excluded)."""
    marker = f"{TAG_VAR}={tag}".encode()
    me = os.getpid()
    found = []
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    for pid in pids:
        if pid == me or not _alive(pid):
            continue
        if marker in _environ(pid).split(b"\0"):
            found.append(Leftover(pid, _command(pid) or "?"))
    return found


def stop(processes: list[Leftover], grace_s: float = 2.0) -> list[Leftover]:
    """SIGTERM, a grace period, then SIGKILL; returns the ones that could not be stopped."""
    for p in processes:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p.pid) for p in processes):
        time.sleep(0.05)
    stubborn = [p for p in processes if _alive(p.pid)]
    for p in stubborn:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    time.sleep(0.05)
    return [p for p in stubborn if _alive(p.pid)]


def describe(processes: list[Leftover], limit: int = 5) -> str:
    names = ", ".join(f"{p.pid} ({p.command[:60]})" for p in processes[:limit])
    more = f" and {len(processes) - limit} more" if len(processes) > limit else ""
    return names + more
