"""Leaving cleanly when the terminal goes away (SIGHUP: a closed window, a killed tmux).

The normal path is the same as ctrl+q: the session shuts down (tools and local jobs are
stopped, the sandbox is deleted) and the app exits. But with its terminal gone, Textual's
output thread dies on the first write to the dead pty and the next frame blocks the event
loop forever on the full output queue; the input thread spins on end-of-file. Seen in a
benchmark: four such processes left behind, each burning 35-48% of a core. So the handler
is a plain signal handler (it runs even while the loop is blocked), and a watchdog thread
ends the process if the clean path has not finished in time: it runs the exit hooks that
kill live tool and job process groups, then exits with 129 (128 + SIGHUP).
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from typing import Callable

#: the clean path waits up to 6 s for local jobs to stop; give it that and a margin
GRACE_S = 9.0
EXIT_CODE = 128 + signal.SIGHUP


def install(request_quit: Callable[[], None], grace_s: float = GRACE_S) -> None:
    """``request_quit`` is called from the signal handler: it must only schedule work
    (e.g. ``loop.call_soon_threadsafe``), never block. If the process is still alive
    ``grace_s`` later, it is ended (a clean exit ends the watchdog thread with it)."""
    started = threading.Lock()

    def force_exit() -> None:
        threading.Event().wait(grace_s)
        try:
            atexit._run_exitfuncs()  # kills live bash and local job process groups
        finally:
            os._exit(EXIT_CODE)

    def on_hangup(signum, frame) -> None:
        if not started.acquire(blocking=False):
            return  # one watchdog, however many hangups
        threading.Thread(target=force_exit, name="hangup-watchdog", daemon=True).start()
        try:
            request_quit()
        except Exception:
            pass

    signal.signal(signal.SIGHUP, on_hangup)
