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
due, or until it is told to stop (a pipe wakes it).

A typed character is drawn by the input thread itself when the UI loop has said where it
goes (local echo, see ``mlintern_tui/local_echo.py``): the loop can be busy for milliseconds
with a frame of a streaming answer or a layout pass, and the key should not wait for it. For
that the frames and the echo go to the terminal through one lock (``FrameWriter``), so an
echo never lands inside a frame's escape sequence."""

from __future__ import annotations

import os
import re
import select
import selectors
import sys
import threading
from codecs import getincrementaldecoder
from queue import Empty, Queue
from typing import NamedTuple

from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers._writer_thread import MAX_QUEUED_WRITES
from textual.drivers.linux_driver import LinuxDriver
from textual.events import InputEvent, Key, Paste

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


class EchoSlot(NamedTuple):
    """Where the next typed character goes, as the UI loop last drew the prompt.

    ``inputs`` is the driver's count of input events read when the slot was published: a slot
    is good for the next read only, and only if nothing was read after it was made."""

    inputs: int
    x: int
    y: int
    before: bytes  # save the cursor, go to the cell, the text's style
    after: bytes  # the style's end, the cursor one cell on, the cursor back


#: DEC mode 2026, which Textual wraps each frame in when the terminal says it has it
SYNC_START, SYNC_END = "\x1b[?2026h", "\x1b[?2026l"
#: how long the writer holds an opened synchronized update for the rest of its frame
SYNC_WAIT_S = 0.25
#: how long a key drawn early waits for a frame being written: a whole screen (~16 KB at
#: 120x36) takes ~2 ms into a pty. Without the wait, a key typed during that write went to the
#: loop instead, and showed with the loop's next frame: 70-140 ms later while the agent's
#: rounds came back to back (bench/tui_long_conversation.py, 800 rounds: the largest echo
#: times of each run). A terminal that has stopped reading holds the writer longer: then the
#: key goes to the loop after this wait.
ECHO_WAIT_S = 0.02


def _sync_after(text: str, inside: bool) -> bool:
    """Whether a synchronized update is open after this text (it was open before: inside)."""
    start, end = text.rfind(SYNC_START), text.rfind(SYNC_END)
    return inside if start == end == -1 else start > end


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:  # a terminal someone made non-blocking: wait until it takes more
            select.select([], [fd], [], 1.0)


class FrameWriter(threading.Thread):
    """Textual's writer thread (frames queue up and a thread of its own writes them), writing
    to the terminal's descriptor under a lock that the echo of a typed key also takes: each
    write is whole, never interleaved. A terminal that fails (closed, hung up) is not written
    to again, but the queue keeps draining: Textual's thread would die and the UI loop block
    on the full queue."""

    def __init__(self, file, lock: threading.Lock) -> None:
        super().__init__(daemon=True, name="textual-output")
        self._queue: Queue[str | None] = Queue(MAX_QUEUED_WRITES)
        self._file = file
        self._lock = lock
        self._encoding = getattr(file, "encoding", None) or "utf-8"
        self._errors = getattr(file, "errors", None) or "strict"
        self.failed: OSError | None = None
        #: while a list: what is written is also kept there (the first frame, for the next start)
        self.capture: list[str] | None = None

    def write(self, text: str) -> None:
        if self.capture is not None:
            self.capture.append(text)
        self._queue.put(text)

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._file.fileno()

    def flush(self) -> None:
        """Nothing: the thread writes as soon as it has something."""

    def put_out(self, data: bytes, wait: float | None = None) -> bool:
        """Write bytes at once, between frames; False if the terminal is gone, or if a frame
        still holds the terminal after ``wait`` seconds (None: as long as it takes): the input
        thread does not wait long behind a terminal that has stopped reading, it leaves the
        key to the loop."""
        if not (self._lock.acquire() if wait is None else self._lock.acquire(timeout=wait)):
            return False
        try:
            if self.failed is not None:
                return False
            try:
                _write_all(self._file.fileno(), data)
            except (OSError, ValueError) as error:
                self.failed = error if isinstance(error, OSError) else OSError(str(error))
                return False
            return True
        finally:
            self._lock.release()

    def run(self) -> None:
        try:
            self._file.flush()  # anything Python still holds for this file goes first
        except (OSError, ValueError):
            pass
        get, get_now = self._queue.get, self._queue.get_nowait
        stop = False
        while not stop:
            parts: list[str] = []
            inside = False
            text = get()
            while True:  # what queued meanwhile goes in the same write, as Textual's flush did
                if text is None:
                    stop = True
                    break
                parts.append(text)
                inside = _sync_after(text, inside)
                try:
                    # a synchronized update opened and not yet closed: the loop is still making
                    # the frame, so wait for the rest (an echo written inside the block would
                    # show only when the frame does)
                    text = get(timeout=SYNC_WAIT_S) if inside else get_now()
                except Empty:
                    break
            if parts:
                self.put_out("".join(parts).encode(self._encoding, self._errors))

    def stop(self) -> None:
        self._queue.put(None)
        self.join()


