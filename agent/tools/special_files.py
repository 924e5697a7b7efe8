"""Reading the kernel's files: procfs and sysfs.

A file under /proc or /sys is made by the kernel as it is read. Its size says nothing about
its length (``/proc/cpuinfo`` has size 0, ``/proc/self/pagemap`` would go on for terabytes),
and some wait for data that may never come (``/proc/kmsg`` blocks until the kernel logs
something). So ``read`` takes them as a stream, up to ``PSEUDO_READ_BYTES``, opened
non-blocking, on a daemon thread with a deadline: a read the kernel holds anyway is given up
on, and the thread left behind never keeps the process from exiting (the default executor's
threads are joined at exit: one stuck read there held a SIGTERM'd process for minutes).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")

PSEUDO_ROOTS = (Path("/proc"), Path("/sys"))
#: pseudo files that wait for data instead of ending (kernel log, tracing pipes): refused by name
BLOCKING_NAMES = frozenset({"kmsg", "trace_pipe", "trace_pipe_raw"})
PSEUDO_READ_BYTES = 4_000_000
PSEUDO_READ_TIMEOUT_S = 5.0


def is_pseudo(path: Path) -> bool:
    """A file of procfs or sysfs (by where it is: their files say nothing true in stat)."""
    return any(path == root or path.is_relative_to(root) for root in PSEUDO_ROOTS)


def blocking_reason(path: Path) -> str | None:
    if is_pseudo(path) and path.name in BLOCKING_NAMES:
        return (f"ERROR: {path} is a kernel file whose read waits for new data (it never ends), so read "
                "refuses it. For kernel messages run `dmesg | tail -n 100` with bash.")
    return None


class DeadlineExceeded(Exception):
    pass


def run_with_deadline(fn: Callable[[], T], timeout_s: float, name: str = "deadline-read") -> T:
    """``fn()`` on a daemon thread; DeadlineExceeded if it has not returned in ``timeout_s``
    (the thread is then left to finish or block on its own: a daemon never holds up exit)."""
    box: dict[str, object] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=name, daemon=True).start()
    if not done.wait(timeout_s):
        raise DeadlineExceeded(f"no answer in {timeout_s:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def read_pseudo(path: Path, limit: int = PSEUDO_READ_BYTES,
                timeout_s: float = PSEUDO_READ_TIMEOUT_S) -> tuple[bytes, bool] | str:
    """(the first ``limit`` bytes, whether there was more), or an error sentence for the model."""

    def read() -> tuple[bytes, bool]:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            chunks, size = [], 0
            while size <= limit:
                chunk = os.read(fd, min(1 << 16, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks)
            return data[:limit], len(data) > limit
        finally:
            os.close(fd)

    try:
        return run_with_deadline(read, timeout_s, name=f"read {path}")
    except BlockingIOError:
        return f"ERROR: {path} has no data now and its read would wait for some; read does not wait on kernel files."
    except DeadlineExceeded:
        return (f"ERROR: reading {path} took over {timeout_s:g} s, so read gave up on it (kernel files can wait "
                "for data forever). Use bash with a timeout if you need it.")
    except OSError as exc:
        return f"ERROR: cannot read {path}: {exc.strerror or exc}."
