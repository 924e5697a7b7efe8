"""The hangup handler's own steps (mlintern_tui/hangup.py), without a process to end: after
SIGHUP there is no terminal to resume, so SIGCONT no longer restarts Textual's driver."""

from __future__ import annotations

import signal

from mlintern_tui import hangup


def test_after_a_hangup_sigcont_no_longer_resumes_the_driver():
    saved = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGCONT)}
    resumed: list[int] = []
    asked: list[int] = []
    signal.signal(signal.SIGCONT, lambda signum, frame: resumed.append(signum))  # Textual's resume
    uninstall = hangup.install(asked.append, grace_s=3600)  # the watchdog sleeps past the test
    try:
        handler = signal.getsignal(signal.SIGTERM)
        handler(signal.SIGTERM, None)  # a plain kill: the terminal is still there
        assert asked == [signal.SIGTERM] and callable(signal.getsignal(signal.SIGCONT))
        handler(signal.SIGHUP, None)
        assert signal.getsignal(signal.SIGCONT) == signal.SIG_DFL
        assert asked == [signal.SIGTERM]  # one quit, however many signals
    finally:
        uninstall()
        for sig, previous in saved.items():
            signal.signal(sig, previous)
    assert resumed == []
