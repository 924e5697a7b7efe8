"""The last start's first frame, on screen before Textual is imported.

Importing Python, asyncio and Textual and laying out the first screen takes ~0.3 s; only then
does Textual draw. When nothing the first frame shows can have changed since the last start
(the same config file and everything its settings depend on, the same command line, working
directory, terminal size and terminal type, the same code), that frame is known already: the
app kept it, byte for byte as Textual wrote it. A start draws it at once (~50 ms in), and
Textual's own first frame then writes the same cells again.

The screen is live from then on:
- the terminal is in non-canonical, no-echo mode, so keys wait in the terminal's buffer for
  the app instead of being echoed over the frame;
- a thread reads them meanwhile, and while they are printable characters that fit on the
  prompt's first row it draws them into the prompt, in the prompt's own styles;
- when Textual's driver starts (``SteadyDriver``), it takes the keys read so far and feeds
  them to its parser before anything else: the prompt then holds what was typed, and an enter
  pressed early sends it.

Ctrl+C in that moment still interrupts the start (SIGINT stays on until Textual takes the
terminal), and whatever stops the start puts the terminal back as it was (``Gap.close``).
The frame is kept again after every start whose first frame differs from the one kept, so a
frame shown from a stale record is corrected by Textual's own a moment later.

No Textual here: this runs before it is imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FRAME_FILE = "first-frame-screen.json"
#: bumped when what is kept changes its form
VERSION = "1"
#: what the terminal's type and colours depend on: a frame kept under others is not drawn
TERMINAL_ENV = ("TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "COLORFGBG", "TERM_PROGRAM",
                "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR", "CLICOLOR_FORCE", "LANG", "LC_ALL", "LC_CTYPE")
#: the code that draws the frame (the agent package is in the config key already)
ROOT = Path(__file__).resolve().parent.parent
FRONT_END = ("mlintern_tui", "widgets", "themes")
#: the alternate screen, no cursor, and pastes bracketed (a pasted newline stays text): as
#: Textual's start writes them (the driver then leaves out its own alternate-screen switch,
#: which some terminals answer by clearing the screen)
ENTER_SCREEN = b"\x1b[?1049h\x1b[?25l\x1b[?2004h"
LEAVE_SCREEN = b"\x1b[?2004l\x1b[?1049l\x1b[?25h"


#: what Textual's frames are made of (cursor moves, colours, the synchronized-update mode): a
#: kept frame with anything else in it (a title, the clipboard, a hyperlink, a device query, a
#: bare control character) is not what the app wrote, and is not drawn
_FRAME_TEXT = re.compile(r"(?:[^\x00-\x1f\x7f-\x9f\ud800-\udfff]|[\r\n]|\x1b\[[0-9;:]*[mH]|\x1b\[\?2026[hl])*")


def drawable(text: str) -> bool:
    return _FRAME_TEXT.fullmatch(text) is not None


@dataclass(frozen=True)
class Slot:
    """Where typed characters go in the kept frame: the prompt's first row, from (x, y), and
    the bytes that draw text, the cursor cell and the rest of the row in its styles."""

    x: int
    y: int
    width: int
    text_on: str
    text_off: str
    cursor: str
    blank_on: str
    blank_off: str

    def row(self, text: str) -> bytes:
        rest = self.width - len(text) - 1
        return (f"\x1b7\x1b[{self.y + 1};{self.x + 1}H{self.text_on}{text}{self.text_off}{self.cursor}"
                f"{self.blank_on}{' ' * rest}{self.blank_off}\x1b8").encode()


def _cache_path() -> Path:
    from agent.config import data_dir

    return data_dir() / "cache" / FRAME_FILE


#: variables that hold a credential: which of them are set can choose the model (the first
#: provider with a key); their values are never part of the key
_SECRET = ("_API_KEY", "_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
#: variables whose values can change what the first frame shows: the app's and Textual's own,
#: and where a provider is (a local server's model list, a router)
_SETTING_PREFIX = ("MLINTERN_", "TEXTUAL")
_SETTING_SUFFIX = ("_BASE_URL", "_API_BASE", "_ENDPOINT", "_HOST")


def _settings_env() -> list[str]:
    parts = []
    for name, value in sorted(os.environ.items()):
        upper = name.upper()
        if upper.endswith(_SECRET):
            parts.append(f"{name} is set")
        elif (upper.startswith(_SETTING_PREFIX) or upper.endswith(_SETTING_SUFFIX)) and not upper.startswith("MLINTERN_TEST_"):
            parts.append(f"{name}={value}")
    return parts


def start_key(argv: list[str], size: tuple[int, int]) -> str | None:
    """What a kept frame is valid for: this config (agent.config.config_key: its text, the
    variables it names, --budget, the agent package, the permission record), the command line,
    the working directory, the terminal's size and type, which credentials are set, the app's
    own variables and providers' addresses, and the code that draws. None when the config file
    cannot be read (the broken-config dialog is the first thing then)."""
    from agent.config import config_key
    from agent.tools.lazy import library_stamp, tree_stamp

    config = config_key()
    if config is None:
        return None
    digest = hashlib.sha256()
    for part in (VERSION, config, json.dumps(argv), os.getcwd(), f"{size[0]}x{size[1]}", sys.version,
                 *(f"{name}={os.environ.get(name, chr(0))}" for name in TERMINAL_ENV), *_settings_env(),
                 library_stamp("textual"), library_stamp("rich")):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    for package in FRONT_END:
        tree_stamp(ROOT / package, digest)
    return digest.hexdigest()


def _read(key: str, size: tuple[int, int]) -> tuple[str, Slot | None] | None:
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key or not isinstance(data.get("frame"), str):
        return None
    if not drawable(data["frame"]):
        return None
    slot = None
    raw = data.get("slot")
    if isinstance(raw, dict):
        try:
            slot = Slot(**raw)
        except TypeError:
            slot = None
        else:
            styles = (slot.text_on, slot.text_off, slot.cursor, slot.blank_on, slot.blank_off)
            if not (all(type(n) is int for n in (slot.x, slot.y, slot.width))
                    and 0 <= slot.x and 0 < slot.width and slot.x + slot.width <= size[0] and 0 <= slot.y < size[1]
                    and all(isinstance(style, str) and drawable(style) for style in styles)):
                slot = None
    return data["frame"], slot


def remember(key: str, frame: str, slot: Slot | None) -> bool:
    """Keep this start's first frame for the next start with the same key (mode 0600, written
    in one step); True when it was kept or already was."""
    from dataclasses import asdict

    from agent.cache_files import read_json, write_json

    record = {"key": key, "frame": frame, "slot": None if slot is None else asdict(slot)}
    path = _cache_path()
    if read_json(path) == record:
        return True
    return write_json(path, record)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Gap:
    """The kept frame on screen, and the keys typed into it until the driver takes them."""

    def __init__(self, fd_in: int, fd_out: int, attrs: list, slot: Slot | None) -> None:
        self.fd_in, self.fd_out = fd_in, fd_out
        #: the terminal's settings before this start: Textual restores these at exit
        self.attrs = attrs
        self.slot = slot
        self.typed = bytearray()
        self.text = ""  # what the prompt's row shows
        self.echoing = slot is not None
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._read_keys, name="instant-frame-keys", daemon=True)
        #: the driver reads from now on (or the start ended): not one more read here
        self._handed = False
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def catch_signals(self) -> None:
        """A hangup or a kill from now until the app's own handlers replace these (its mount):
        the terminal as it was, then the signal's own end. Ctrl+C raises KeyboardInterrupt
        and the start's ``finally`` closes the gap."""
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.restore_terminal()  # no lock, no join: the handler may run inside either
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def _signals_back(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                if signal.getsignal(sig) == self._on_signal:
                    signal.signal(sig, signal.SIG_DFL)
            except ValueError:  # not the main thread: left to the process's end
                pass

    def _read_keys(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd_in, self._stop_r], [], [])
            except (OSError, ValueError):
                return
            with self._lock:
                if self._handed or self._stop_r in ready:
                    return
                try:
                    data = os.read(self.fd_in, 4096)
                except OSError:
                    return
                if not data:
                    return
                self.typed += data
                row = self._echo(data)
            if row:  # outside the lock: a terminal slow to take it never holds the hand-over
                try:
                    _write_all(self.fd_out, row)
                except OSError:
                    self.echoing = False

    def _echo(self, data: bytes) -> bytes:
        """The prompt's row with these printable characters added, while they fit; anything
        else (an escape, an enter, a control key) ends the echo: the app shows the rest."""
        slot = self.slot
        if not self.echoing or slot is None:
            return b""
        text = self.text
        for byte in data:
            if 0x20 <= byte < 0x7F:
                text += chr(byte)
            elif byte in (0x7F, 0x08):
                text = text[:-1]
            else:
                self.echoing = False
                return b""
            if len(text) + 1 >= slot.width:
                self.echoing = False
                return b""
        self.text = text
        return slot.row(text)

    def hand_over(self) -> bytes:
        """Stop reading: the driver reads from now on. The keys read so far, for its parser.
        The signal handlers stay until the app's replace them (the driver's start changes the
        terminal before the app is mounted)."""
        with self._lock:
            self._handed = True
            typed = bytes(self.typed)
        self._stop()
        return typed

    def _stop(self) -> None:
        try:
            os.write(self._stop_w, b"!")
        except OSError:
            pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(1.0)
        if not self._thread.is_alive():  # a thread still in a write keeps its descriptors
            for fd in (self._stop_r, self._stop_w):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def restore_terminal(self) -> None:
        """The terminal's settings from before the frame, the main screen, the cursor."""
        import termios

        try:
            _write_all(self.fd_out, LEAVE_SCREEN)
        except OSError:
            pass
        try:
            termios.tcsetattr(self.fd_in, termios.TCSANOW, self.attrs)
        except (termios.error, OSError):
            pass

    def close(self) -> None:
        """The start ended before the driver took over: the terminal as it was, the frame gone."""
        if self._handed:
            self._signals_back()
            return
        with self._lock:
            self._handed = True
        self._stop()
        self._signals_back()
        self.restore_terminal()


