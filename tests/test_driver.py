"""A terminal that cannot say its size any more keeps the last size it said
(mlintern_tui/driver.py): a closed window must not make the app lay everything out again at
Textual's fallback of 80x25 before it handles the hangup."""

from __future__ import annotations

import os
import pty
import sys
from types import SimpleNamespace

from textual.drivers.linux_driver import LinuxDriver

from mlintern_tui.driver import SteadyDriver
from tests.tui_support import AppUnderTest


def _driver(file) -> SteadyDriver:
    driver = SteadyDriver.__new__(SteadyDriver)  # no terminal modes, no signal handlers
    driver._file = file
    return driver


def test_a_live_terminal_reports_its_size(monkeypatch):
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w") as tty:
            driver = _driver(tty)
            monkeypatch.setattr(sys, "__stdout__", tty)
            monkeypatch.setattr(LinuxDriver, "_get_terminal_size", lambda self: (132, 43))
            assert driver._get_terminal_size() == (132, 43)
            monkeypatch.setattr(LinuxDriver, "_get_terminal_size", lambda self: (100, 30))
            from mlintern_tui.driver import EchoSlot

            driver.echo_slot = EchoSlot(0, 5, 5, b"", b"")
            assert driver._get_terminal_size() == (100, 30)  # a real resize goes through
            assert driver.echo_slot is None  # and no key is drawn where the prompt was
    finally:
        os.close(master)


def test_a_terminal_that_is_gone_keeps_the_last_size(monkeypatch, tmp_path):
    master, slave = pty.openpty()
    tty = os.fdopen(slave, "w")
    driver = _driver(tty)
    monkeypatch.setattr(LinuxDriver, "_get_terminal_size", lambda self: (132, 43))
    assert driver._get_terminal_size() == (132, 43)
    # the window closes: its size cannot be read, and Textual would fall back to 80x25
    tty.close()
    os.close(master)
    driver._file = open(tmp_path / "not-a-tty", "w")
    monkeypatch.setattr(sys, "__stdout__", driver._file)  # pytest's own may be a terminal
    monkeypatch.setattr(LinuxDriver, "_get_terminal_size", lambda self: (80, 25))
    try:
        assert driver._get_terminal_size() == (132, 43)
    finally:
        driver._file.close()


def test_the_app_uses_it_unless_another_driver_is_asked_for(monkeypatch):
    from textual import constants

    monkeypatch.setattr(constants, "DRIVER", None)
    assert AppUnderTest().get_driver_class() is SteadyDriver
    # TEXTUAL_DRIVER (read into constants.DRIVER when Textual is imported) is the user's choice
    monkeypatch.setattr(constants, "DRIVER", "textual.drivers.linux_inline_driver:LinuxInlineDriver")
    assert AppUnderTest().get_driver_class().__name__ == "LinuxInlineDriver"


# --------------------------------------------------------------------------- the input thread