class SteadyDriver(LinuxDriver):
    _last_size: tuple[int, int] | None = None
    _wake_r = _wake_w = -1
    _frames: FrameWriter | None = None
    #: keys typed into the last start's frame before this driver started: read first
    _gap_keys = b""
    _on_alt_screen = False

    def __init__(self, *args, **kwargs) -> None:
        self._out_lock = threading.Lock()
        #: local echo (on once the app starts it): the slot the UI loop publishes, the input
        #: events read so far, those not yet taken by the app (id -> number), and the last key
        #: drawn here (number, x, y)
        self.echo_on = False
        self.echo_slot: EchoSlot | None = None
        self.inputs_read = 0
        self.unarrived: dict[int, int] = {}
        self.echoed: tuple[int, int, int] | None = None
        super().__init__(*args, **kwargs)
        self._wake_lock = threading.Lock()
        self.exit_event = _WakingEvent(self._wake_input)

    @property
    def _writer_thread(self) -> FrameWriter | None:
        return self._frames

    @_writer_thread.setter
    def _writer_thread(self, thread) -> None:
        # Textual makes its own writer when the app starts (and after a suspend): ours instead
        if thread is not None and not isinstance(thread, FrameWriter):
            thread = FrameWriter(self._file, self._out_lock)
        self._frames = thread

    def start_application_mode(self) -> None:
        # the last start's first frame may be on screen already, with keys typed into it
        # (mlintern_tui/instant_frame.py): its reader stops before Textual writes anything, and
        # the terminal settings restored at exit are the ones from before that frame
        gap = getattr(self._app, "instant_gap", None)
        if gap is not None:
            self._gap_keys = gap.hand_over()
            self._on_alt_screen = True
        try:
            super().start_application_mode()
        except BaseException:
            if gap is not None:  # Textual stops only a start that returned: the terminal as it was
                gap.restore_terminal()
            raise
        finally:
            self._on_alt_screen = False
        if gap is not None:
            self._app.instant_gap = None
            self.attrs_before = gap.attrs

    def write(self, data: str) -> None:
        if data == "\x1b[?1049h" and self._on_alt_screen:
            return  # the kept frame is on the alternate screen already: entering it again may clear it
        super().write(data)

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
        """On exit, and on a suspend (ctrl+z, an editor). The input thread has normally
        stopped by now (Textual's ``disable_input``), but that step swallows its own errors:
        after a hangup the thread was found still polling, with its wake pipe closed under it,
        at a full core until the hangup watchdog ended the process 9 s later. So it is told to
        stop, and waited for, before the pipe goes."""
        self.echo_slot = None
        thread = self._key_thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            self.exit_event.set()  # wakes it through the pipe
            thread.join(1.0)
            self.exit_event.clear()  # as disable_input leaves it: a resume starts a new thread
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
        pasting, tail = False, b""
        early, self._gap_keys = self._gap_keys, b""
        if early:
            for event in parser.feed(decode(early)):
                self._post(event)
        try:
            while not self.exit_event.is_set():
                for key, _mask in selector.select(input_wait(parser)):
                    if key.fd == wake:
                        if self.exit_event.is_set():
                            # the byte stays in the pipe: a second input thread polling it (a
                            # resume that started one before this stopped) wakes on it too
                            return
                        if not _drain(wake):
                            return  # the pipe was closed under this thread: the driver is gone
                        continue
                    data = os.read(fileno, 4096)
                    if not data:  # stdin ended (a pipe): wait for the stop flag alone
                        selector.unregister(fileno)
                        continue
                    slot, self.echo_slot = self.echo_slot, None  # good for one read at most
                    # the echo goes out before the parser runs: its first run after a sleep
                    # takes ~0.2 ms (cold caches), longer than everything else on this path
                    typed = None if slot is None else _printable(data)
                    echoed = (typed is not None and slot.inputs == self.inputs_read and not pasting
                              and getattr(parser, "_timeout_time", _UNSAID) is None  # no sequence half read
                              and self._echo(slot, typed))
                    seen = tail + data  # a paste's opening marker, even split between reads
                    if b"\x1b[200~" in seen:
                        pasting = True
                    tail = seen[-5:]
                    events = list(parser.feed(decode(data)))
                    if echoed and not _typed(typed, events):
                        self._echo_wrong()
                    for event in events:
                        if type(event) is Paste:
                            pasting = False
                        self._post(event)
                for event in parser.tick():
                    self._post(event)
        finally:
            selector.close()
            try:
                for _event in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass

    def _post(self, event) -> None:
        if self.echo_on and isinstance(event, InputEvent):
            number = self.inputs_read + 1
            self.unarrived[id(event)] = number  # first: the loop must not see the count without it
            self.inputs_read = number
        self.process_message(event)

    def _echo(self, slot: EchoSlot, data: bytes) -> bool:
        """Draw the typed character where the slot says, before the app has the key."""
        frames = self._frames
        if frames is None or not frames.put_out(slot.before + data + slot.after, wait=ECHO_WAIT_S):
            return False
        self.echoed = (self.inputs_read + 1, slot.x, slot.y)  # the number its key gets
        return True

    def _echo_wrong(self) -> None:
        """The character drawn early was not a key of its own after all (the parser saw more
        in it): the loop draws the screen again."""
        self.echoed = None
        app = self._app
        if app is not None:
            self._loop.call_soon_threadsafe(app.refresh)

    def _get_terminal_size(self) -> tuple[int, int]:
        self.echo_slot = None  # asked on SIGWINCH: cells move, no key is drawn where they were
        # Textual asks stdout (through shutil) and draws on stderr: either one answering is a
        # live terminal
        if self._last_size is not None and not _tty_answers(sys.__stdout__, self._file):
            return self._last_size  # the terminal is gone: nothing changed
        self._last_size = size = super()._get_terminal_size()
        return size


