"""Leaving cleanly on SIGTERM (``kill``, a CI timeout, systemd) and SIGHUP (a closed window,
a killed tmux).

The normal path is the same as ctrl+q, without its question about processes left in the
background (they are stopped, as headless does): the session shuts down (tools and local
jobs are stopped, the sandbox is deleted) and the app exits, which restores the terminal
(alternate screen left, mouse tracking off). Python's default SIGTERM ends the process on
the spot: no exit hooks, local jobs left running unattended, the terminal left in raw mode
with mouse tracking on.

With its terminal gone (SIGHUP), Textual's output thread dies on the first write to the dead
pty and the next frame blocks the event loop forever on the full output queue; the input
thread spins on end-of-file. Seen in a benchmark: four such processes left behind, each
burning 35-48% of a core. So the handler is a plain signal handler (it runs even while the
loop is blocked), and a watchdog thread ends the process if the clean path has not finished
in time: it runs the exit hooks that kill live tool and job process groups, puts the
terminal back if there still is one, then exits with 128 + the signal's number.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import signal
import termios
import threading
from typing import Any, Callable

#: the clean path waits up to 6 s for local jobs to stop; give it that and a margin
GRACE_S = 9.0
EXIT_CODE = 128 + signal.SIGHUP
SIGNALS = (signal.SIGHUP, signal.SIGTERM)
#: what Textual's driver writes when it stops: mouse tracking, bracketed paste, focus events
#: and the kitty keyboard protocol off, line wrap on, alternate screen left, cursor shown;
#: first, a synchronized update a stuck frame left open is ended (the terminal would hold
#: back everything after it)
RESTORE = ("\x1b[?2026l\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[?2004l\x1b[?7h\x1b[<u"
           "\x1b[?1049l\x1b[?25h\x1b[?1004l")
#: how long the restore waits for a frame being written to finish (a stuck writer holds the
#: lock for good: the restore is written anyway)
OUTPUT_LOCK_WAIT_S = 0.5


def restore_terminal(driver: Any) -> None:
    """Put the terminal back without the app's help (its output thread may be stuck): the
    restore sequences written straight to the tty, never blocking, and the tty's modes as
    they were before the app started."""
    fd = getattr(driver, "fileno", None)
    if not isinstance(fd, int):
        return
    # after the frame being written, if any (mlintern_tui/driver.py's output lock), so that the
    # sequences do not land in the middle of one of its escape sequences
    lock = getattr(driver, "_out_lock", None)
    held = lock is not None and lock.acquire(timeout=OUTPUT_LOCK_WAIT_S)
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        os.write(fd, RESTORE.encode())
    except OSError:
        pass
    finally:
        if held:
            lock.release()
    attrs = getattr(driver, "attrs_before", None)
    if attrs is not None:
        try:
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        except (termios.error, OSError):
            pass


def install(request_quit: Callable[[int], None], grace_s: float = GRACE_S,
            driver: Any = None) -> Callable[[], None]:
    """``request_quit(signum)`` is called from the signal handler: it must only schedule work
    (e.g. ``loop.call_soon_threadsafe``), never block. If the process is still alive
    ``grace_s`` later, it is ended (a clean exit ends the watchdog thread with it). Returns
    a function that puts the previous handlers back (the app calls it when it closes)."""
    started = threading.Lock()

    def force_exit(signum: int) -> None:
        threading.Event().wait(grace_s)
        try:
            atexit._run_exitfuncs()  # kills live bash and local job process groups
            if signum != signal.SIGHUP:  # a hangup has no terminal left to restore
                restore_terminal(driver)
        finally:
            os._exit(128 + signum)

    def on_signal(signum, frame) -> None:
        if signum == signal.SIGHUP:
            # the kernel follows a hangup with SIGCONT, on which Textual's driver resumes: it
            # would start a second input thread on the dead terminal while the app quits
            # (seen: the quit then waited for it until the watchdog, 9 s). Nothing to resume.
            try:
                signal.signal(signal.SIGCONT, signal.SIG_DFL)
            except (ValueError, OSError):
                pass
        if not started.acquire(blocking=False):
            return  # one watchdog, however many signals
        threading.Thread(target=force_exit, args=(signum,), name="signal-watchdog", daemon=True).start()
        try:
            request_quit(signum)
        except Exception:
            pass

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}

    def uninstall() -> None:
        for sig, handler in previous.items():
            try:
                signal.signal(sig, handler)
            except (ValueError, TypeError):
                pass

    return uninstall
