"""The last start's first frame, drawn before Textual is imported (mlintern_tui/instant_frame.py):
what it is kept under, how it is read back, the keys typed into it (a real pseudo-terminal), and
the installed command in tmux: the frame shows while the start is held before Textual's import,
typing shows in its prompt and reaches the app, and the terminal is as it was after the app
ends or the start is killed."""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import subprocess
import sys
import termios
import time
import uuid
from pathlib import Path

import pytest

from mlintern_tui import instant_frame
from mlintern_tui.instant_frame import FRAME_FILE, Gap, Slot, remember, show, start_key
from tests.test_tmux_smoke import TMUX, capture, wait_screen

SIZE = (120, 36)
ARGV = ["-m", "openai/peerbench"]
SLOT = Slot(x=3, y=32, width=10, text_on="\x1b[38;5;188m", text_off="\x1b[39m", cursor="\x1b[7m \x1b[27m",
            blank_on="\x1b[48;5;234m", blank_off="\x1b[49m")


def record_file(home: Path) -> Path:
    return home / "cache" / FRAME_FILE


# --------------------------------------------------------------------------- the key

def test_the_key_changes_with_everything_the_frame_shows(mlintern_home, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    base = start_key(ARGV, SIZE)
    assert base is not None and start_key(ARGV, SIZE) == base
    assert start_key(ARGV, (100, 36)) != base  # the terminal's size
    assert start_key(["-m", "openai/other"], SIZE) != base  # the command line
    term = os.environ.get("TERM")
    monkeypatch.setenv("TERM", "vt100-test")
    assert start_key(ARGV, SIZE) != base  # the terminal's type
    if term is None:
        monkeypatch.delenv("TERM")
    else:
        monkeypatch.setenv("TERM", term)
    assert start_key(ARGV, SIZE) == base
    (mlintern_home / "config.json").write_text(json.dumps({"theme": "mlintern-light"}))
    assert start_key(ARGV, SIZE) != base  # the config file
    (mlintern_home / "config.json").unlink()
    monkeypatch.setenv("MISTRAL_API_KEY", "sk-one")
    with_key = start_key(ARGV, SIZE)
    assert with_key != base  # a credential that can choose the default model
    monkeypatch.setenv("MISTRAL_API_KEY", "sk-two")
    assert start_key(ARGV, SIZE) == with_key  # whether it is set, never its value
    monkeypatch.delenv("MISTRAL_API_KEY")
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:11435")
    assert start_key(ARGV, SIZE) != base  # where a provider is
    monkeypatch.delenv("OLLAMA_HOST")
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    assert start_key(ARGV, SIZE) != base  # the working directory


def test_the_key_covers_the_code_that_draws(mlintern_home, monkeypatch, tmp_path):
    root = tmp_path / "code"
    for package in instant_frame.FRONT_END:
        (root / package).mkdir(parents=True)
        (root / package / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(instant_frame, "ROOT", root)
    base = start_key(ARGV, SIZE)
    (root / "widgets" / "a.py").write_text("x = 22\n")
    assert start_key(ARGV, SIZE) != base
    cached = root / "widgets" / "__pycache__"
    cached.mkdir()
    changed = start_key(ARGV, SIZE)
    (cached / "a.cpython-311.pyc").write_bytes(b"\0")
    assert start_key(ARGV, SIZE) == changed  # compiled files are not the code


def test_an_unreadable_config_keeps_nothing(mlintern_home):
    (mlintern_home / "config.json").mkdir()  # not a regular file: the broken-config dialog comes first
    assert start_key(ARGV, SIZE) is None


# --------------------------------------------------------------------------- the record

def test_remember_then_read_back_private_and_checked(mlintern_home):
    assert remember("k1", "\x1b[1;1Hframe", SLOT)
    path = record_file(mlintern_home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert instant_frame._read("k1", SIZE) == ("\x1b[1;1Hframe", SLOT)
    assert instant_frame._read("k2", SIZE) is None  # kept for another start
    assert remember("k1", "\x1b[1;1Hframe", SLOT)  # the same: nothing to write
    for broken in ("[]", "{", json.dumps({"key": "k1", "frame": 3}), ""):
        path.write_text(broken)
        assert instant_frame._read("k1", SIZE) is None
    path.write_text(json.dumps({"key": "k1", "frame": "f", "slot": {"x": "3"}}))
    assert instant_frame._read("k1", SIZE) == ("f", None)  # a frame without a usable slot: no echo
    path.write_text(json.dumps({"key": "k1", "frame": "f", "slot": {**SLOT.__dict__, "x": "3"}}))
    assert instant_frame._read("k1", SIZE) == ("f", None)
    for outside in ({"width": 10**9}, {"x": 115}, {"y": 36}, {"x": -1}, {"width": 0}):
        path.write_text(json.dumps({"key": "k1", "frame": "f", "slot": {**SLOT.__dict__, **outside}}))
        assert instant_frame._read("k1", SIZE) == ("f", None), outside  # not on this screen: no echo


@pytest.mark.parametrize("hostile", [
    "\x1b]52;c;cm0gLXJmIH4=\x07",  # the clipboard (OSC 52)
    "\x1b]0;pwned\x07",  # the window title
    "\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\",  # a hyperlink
    "\x1bP+q544e\x1b\\",  # a device query (DCS)
    "\x1b[6n",  # a cursor report, answered as typed input
    "\x1b[?1000h",  # mouse reporting
    "\x07", "\x9b31m",  # a bell, an 8-bit CSI
    "\udc9b31m", "\ud800",  # an 8-bit CSI as an escaped byte, a lone surrogate
])
def test_a_kept_frame_with_anything_textual_does_not_write_is_not_drawn(mlintern_home, hostile):
    """The record is a file in the data dir: whatever wrote it, only cursor moves, colours and
    text reach the terminal."""
    assert remember("k1", "\x1b[1;1Hframe" + hostile, SLOT)
    assert instant_frame._read("k1", SIZE) is None
    assert remember("k1", "\x1b[1;1H\x1b[38;5;188mframe\x1b[0m", Slot(**{**SLOT.__dict__, "cursor": hostile}))
    assert instant_frame._read("k1", SIZE) == ("\x1b[1;1H\x1b[38;5;188mframe\x1b[0m", None)  # the frame, no echo


def test_a_record_that_cannot_be_written_says_so(mlintern_home):
    (mlintern_home / "cache").write_text("a file where the folder should be")
    assert remember("k1", "frame", SLOT) is False


# --------------------------------------------------------------------------- a real pseudo-terminal

def read_all(fd: int, wait: float = 0.3) -> bytes:
    out = b""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out


def no_echo(fd: int) -> list:
    """The terminal as the kept frame leaves it (keys wait, unechoed); its settings before."""
    before = termios.tcgetattr(fd)
    raw = termios.tcgetattr(fd)
    raw[3] &= ~(termios.ICANON | termios.ECHO)
    termios.tcsetattr(fd, termios.TCSANOW, raw)
    return before


def read_until(fd: int, expected: bytes, timeout: float = 10) -> bool:
    """Read what the terminal shows until ``expected`` is at its end (however slow the reader
    thread is to run on a loaded machine)."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not out.endswith(expected):
        out += read_all(fd, 0.05)
    return out.endswith(expected)


def wait_typed(gap: Gap, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(gap.typed) < count:
        assert time.monotonic() < deadline, f"the reader took {bytes(gap.typed)!r} only"
        time.sleep(0.01)


@pytest.fixture
def pty():
    master, slave = os.openpty()
    termios.tcsetattr(slave, termios.TCSANOW, termios.tcgetattr(slave))
    yield master, slave
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def test_show_draws_the_kept_frame_and_the_terminal_stops_echoing(mlintern_home, pty):
    master, slave = pty
    os.set_inheritable(slave, False)
    size = os.get_terminal_size(slave)
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ICANON and before[3] & termios.ECHO
    assert show(ARGV, slave, slave).gap is None  # nothing kept yet
    assert read_all(master, 0.1) == b""
    key = start_key(ARGV, (size.columns, size.lines))
    remember(key, "\x1b[1;1HTHE FRAME", SLOT)
    start = show(ARGV, slave, slave)
    assert start.key == key and start.gap is not None
    try:
        shown = read_all(master)
        assert shown.startswith(instant_frame.ENTER_SCREEN) and shown.endswith(b"THE FRAME")
        mode = termios.tcgetattr(slave)
        assert not mode[3] & (termios.ICANON | termios.ECHO)
        assert mode[3] & termios.ISIG  # ctrl+c still stops the start
    finally:
        start.gap.close()
    assert termios.tcgetattr(slave) == before  # as it was
    assert read_all(master).endswith(instant_frame.LEAVE_SCREEN)


def test_another_driver_than_ours_gets_no_kept_frame(mlintern_home, pty, monkeypatch):
    """TEXTUAL_DRIVER names another driver: it would not take the keys read meanwhile, nor
    restore the terminal as it was, so nothing is drawn or kept."""
    master, slave = pty
    size = os.get_terminal_size(slave)
    remember(start_key(ARGV, (size.columns, size.lines)), "\x1b[1;1HTHE FRAME", SLOT)
    monkeypatch.setenv("TEXTUAL_DRIVER", "textual.drivers.linux_driver:LinuxDriver")
    start = show(ARGV, slave, slave)
    assert start.key is None and start.gap is None
    assert read_all(master, 0.1) == b""


@pytest.fixture
def reading(pty):
    """The kept frame's reader on a real pseudo-terminal: (the terminal's side, ours, the gap)."""
    master, slave = pty
    gap = Gap(slave, slave, no_echo(slave), SLOT)
    gap.start()
    yield master, slave, gap
    gap.close()


def test_keys_typed_into_the_frame_are_drawn_and_handed_over(reading):
    master, slave, gap = reading
    try:
        os.write(master, b"hi")
        assert read_until(master, SLOT.row("hi"))
        os.write(master, b"x\x7f!")  # a backspace takes the x back
        assert read_until(master, SLOT.row("hi!"))
        os.write(master, b"\x1b[A")  # an arrow key: the app shows the rest
        os.write(master, b"more")
        wait_typed(gap, 12)
        assert read_all(master, 0.1) == b""
        assert gap.text == "hi!"
    finally:
        typed = gap.hand_over()
    assert typed == b"hix\x7f!\x1b[Amore"  # every byte, for the driver's parser
    os.write(master, b"after")
    assert read_all(master, 0.1) == b""  # the reader stopped: the driver reads from now on
    assert os.read(slave, 100) == b"after"
    gap.close()  # after the hand-over: nothing (the driver owns the terminal)
    assert read_all(master, 0.1) == b""


async def test_a_driver_start_that_fails_after_the_hand_over_puts_the_terminal_back(pty, monkeypatch):
    """Textual stops only a start that returned: a failure (or ctrl+c) inside it, once the gap
    has handed its keys over, must not leave the terminal in no-echo mode on the alternate screen."""
    from types import SimpleNamespace

    from textual.drivers.linux_driver import LinuxDriver

    from mlintern_tui.driver import SteadyDriver

    master, slave = pty
    before = no_echo(slave)
    gap = Gap(slave, slave, before, SLOT)
    gap.start()

    def fails(self):
        raise KeyboardInterrupt  # as ctrl+c would, between Textual's writes

    monkeypatch.setattr(LinuxDriver, "start_application_mode", fails)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTSTP, signal.SIGCONT)}
    try:
        driver = SteadyDriver(SimpleNamespace(instant_gap=gap))  # type: ignore[arg-type]
        with pytest.raises(KeyboardInterrupt):
            driver.start_application_mode()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert termios.tcgetattr(slave) == before
    assert read_until(master, instant_frame.LEAVE_SCREEN)


def test_typing_past_the_prompts_row_stops_the_echo(reading):
    master, slave, gap = reading
    try:
        os.write(master, b"12345678")
        assert read_until(master, SLOT.row("12345678"))
        os.write(master, b"9")  # the cursor would leave the row (width 10)
        wait_typed(gap, 9)
        assert read_all(master, 0.1) == b""
    finally:
        assert gap.hand_over() == b"123456789"


# --------------------------------------------------------------------------- the installed command



def tmux(server: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([TMUX, "-L", server, *args], capture_output=True, text=True, **kw)


def test_nothing_before_the_frame_imports_textual():
    """What runs before the kept frame is drawn (the command line, the key, the record) loads
    no Textual: the frame's point is to be on screen while Textual is imported."""
    code = ("import sys; from mlintern_tui import cli, instant_frame; "
            "instant_frame.show(['-m', 'x']); instant_frame.start_key(['-m', 'x'], (80, 24)); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'pydantic')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_the_installed_command_draws_the_kept_frame_before_textual(mlintern_home, tmp_path):
    exe = Path(sys.executable).parent / "mlintern"
    assert exe.exists(), "the console script is not installed next to this Python"
    hold = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "HF_TOKEN"}
    env.update({"MLINTERN_HOME": str(mlintern_home), "TERM": "xterm-256color", "MLINTERN_DEMO_DELAY": "0",
                "MLINTERN_TEST_HOLD_START": str(hold)})
    flags = "stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon\\|-\\?echo\\|-\\?isig' | tr '\\n' ' '"
    command = f"cd {tmp_path} && {exe}; echo EXIT=$?; {flags}; sleep 60"
    server = f"mlintern-instant-{uuid.uuid4().hex[:8]}"

    def t(*args: str, **kw) -> subprocess.CompletedProcess:
        return tmux(server, *args, **kw)

    def launch(width: int = 120) -> None:
        t("kill-server")
        for _ in range(20):  # the server of the last launch may still be going away
            started = t("new-session", "-d", "-s", server, "-x", str(width), "-y", "36", command, env=env)
            if started.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"tmux did not start: {started.stderr}")

    def app_pid() -> int:
        pane = t("display-message", "-p", "#{pane_pid}").stdout.strip()
        return int(subprocess.run(["pgrep", "-P", pane], capture_output=True, text=True).stdout.split()[0])

    def ready(shown: str) -> bool:
        return "demo (scripted" in shown and "Ask the agent" in shown and "(loading)" not in shown

    def framed(shown: str) -> bool:
        return "demo (scripted" in shown and "Ask the agent" in shown

    try:
        # 1. the first start of this version builds the tools' schemas, and its first frame says
        # the model is loading: the next start's will not, so that frame is not kept. The second
        # start's is.
        hold.touch()
        launch()
        first = wait_screen(server, ready, 30, "the first start")
        assert "^q Quit" in first  # the app's own frames, nothing kept yet
        wait_screen(server, lambda s: (mlintern_home / "cache" / "first-frame.json").exists(), 30, "the session built")
        t("send-keys", "C-q")
        wait_screen(server, lambda s: "EXIT=0" in s, 30, "the first start's end")
        assert not record_file(mlintern_home).exists()
        launch()
        wait_screen(server, ready, 30, "the second start")
        wait_screen(server, lambda s: record_file(mlintern_home).exists(), 10, "the frame kept")
        t("send-keys", "C-q")
        wait_screen(server, lambda s: "EXIT=0" in s, 30, "the second start's end")

        # 2. kept: drawn while the start is held before Textual's import; typing shows in the
        # prompt's row; released, the app has the text, and enter sends it
        hold.unlink()
        launch()
        held = wait_screen(server, framed, 30, "the kept frame while the start is held")
        assert "Plan" in held and "Output" in held and "^q Quit" not in held and "(loading)" not in held
        t("send-keys", "-l", "hello there")
        wait_screen(server, lambda s: "│ hello there" in s, 5, "the typed text in the kept frame's prompt")
        hold.touch()
        # the footer's keys come with the app's second frame, never in the kept one: the app is up
        # and drew the prompt with the text it was handed
        live = wait_screen(server, lambda s: "^q Quit" in s, 30, "the app's own frames")
        assert "│ hello there" in live
        t("send-keys", "Enter")
        wait_screen(server, lambda s: "Approval 1 of 1" in s, 30, "the demo's turn for the prompt typed before the app started")
        t("send-keys", "C-q")
        shown = wait_screen(server, lambda s: "EXIT=" in s and "echo" in s.split("EXIT=")[1], 30, "the second start's end")
        assert "EXIT=0" in shown and "isig icanon echo" in shown and "hello there" not in shown

        # 3. killed while held: the terminal is put back
        hold.unlink()
        launch()
        wait_screen(server, framed, 30, "the kept frame again")
        t("send-keys", "-l", "abc")
        wait_screen(server, lambda s: "│ abc" in s, 5, "abc in the kept frame")
        os.kill(app_pid(), signal.SIGTERM)
        shown = wait_screen(server, lambda s: "EXIT=" in s and "echo" in s.split("EXIT=")[1], 30, "the killed start's end")
        assert "EXIT=143" in shown and "isig icanon echo" in shown and "abc" not in shown

        # 4. another terminal size: nothing is drawn before the app's own frame
        held_marker = Path(str(hold) + ".held")
        held_marker.unlink()
        launch(width=100)
        wait_screen(server, lambda s: held_marker.exists(), 30, "the start held")
        assert not framed(capture(server))
        hold.touch()
        wait_screen(server, ready, 30, "the start at another size, released")
    finally:
        hold.touch()
        t("kill-server")