class _Input:
    """A SteadyDriver reading keys from a pipe on its own input thread, collecting what it
    would send the app."""

    def __init__(self) -> None:
        import signal
        import threading

        self._handlers = {s: signal.getsignal(s) for s in (signal.SIGTSTP, signal.SIGCONT)}
        self.driver = SteadyDriver(app=None)  # type: ignore[arg-type]  # sets SIGTSTP/SIGCONT handlers
        self.read_fd, self.write_fd = os.pipe()
        self.driver.fileno = self.read_fd
        self.got: list = []
        self.driver.process_message = self.got.append  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.driver.run_input_thread, daemon=True)
        self.thread.start()

    def keys(self) -> list[str]:
        return [getattr(m, "key", type(m).__name__) for m in self.got]

    def switches(self) -> int:
        """How many times the thread has gone to sleep and woken so far."""
        with open(f"/proc/self/task/{self.thread.native_id}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))

    def close(self) -> None:
        import signal

        self.driver.exit_event.set()
        self.thread.join(2)
        for fd in (self.read_fd, self.write_fd):
            if fd >= 0:
                os.close(fd)
        self.driver.close()
        for sig, handler in self._handlers.items():
            signal.signal(sig, handler)


def _until(condition, timeout: float = 2.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


async def test_the_input_thread_sleeps_until_a_key_comes():
    import time

    inp = _Input()
    try:
        os.write(inp.write_fd, b"ab")
        assert _until(lambda: inp.keys() == ["a", "b"])
        before = inp.switches()
        time.sleep(0.6)  # Textual's thread would wake six times here
        assert inp.switches() - before == 0
        os.write(inp.write_fd, b"c")
        assert _until(lambda: inp.keys() == ["a", "b", "c"])
    finally:
        inp.close()
    assert not inp.thread.is_alive()


async def test_a_lone_escape_still_becomes_a_key_when_nothing_follows():
    inp = _Input()
    try:
        os.write(inp.write_fd, b"\x1b")  # the start of a sequence, or the escape key: time says which
        assert _until(lambda: inp.keys() == ["escape"])
        os.write(inp.write_fd, b"\x1b[A")  # a whole sequence is one key at once
        assert _until(lambda: inp.keys() == ["escape", "up"])
    finally:
        inp.close()


async def test_stopping_wakes_the_sleeping_thread_at_once():
    import time

    inp = _Input()
    time.sleep(0.05)
    started = time.monotonic()
    inp.driver.exit_event.set()
    inp.thread.join(2)
    assert not inp.thread.is_alive() and time.monotonic() - started < 0.05
    inp.close()


async def test_input_that_ends_is_not_read_again_and_again():
    import time

    inp = _Input()
    try:
        os.write(inp.write_fd, b"x")
        os.close(inp.write_fd)  # stdin was a pipe, and it is done
        inp.write_fd = -1  # its number may be the driver's next: never closed twice
        assert _until(lambda: inp.keys() == ["x"])
        time.sleep(0.1)
        before = inp.switches()
        time.sleep(0.3)
        assert (inp.switches() - before, inp.thread.is_alive(), inp.keys()) == (0, True, ["x"])  # waits for the stop flag, quietly
    finally:
        inp.close()
    assert not inp.thread.is_alive()


def test_the_wait_follows_the_parser():
    from textual._xterm_parser import XTermParser

    from mlintern_tui.driver import POLL_S, input_wait

    parser = XTermParser()
    assert input_wait(parser) is None  # nothing held: sleep until something happens
    list(parser.feed("\x1b"))
    wait = input_wait(parser)
    assert wait is not None and 0 < wait <= 0.2  # an escape held: wake when it is due
    assert input_wait(object()) == POLL_S  # a parser that does not say: poll as Textual does


async def test_after_a_suspend_the_input_thread_reads_and_stops_again():
    """A suspend (ctrl+z, the config editor) stops the thread and closes the driver; the resumed
    app starts a new thread, which must be woken and stopped like the first."""
    import threading

    inp = _Input()
    try:
        os.write(inp.write_fd, b"a")
        assert _until(lambda: inp.keys() == ["a"])
        inp.driver.exit_event.set()  # what disable_input does
        inp.thread.join(2)
        assert not inp.thread.is_alive()
        inp.driver.exit_event.clear()
        inp.driver.close()  # what suspend_application_mode does
        inp.thread = threading.Thread(target=inp.driver.run_input_thread, daemon=True)
        inp.thread.start()  # resume_application_mode
        os.write(inp.write_fd, b"b")
        assert _until(lambda: inp.keys() == ["a", "b"])
    finally:
        inp.close()
    assert not inp.thread.is_alive()


# --------------------------------------------------------------------------- local echo's parts


async def test_only_one_plain_typed_character_is_drawn_early(monkeypatch):
    import threading
    import time

    from mlintern_tui import driver as driver_module
    from mlintern_tui.driver import EchoSlot, FrameWriter

    inp = _Input()
    master, slave = pty.openpty()
    tty = os.fdopen(slave, "w")
    writer = FrameWriter(tty, threading.Lock())
    writer.start()
    inp.driver._frames = writer
    inp.driver.echo_on = True

    def key(data: bytes, expect: list[str]) -> bytes:
        """Offer a slot, send the bytes, and return what the input thread drew."""
        inp.driver.echo_slot = EchoSlot(inp.driver.inputs_read, 5, 3, b"<", b">")
        before = len(inp.got)
        os.write(inp.write_fd, data)
        if expect:
            assert _until(lambda: inp.keys()[before:] == expect)
        else:  # nothing comes of it yet: give the thread the time to read it
            time.sleep(0.05)
        writer.write("|")  # a frame after it: whatever the thread drew comes before
        got = b""
        while not got.endswith(b"|"):
            got += os.read(master, 1024)
        # the bytes can arrive before the writer lets go of the lock: the next key must find it
        # free (an echo waits for it only ECHO_WAIT_S, then leaves the key to the loop)
        assert _until(lambda: not writer._lock.locked())
        return got[:-1]

    try:
        assert key(b"j", ["j"]) == b"<j>" and inp.driver.echoed == (1, 5, 3)
        assert key(b" ", ["space"]) == b"< >"
        assert key(b"jq", ["j", "q"]) == b""  # two keys in one read: the second could be anything's
        for data, name in ((b"\x1b[A", "up"), (b"\r", "enter"), (b"\x7f", "backspace"), (b"\x01", "ctrl+a")):
            assert key(data, [name]) == b""
        assert key("é".encode(), ["é"]) == b""  # not ASCII: its width is the loop's to say
        os.write(inp.write_fd, b"\x1b")  # an escape, held to see what follows ...
        time.sleep(0.02)
        assert key(b"a", ["alt+a"]) == b""  # ... makes this alt+a, not "a"
        assert key(b"\x1b[200~", []) == b""  # a bracketed paste begins: its letters are the paste's
        assert key(b"a", []) == b""
        assert key(b"\x1b[201~", ["Paste"]) == b""
        assert key(b"b", ["b"]) == b"<b>"  # after the paste, keys are keys again
        # the kitty keyboard protocol (Textual asks for it): the same keys as escape sequences
        assert key(b"\x1b[97u", ["a"]) == b"<a>"
        assert key(b"\x1b[97;;97u", ["a"]) == b"<a>"
        assert key(b"\x1b[97;2;65u", ["A"]) == b"<A>"  # shift: the text says what it typed
        assert key(b"\x1b[97;5u", ["ctrl+a"]) == b""
        assert key(b"\x1b[233;;233u", ["é"]) == b""
        assert inp.keys()[-7:-5] == ["Paste", "b"] and inp.got[-7].text == "a"
        # a frame being written when the key is read: the key is drawn once it is out (the
        # test's wait is long, so a slow machine cannot make the frame outlast it)
        monkeypatch.setattr(driver_module, "ECHO_WAIT_S", 2.0)
        inp.driver.echo_slot = EchoSlot(inp.driver.inputs_read, 5, 3, b"<", b">")
        with writer._lock:
            os.write(inp.write_fd, b"k")
            time.sleep(0.01)
            os.write(slave, b"frame")
        assert _until(lambda: inp.keys()[-1] == "k")
        writer.write("|")  # a frame after it: whatever the thread drew comes before
        got = b""
        while not got.endswith(b"|"):
            got += os.read(master, 1024)
        assert got == b"frame<k>|"
        stale = EchoSlot(inp.driver.inputs_read - 1, 5, 3, b"<", b">")  # made before the last key was read
        inp.driver.echo_slot = stale
        os.write(inp.write_fd, b"c")
        assert _until(lambda: inp.keys()[-1] == "c")
        writer.write("|")
        assert os.read(master, 1024) == b"|"
    finally:
        inp.close()
        writer.stop()
        tty.close()
        os.close(master)


def test_the_frame_writer_writes_whole_frames_and_outlives_its_terminal():
    import threading
    import time

    from mlintern_tui.driver import ECHO_WAIT_S, FrameWriter

    master, slave = pty.openpty()
    tty = os.fdopen(slave, "w")
    writer = FrameWriter(tty, threading.Lock())
    writer.start()
    try:
        writer.write("\x1b[1;1Hframe one")
        writer.write("\x1b[2;1Hframe two")
        got = b""
        while b"frame two" not in got:
            got += os.read(master, 1024)
        assert got == b"\x1b[1;1Hframe one\x1b[2;1Hframe two"
        with writer._lock:  # the writer may still hold the lock a moment after the bytes arrive
            pass
        assert writer.put_out(b"\x1b7x\x1b8", wait=ECHO_WAIT_S)  # the echo's way in, between frames
        assert os.read(master, 1024) == b"\x1b7x\x1b8"
        with writer._lock:  # a frame being written to a terminal that has stopped reading
            started = time.perf_counter()
            assert not writer.put_out(b"late echo", wait=ECHO_WAIT_S)  # the echo waits only so long
            assert time.perf_counter() - started < 1.0
        # a frame being written that ends within the wait: the echo goes right after it
        writer._lock.acquire()
        threading.Timer(0.005, lambda: (os.write(slave, b"frame"), writer._lock.release())).start()
        assert writer.put_out(b"\x1b7y\x1b8", wait=2.0)
        got = b""
        while not got.endswith(b"\x1b7y\x1b8"):
            got += os.read(master, 1024)
        assert got == b"frame\x1b7y\x1b8"
        # a synchronized update the loop has opened and not closed is held until it is: an
        # echo meanwhile goes before it, not inside (where it would show with the frame)
        writer.write("\x1b[?2026h")
        time.sleep(0.05)
        assert writer.put_out(b"E")
        writer.write("frame")
        writer.write("\x1b[?2026l")
        got = b""
        while not got.endswith(b"\x1b[?2026l"):
            got += os.read(master, 1024)
        assert got == b"E\x1b[?2026hframe\x1b[?2026l"
        os.close(master)  # the terminal goes away: writes fail with EIO
        master = -1
        for n in range(200):  # far more than the queue holds: nothing blocks
            writer.write(f"frame {n}")
        assert not writer.put_out(b"late")
        assert isinstance(writer.failed, OSError)
    finally:
        writer.stop()
        tty.close()
        if master >= 0:
            os.close(master)
    assert not writer.is_alive()


async def test_an_input_event_lost_on_the_way_does_not_hold_the_echo_back_for_good():
    from mlintern_tui.local_echo import LocalEcho

    inp = _Input()
    try:
        echo = LocalEcho(app=None, driver=inp.driver, prompt=None)  # type: ignore[arg-type]  # the app's side, on its own
        os.write(inp.write_fd, b"a")
        os.write(inp.write_fd, b"\x1b[B")
        assert _until(lambda: inp.keys() == ["a", "down"])
        os.write(inp.write_fd, b"c")
        assert _until(lambda: inp.keys() == ["a", "down", "c"])
        assert len(inp.driver.unarrived) == 3  # read, not yet taken by the app: no slot meanwhile
        echo.arrived(inp.got[0])
        assert len(inp.driver.unarrived) == 2
        echo.arrived(inp.got[2])  # "down" never came (dropped on the way): it is not waited for
        assert inp.driver.unarrived == {}
    finally:
        inp.close()


async def test_closing_the_driver_stops_an_input_thread_that_was_not_stopped():
    """Textual's disable_input swallows its own errors; after a hangup the input thread was
    found still polling with its wake pipe closed under it, at a full core, until the hangup
    watchdog ended the process 9 s later."""
    inp = _Input()
    try:
        os.write(inp.write_fd, b"a")
        assert _until(lambda: inp.keys() == ["a"])
        inp.driver._key_thread = inp.thread
        inp.driver.close()  # no exit_event.set() before it
        assert _until(lambda: not inp.thread.is_alive(), 1.5)
        assert not inp.driver.exit_event.is_set()  # a resume starts a new thread that runs
    finally:
        inp.close()
    # a thread whose pipe goes away under it (closed by anyone) leaves instead of spinning
    inp = _Input()
    try:
        import time

        time.sleep(0.05)
        with inp.driver._wake_lock:
            os.close(inp.driver._wake_r)
            os.close(inp.driver._wake_w)
            inp.driver._wake_r = inp.driver._wake_w = -1
        inp.driver._wake_input()  # nothing to write to: a no-op
        assert _until(lambda: not inp.thread.is_alive(), 1.5)
    finally:
        inp.close()


def test_the_forced_restore_waits_for_the_frame_being_written_not_for_a_stuck_writer(monkeypatch):
    """mlintern_tui/hangup.py restore_terminal (the watchdog's last act): its sequences go out
    after the frame holding the output lock, and go out anyway when the lock never frees."""
    import threading
    import time

    from mlintern_tui import hangup

    read_end, write_end = os.pipe()
    try:
        driver = SimpleNamespace(fileno=write_end, _out_lock=threading.Lock(), attrs_before=None)
        driver._out_lock.acquire()  # a frame is being written

        def frame_ends() -> None:
            time.sleep(0.1)
            os.write(write_end, b"FRAME-END")
            driver._out_lock.release()

        threading.Thread(target=frame_ends).start()
        hangup.restore_terminal(driver)
        out = os.read(read_end, 4096)
        assert out.startswith(b"FRAME-END\x1b[?2026l")  # after the frame; an open sync block ended first
        assert out.endswith(hangup.RESTORE.encode())

        driver._out_lock.acquire()  # a writer stuck for good
        monkeypatch.setattr(hangup, "OUTPUT_LOCK_WAIT_S", 0.05)
        hangup.restore_terminal(driver)
        assert os.read(read_end, 4096) == hangup.RESTORE.encode()
    finally:
        os.close(read_end)
        os.close(write_end)


async def test_stopping_wakes_every_input_thread_a_resume_left_running(monkeypatch):
    """A hangup is followed by SIGCONT, on which Textual resumes the driver: a second input
    thread started while the first still polled. Stopping wrote one byte to the wake pipe; the
    first thread took it, the second - between its check of the stop flag and its poll() -
    slept on, and the quit waited for it until the hangup watchdog (9 s)."""
    import threading

    from mlintern_tui import driver as driver_module

    inp = _Input()
    first_gone = threading.Event()
    wait = driver_module.input_wait

    def late_poll(parser):  # the second thread reaches poll() only once the first has left
        if threading.current_thread() is second:
            first_gone.wait(2)
        return wait(parser)

    monkeypatch.setattr(driver_module, "input_wait", late_poll)
    second = threading.Thread(target=inp.driver.run_input_thread, daemon=True)
    second.start()
    try:
        assert _until(lambda: inp.switches() > 0)  # the first is asleep in poll()
        inp.driver.exit_event.set()
        inp.thread.join(1.0)
        first_gone.set()
        second.join(1.0)
        assert not inp.thread.is_alive() and not second.is_alive()
    finally:
        inp.close()