#: a key in the kitty keyboard protocol, which Textual asks for: CSI code[:alternates]
#: [; modifiers [; text]] u (no event types: Textual does not ask for releases)
_CSI_U = re.compile(rb"\x1b\[(\d+)(?::[\d:]*)?(?:;(\d*)(?:;(\d+))?)?u")


def _printable(data: bytes) -> bytes | None:
    """The one printable ASCII character this read types, if that is all it is: a plain byte,
    or the same key in the kitty keyboard protocol (kitty, Ghostty, foot, WezTerm, recent
    Alacritty), unmodified or with shift alone."""
    if len(data) == 1:
        return data if 0x20 <= data[0] < 0x7F else None
    if len(data) > 24 or not data.startswith(b"\x1b[") or not data.endswith(b"u"):
        return None
    match = _CSI_U.fullmatch(data)
    if match is None:
        return None
    code, modifiers, text = match.groups()
    if modifiers in (None, b"", b"1"):
        char = int(text or code)
    elif modifiers == b"2" and text:  # shift: the text says what it typed
        char = int(text)
    else:
        return None
    return bytes((char,)) if 0x20 <= char < 0x7F else None


def _typed(char: bytes, events: list) -> bool:
    """Whether the parser made of this read the key it was taken for, and nothing else."""
    if len(events) != 1:
        return False
    event = events[0]
    return type(event) is Key and event.character == char.decode("ascii")


def _drain(fd: int) -> bool:
    """Empty the wake pipe; False if it is closed."""
    try:
        while os.read(fd, 64):
            pass
    except BlockingIOError:
        pass
    except OSError:
        return False
    return True