@dataclass
class Start:
    """What this start knows about its first frame: its command line, the key a kept frame was
    looked up with (None: nothing is kept, e.g. not a terminal) and the kept frame's gap when
    one was drawn. The app keeps its own first frame under the key as it is once its session
    is built (the first start writes the permission record, which the key covers)."""

    argv: list[str]
    key: str | None
    gap: Gap | None = None


def show(argv: list[str], fd_in: int = 0, fd_out: int = 2) -> Start:
    """Draw the kept first frame if it is valid for this start; the key either way. Textual
    reads stdin and draws on stderr: both must be the terminal."""
    if os.environ.get("TEXTUAL_DRIVER") or not sys.platform.startswith(("linux", "darwin")):
        return Start(argv, None)  # another driver than ours would not take the keys over
    try:
        if not (os.isatty(fd_in) and os.isatty(fd_out)):
            return Start(argv, None)
        size = os.get_terminal_size(fd_out)
    except (OSError, ValueError):
        return Start(argv, None)
    key = start_key(argv, (size.columns, size.lines))
    if key is None:
        return Start(argv, None)
    kept = _read(key, (size.columns, size.lines))
    if kept is None:
        return Start(argv, key)
    frame, slot = kept
    import termios

    try:
        attrs = termios.tcgetattr(fd_in)
        raw = termios.tcgetattr(fd_in)
        raw[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN)  # lflag: keys wait, unechoed
        raw[0] &= ~(termios.IXON | termios.IXOFF | termios.ICRNL | termios.INLCR | termios.IGNCR)
        raw[6][termios.VMIN] = 1
        raw[6][termios.VTIME] = 0
        try:
            off = bytes((os.fpathconf(fd_in, "PC_VDISABLE") & 0xFF,))
        except (OSError, ValueError):
            off = b"\x00"
        for char in ("VSUSP", "VQUIT"):  # ctrl+z and ctrl+backslash are keys for the app (ctrl+c stops the start)
            if hasattr(termios, char):
                raw[6][getattr(termios, char)] = off
        termios.tcsetattr(fd_in, termios.TCSANOW, raw)
    except (termios.error, OSError):
        return Start(argv, key)
    gap = Gap(fd_in, fd_out, attrs, slot)
    try:
        gap.catch_signals()
        _write_all(fd_out, ENTER_SCREEN + frame.encode("utf-8"))
        gap.start()
    except OSError:
        gap.close()
        return Start(argv, key)
    except BaseException:  # ctrl+c while writing: the terminal as it was, then stop
        gap.close()
        raise
    return Start(argv, key, gap)
