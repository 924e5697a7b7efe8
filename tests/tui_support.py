"""Building the app for Pilot and snapshot tests: fixed size, no cursor blink, events fed
straight into the bridge (snapshots) or a real Session on the loopback model (Pilot)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable

from agent.config import Config
from agent.protocol import Event
from mlintern_tui.app import MLInternApp
from mlintern_tui.screens.approval import ApprovalScreen
from widgets.prompt import PromptArea


#: the grace period of approval and doom-loop cards in tests that only answer a card after it
#: (set on ``app.approval_grace_s`` by their start helpers): still a real one, which the helpers
#: wait out through the card's own check, but short. The default (GRACE_S, 0.4 s) is what the
#: tests of the grace period itself use or set: tests/test_tui_pilot.py's
#: test_keys_inside_the_grace_period_are_ignored, tests/test_tui_approval_modes.py's
#: test_always_keys_respect_the_grace_period and tests/test_tui_permission_change.py.
TEST_GRACE_S = 0.05


class AppUnderTest(MLInternApp):
    """The real app, minus the things that make screenshots differ run to run."""

    def __init__(self, *, theme: str | None = None, **kwargs):
        kwargs.setdefault("config", Config(theme=theme))
        kwargs.setdefault("start_engine", False)
        super().__init__(**kwargs)

    def on_mount(self) -> None:
        # no super().on_mount(): Textual runs the handler of every class in the MRO, so the
        # app's own on_mount runs after this one anyway (calling it here ran it twice)
        self.query_one(PromptArea).cursor_blink = False


async def feed(app: MLInternApp, *events: Event) -> None:
    for n, event in enumerate(events, 1):
        event.seq = n
        await app.bridge.handle(event)
    await app.bridge.flush_text()
    app.bridge.flush_logs()


def record_ops(monkeypatch, session, held: tuple[type, ...] = ()) -> list:
    """Every op the app submits, recorded; ops of the ``held`` types stop here (the test answers
    them itself), the rest reach the session."""
    sent: list = []
    submit = session.submit

    def recording(op):
        sent.append(op)
        if not isinstance(op, held):
            submit(op)

    monkeypatch.setattr(session, "submit", recording)
    return sent


async def type_keys(pilot, text: str, gap: float = 0.06, each: Callable[[int], object] | None = None) -> None:
    """Type ``text`` as a terminal delivers it: a thread of its own (the driver's, in the app)
    makes one key every ``gap`` seconds, stamped with the time it came, and posts it to the app,
    however busy the app's loop is (Pilot.press waits for the app to idle after each key, which
    a streaming turn never does). ``each(i)`` runs on the loop after the i-th key is posted.
    Returns once the app has handled every key: a callback queued behind them runs after the
    last one (a loaded machine can hold keys in the queue, and a key pressed next would then
    arrive in the same burst)."""
    import threading
    import time

    from textual import events

    app = pilot.app
    loop = asyncio.get_running_loop()
    posted = 0

    def count(i: int) -> None:
        nonlocal posted
        posted = i + 1
        if each is not None:
            each(i)

    def typist() -> None:
        for i, char in enumerate(text):
            app.post_message(events.Key("space" if char == " " else char, char))
            loop.call_soon_threadsafe(count, i)
            time.sleep(gap)

    thread = threading.Thread(target=typist, name="test-typist", daemon=True)
    thread.start()
    await wait_for(pilot, lambda: posted == len(text) and not thread.is_alive(), timeout=30 + gap * len(text),
                   what="the keys typed")
    handled: list[bool] = []
    app.call_later(handled.append, True)
    await wait_for(pilot, lambda: bool(handled), what="the typed keys handled")


async def press_at_once(pilot, *keys: str) -> None:
    """Press ``keys`` (named as for Pilot.press) as one burst, the way a terminal delivers keys
    read in one go, and return once the app and the screen's widgets have handled them. Pilot.press
    waits for the whole process to idle after every key (two 20 ms idle checks at least); here
    only the end is awaited. For keys whose handling starts nothing the next key must wait
    for (typing into an Input or the prompt): a key that opens a screen belongs in Pilot.press."""
    import unicodedata

    from textual import events
    from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

    app = pilot.app
    for key in keys:
        if len(key) == 1 and not key.isalnum():
            key = _character_to_key(key)
        original = REPLACED_KEYS.get(key, key)
        try:
            char = unicodedata.lookup(_get_unicode_name_from_key(original))
        except KeyError:
            char = key if len(key) == 1 else None
        app.post_message(events.Key(key, char))
    handled: list[bool] = []
    app.call_later(handled.append, True)
    await wait_for(pilot, lambda: bool(handled), what="the keys handled by the app")
    await pilot.pause()  # and by the widget they were forwarded to


async def wait_for(pilot, condition, timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def palette_highlights(pilot, usage_start: str, timeout: float = 10.0) -> None:
    """After typing into the command palette (ctrl+p): wait until its highlighted entry is the
    command whose usage starts with ``usage_start``, the one enter then runs (rather than a
    fixed pause for the palette's search)."""
    from textual.command import CommandList, CommandPalette

    def highlighted() -> bool:
        palette = pilot.app.screen
        if not isinstance(palette, CommandPalette):
            return False
        commands = palette.query_one(CommandList)
        index = commands.highlighted
        if index is None or index >= commands.option_count:
            return False
        hit = getattr(commands.get_option_at_index(index), "hit", None)
        return hit is not None and str(hit.text).startswith(usage_start)

    await wait_for(pilot, highlighted, timeout, what=f"the palette to highlight {usage_start}")


def approval_screen(app: MLInternApp) -> ApprovalScreen | None:
    screen = app.screen
    return screen if isinstance(screen, ApprovalScreen) else None


def cwd_for(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return work


class TerminalRecorder:
    """What the terminal shows: replays every update the app sends to its driver onto a
    grid of characters, so a test can compare it with a fresh render of the widgets. A
    frame the app forgets to repaint shows up as a difference."""

    def __init__(self, app: MLInternApp, width: int, height: int):
        from rich.console import Console

        self.rows = [[" "] * width for _ in range(height)]
        self._console = Console(width=width, height=height, file=None, force_terminal=True, color_system=None)
        self._original = app._display
        self.frames = 0
        app._display = self._display

    def _display(self, screen, renderable) -> None:
        from rich.cells import cell_len
        from rich.segment import ControlType

        if renderable is not None:
            self.frames += 1
            x = y = 0
            for segment in self._console.render(renderable):
                if segment.control:
                    for code in segment.control:
                        if code[0] == ControlType.CURSOR_MOVE_TO:
                            x, y = code[1], code[2]
                    continue
                if segment.text == "\n":
                    continue
                for char in segment.text:
                    if 0 <= y < len(self.rows) and 0 <= x < len(self.rows[y]):
                        self.rows[y][x] = char
                    x += cell_len(char)
        return self._original(screen, renderable)

    def text(self) -> list[str]:
        return ["".join(row).rstrip() for row in self.rows]


def rendered_text(app: MLInternApp) -> list[str]:
    """A fresh render of the whole screen from the widgets' current state: every widget's
    cached lines are dropped first (without scheduling a repaint, which would hide a
    missing one from the next comparison)."""
    for widget in app.screen.walk_children(with_self=True):
        widget._styles_cache.clear()
    return [strip.text.rstrip() for strip in app.screen._compositor.render_strips()]
