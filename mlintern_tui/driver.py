"""The terminal driver: Textual's, except for what a closed terminal reports as its size and
how the input thread waits.

When the window closes or tmux kills the session, the app gets SIGWINCH and SIGHUP, and
asking the dead pty for its size fails: Textual then falls back to 80x25 and lays the
screen out again at that width. With a long answer on screen that is a full re-render of
every block (~2 s for a 20,000-token answer, Markdown parsed and code highlighted again)
before the hangup is handled, so the process outlived its terminal by seconds. A terminal
that cannot say its size keeps the last size it said.

Textual's input thread wakes ten times a second for as long as the app runs, to time out a
lone escape and to notice that it should stop: 30 wakeups and ~5 ms of CPU in the 3 s after
an answer, with nothing to do. Ours sleeps until a key comes, until the escape it holds is
due, or until it is told to stop (a pipe wakes it)."""

from __future__ import annotations

import os
import selectors
import sys
import threading
from codecs import getincrementaldecoder

from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

#: how long a wait is when the parser does not say when its escape is due (another Textual)
POLL_S = 0.1
_UNSAID = object()


class _WakingEvent(threading.Event):
    """Textual's "stop reading input" flag: setting it also wakes the input thread."""

    def __init__(self, wake) -> None:
        super().__init__()
        self._wake = wake

    def set(self) -> None:
        super().set()
        self._wake()


def input_wait(parser: object) -> float | None:
    """How long the input thread may sleep: for ever unless the parser holds an escape (or
    the start of a sequence) that becomes a key of its own if nothing follows in time."""
    due = getattr(parser, "_timeout_time", _UNSAID)  # Textual's private name: if it goes, poll
    if due is _UNSAID:
        return POLL_S
    if due is None:
        return None
    return max(0.0, due - get_time())


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
    _wake_r = _wake_w = -1

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._wake_lock = threading.Lock()
        self.exit_event = _WakingEvent(self._wake_input)

    def _wake_pipe(self) -> int:
        """The pipe that wakes the input thread (made again after a suspend closed it)."""
        with self._wake_lock:
            if self._wake_r < 0:
                self._wake_r, self._wake_w = os.pipe()  # not inherited by the processes the agent starts
                os.set_blocking(self._wake_r, False)
                os.set_blocking(self._wake_w, False)
            return self._wake_r

    def _wake_input(self) -> None:
        with self._wake_lock:
            if self._wake_w >= 0:
                try:
                    os.write(self._wake_w, b"!")
                except OSError:  # full: it is woken already
                    pass

    def close(self) -> None:
        """On exit, and on a suspend (ctrl+z, an editor): the input thread has stopped."""
        super().close()
        with self._wake_lock:
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1

    def run_input_thread(self) -> None:
        """Read keys and send them to the app, sleeping between them (see the module's text)."""
        fileno, wake = self.fileno, self._wake_pipe()
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        # poll(), as select() in Textual: any kind of stdin (epoll refuses a regular file), and no
        # limit on the pipe's descriptor number (select() stops at 1,024)
        selector = selectors.PollSelector()
        selector.register(fileno, selectors.EVENT_READ)
        selector.register(wake, selectors.EVENT_READ)
        try:
            while not self.exit_event.is_set():
                for key, _mask in selector.select(input_wait(parser)):
                    if key.fd == wake:
                        _drain(wake)
                        continue
                    data = os.read(fileno, 4096)
                    if not data:  # stdin ended (a pipe): wait for the stop flag alone
                        selector.unregister(fileno)
                        continue
                    for event in parser.feed(decode(data)):
                        self.process_message(event)
                for event in parser.tick():
                    self.process_message(event)
        finally:
            selector.close()
            try:
                for _event in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass

    def _get_terminal_size(self) -> tuple[int, int]:
        # Textual asks stdout (through shutil) and draws on stderr: either one answering is a
        # live terminal
        if self._last_size is not None and not _tty_answers(sys.__stdout__, self._file):
            return self._last_size  # the terminal is gone: nothing changed
        self._last_size = size = super()._get_terminal_size()
        return size


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 64):
            pass
    except (BlockingIOError, OSError):
        pass
