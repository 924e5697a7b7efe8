"""The terminal driver: Textual's, except for what a closed terminal reports as its size.

When the window closes or tmux kills the session, the app gets SIGWINCH and SIGHUP, and
asking the dead pty for its size fails: Textual then falls back to 80x25 and lays the
screen out again at that width. With a long answer on screen that is a full re-render of
every block (~2 s for a 20,000-token answer, Markdown parsed and code highlighted again)
before the hangup is handled, so the process outlived its terminal by seconds. A terminal
that cannot say its size keeps the last size it said."""

from __future__ import annotations

import os
import sys

from textual.drivers.linux_driver import LinuxDriver


def _tty_answers(*files) -> bool:
    """Whether any of these still reports a terminal size."""
    for file in files:
        try:
            os.get_terminal_size(file.fileno())
            return True
        except (AttributeError, ValueError, OSError):
            continue
    return False


class SteadyDriver(LinuxDriver):
    _last_size: tuple[int, int] | None = None

    def _get_terminal_size(self) -> tuple[int, int]:
        # Textual asks stdout (through shutil) and draws on stderr: either one answering is a
        # live terminal
        if self._last_size is not None and not _tty_answers(sys.__stdout__, self._file):
            return self._last_size  # the terminal is gone: nothing changed
        self._last_size = size = super()._get_terminal_size()
        return size
