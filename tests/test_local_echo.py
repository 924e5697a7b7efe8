"""Local echo (mlintern_tui/local_echo.py) in a real terminal: a key typed while the UI loop
is busy shows at once, in the prompt's place and colours, and stays right once the loop
catches up; a key drawn early that the prompt then does not take is wiped."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from textual import events

from tests.test_tmux_smoke import alive, capture, send, wait_screen

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
ROOT = Path(__file__).resolve().parents[1]


def prompt_row(screen: str) -> str:
    row = next((line for line in screen.splitlines() if line.startswith(" │ ") and "Ask the agent" not in line), "")
    return row[3:row.index("│", 3)].rstrip() if "│" in row[3:] else ""


def capture_styled(session: str) -> str:
    return subprocess.run([TMUX, "-L", session, "capture-pane", "-p", "-e", "-t", session],
                          capture_output=True, text=True).stdout


@pytest.fixture
def echo_app(mlintern_home, tmp_path):
    session = f"mlintern-echo-{uuid.uuid4().hex[:8]}"
    flag = tmp_path / "busy.json"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "HF_TOKEN"}
    env.update({"MLINTERN_HOME": str(mlintern_home), "TERM": "xterm-256color", "ECHO_TEST_FLAG": str(flag),
                "PYTHONPATH": str(ROOT)})
    command = f"cd {ROOT} && exec {sys.executable} -m tests.echo_app"
    subprocess.run([TMUX, "-L", session, "new-session", "-d", "-s", session, "-x", "120", "-y", "36", command],
                   env=env, check=True)
    try:
        wait_screen(session, lambda s: "Ask the agent" in s, 60, "the app to be ready")
        yield session, flag
    finally:
        subprocess.run([TMUX, "-L", session, "kill-server"], capture_output=True)


def make_busy(flag: Path, busy_s: float, blur: bool = False) -> None:
    busy = flag.with_suffix(".json.busy")
    busy.unlink(missing_ok=True)
    tmp = flag.with_suffix(".tmp")
    tmp.write_text(json.dumps({"busy_s": busy_s, "blur": blur}))
    tmp.rename(flag)
    deadline = time.monotonic() + 5
    while not busy.exists():
        assert time.monotonic() < deadline, "the app never started its busy spell"
        time.sleep(0.01)


def test_a_key_shows_while_the_loop_is_busy(echo_app):
    session, flag = echo_app
    send(session, "abc", literal=True)
    wait_screen(session, lambda s: prompt_row(s) == "abc", 10, "abc in the prompt")
    time.sleep(0.3)  # the frame with abc is out, and with it where the next key goes
    make_busy(flag, busy_s=1.0)
    send(session, "d", literal=True)
    time.sleep(0.3)
    screen = capture(session)
    assert prompt_row(screen) == "abcd", screen  # drawn while the loop sleeps
    during = styled_row(capture_styled(session), "abcd")
    time.sleep(1.2)  # the loop has woken, taken the key and drawn the prompt itself
    after = styled_row(capture_styled(session), "abcd")
    # the same cells in the same colours, the cursor one cell on: what the app draws itself
    assert during == after and "\x1b[" in during.split("abcd")[1]

    # a key read while one drawn early still waits for the loop is not guessed
    make_busy(flag, busy_s=1.0)
    send(session, "e", literal=True)
    time.sleep(0.1)
    send(session, "f", literal=True)
    time.sleep(0.3)
    assert prompt_row(capture(session)) == "abcde"
    wait_screen(session, lambda s: prompt_row(s) == "abcdef", 10, "the loop to catch up")


def test_the_first_key_of_a_message_shows_while_the_loop_is_busy(echo_app):
    """The empty prompt shows the placeholder: the first key typed clears its row, drawn in
    the colours of typed text the prompt showed before."""
    session, flag = echo_app
    send(session, "abc", literal=True)
    wait_screen(session, lambda s: prompt_row(s) == "abc", 10, "abc in the prompt")
    time.sleep(0.3)  # a frame with typed text: its colours are known from now on
    send(session, "C-u")
    wait_screen(session, lambda s: "Ask the agent" in s and prompt_row(s) == "", 10, "the empty prompt")
    time.sleep(0.3)
    make_busy(flag, busy_s=1.0)
    send(session, "q", literal=True)
    time.sleep(0.3)
    screen = capture(session)
    assert prompt_row(screen) == "q" and "Ask the agent" not in screen, screen  # drawn while the loop sleeps
    during = prompt_line(capture_styled(session))
    time.sleep(1.2)  # the loop has woken, taken the key and drawn the prompt itself
    after = prompt_line(capture_styled(session))
    # the same cells in the same colours (the placeholder's row cleared), the cursor one cell on
    assert during == after and during.count("q") == 1, (during, after)


def prompt_line(styled: str) -> str:
    """The prompt's first row, styles and all, from ``capture-pane -e``."""
    return next(line for line in styled.splitlines() if re.sub(r"\x1b\[[0-9;:]*m", "", line).startswith(" │ q"))


def styled_row(screen: str, text: str) -> str:
    return next(line for line in screen.splitlines() if text in line)


def test_a_key_drawn_early_that_the_prompt_does_not_take_is_wiped(echo_app):
    session, flag = echo_app
    send(session, "xy", literal=True)
    wait_screen(session, lambda s: prompt_row(s) == "xy", 10, "xy in the prompt")
    time.sleep(0.3)
    # the focus leaves the prompt before the key is handled: the prompt's border changes with
    # it, and that repaint (or, failing it, LocalEcho.check, tested on its own below) wipes the
    # guess
    make_busy(flag, busy_s=1.0, blur=True)
    send(session, "z", literal=True)
    time.sleep(0.3)
    assert prompt_row(capture(session)) == "xyz"  # the guess
    wait_screen(session, lambda s: prompt_row(s) == "xy", 10, "the guess to be wiped")
    assert alive(session)


# --------------------------------------------------------------------------- the loop's side


@contextmanager
def echo_for(app):
    """The app's LocalEcho, on a real SteadyDriver that never starts the terminal (the app
    itself runs headless): what the loop publishes and repairs, without a pty."""
    import signal

    from mlintern_tui.driver import SteadyDriver
    from mlintern_tui.local_echo import LocalEcho

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTSTP, signal.SIGCONT)}
    driver = SteadyDriver(app)  # sets SIGTSTP/SIGCONT handlers: put back below
    app._start_local_echo(driver)  # as on_ready does with the app's own driver
    echo = app._echo
    assert isinstance(echo, LocalEcho) and app.prompt.local_echo is echo and driver.echo_on
    try:
        yield echo, driver
    finally:
        app._echo = app.prompt.local_echo = None
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


async def test_a_slot_is_offered_only_where_the_prompt_is_sure(mlintern_home):
    from textual.widgets import Static

    from tests.tui_support import AppUnderTest

    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        with echo_for(app) as (echo, driver):
            prompt = app.prompt
            prompt.focus()
            await pilot.pause(0.1)
            echo.publish()
            # empty prompt, the placeholder drawn there: no typed text seen yet, so no colours
            # to draw one in
            assert driver.echo_slot is None
            await pilot.press(*"hello")
            await pilot.pause(0.1)
            echo.publish()
            slot = driver.echo_slot
            x, y = prompt.cursor_screen_offset
            assert slot is not None and (slot.x, slot.y, slot.inputs) == (x, y, driver.inputs_read)
            assert slot.before.startswith(b"\x1b7") and f"\x1b[{y + 1};{x + 1}H".encode() in slot.before
            assert slot.after.endswith(b"\x1b8") and b" " in slot.after  # the cursor cell one on

            typed = slot
            prompt.text = ""  # a message sent: the placeholder again, and the colours are known
            await pilot.pause(0.1)
            echo.publish()
            slot = driver.echo_slot
            content = prompt.content_region
            assert slot is not None and (slot.x, slot.y) == prompt.cursor_screen_offset == (content.x, content.y)
            # the row's rest is cleared: the placeholder does not show beside the first character
            assert slot.before == typed.before.replace(f"{y + 1};{x + 1}H".encode(), f"{y + 1};{content.x + 1}H".encode())
            assert slot.after.startswith(typed.after[:-2]) and b" " * (content.width - 2) in slot.after
            prompt.text = "hello"
            prompt.move_cursor(prompt.document.end)
            await pilot.pause(0.1)

            driver.unarrived[1] = 1  # a key read and not yet taken by the app
            echo.publish()
            assert driver.echo_slot is None
            driver.unarrived.clear()

            prompt.post_message(events.Key("x", "x"))  # taken by the app, waiting in the prompt
            echo.publish()
            assert driver.echo_slot is None
            await pilot.pause(0.1)
            assert prompt.text == "hellox"

            cover = Static("!", id="cover")  # something drawn over the cursor's cell
            cover.styles.layer = "overlay"
            cover.styles.offset = (x + 1, y)
            cover.styles.width = 3
            cover.styles.height = 1
            await app.screen.mount(cover)
            await pilot.pause(0.1)
            echo.publish()
            assert driver.echo_slot is None
            await cover.remove()
            await pilot.pause(0.1)

            prompt.text = "w" * (prompt.content_region.width - 2)  # no room for a character and the cursor
            prompt.move_cursor(prompt.document.end)
            await pilot.pause(0.1)
            echo.publish()
            assert driver.echo_slot is None
            prompt.text = "ok"
            prompt.move_cursor(prompt.document.end)
            await pilot.pause(0.1)
            echo.publish()
            assert driver.echo_slot is not None
            prompt.move_cursor((0, 1))  # the cursor not at the end: a key would go in between
            await pilot.pause(0.1)
            echo.publish()
            assert driver.echo_slot is None


async def test_the_slot_goes_when_the_focus_or_the_screen_changes(mlintern_home):
    from textual.screen import ModalScreen
    from textual.widgets import Static

    from tests.tui_support import AppUnderTest

    class Card(ModalScreen):
        def compose(self):
            yield Static("a card")

    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        app._start_local_echo()
        assert app._echo is None  # headless: no terminal, nothing drawn early
        with echo_for(app) as (echo, driver):
            await pilot.press(*"hi")
            await pilot.pause(0.1)
            echo.publish()
            assert driver.echo_slot is not None
            app.push_screen(Card())
            assert driver.echo_slot is None  # at once, before the card's first frame
            await pilot.pause(0.1)
            echo.publish()
            assert driver.echo_slot is None  # the card has the keys
            app.pop_screen()
            await pilot.pause(0.2)
            app.prompt.focus()
            await pilot.pause(0.1)
            echo.publish()
            assert driver.echo_slot is not None
            app.screen.set_focus(None)
            assert driver.echo_slot is None  # the focus left: withdrawn by the watcher, no frame yet


async def test_a_key_drawn_in_the_wrong_place_makes_the_screen_draw_again(mlintern_home):
    from tests.tui_support import AppUnderTest

    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        with echo_for(app) as (echo, driver):
            await pilot.press(*"ab")
            await pilot.pause(0.2)
            screen = app.screen
            x, y = app.prompt.cursor_screen_offset
            driver.echoed = (3, x - 1, y)  # where the prompt shows its last character: right
            echo.confirm()
            assert driver.echoed is None and not screen._repaint_required
            driver.echoed = (4, x + 5, y)  # elsewhere
            echo.confirm()
            assert driver.echoed is None and screen._repaint_required
            await pilot.pause(0.2)
            assert not screen._repaint_required
            # a key drawn early that no widget took: the check draws everything again
            driver.echoed = (5, x, y)
            echo.check(4)  # another key's check: not this one
            assert driver.echoed == (5, x, y) and not screen._repaint_required
            echo.check(5)
            assert driver.echoed is None and screen._repaint_required


async def test_an_error_inside_turns_local_echo_off_and_says_so(mlintern_home, monkeypatch):
    from mlintern_tui.local_echo import LocalEcho
    from tests.tui_support import AppUnderTest

    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        with echo_for(app) as (echo, driver):

            def broken(self):
                raise AttributeError("'Screen' object has no attribute '_compositor'")

            monkeypatch.setattr(LocalEcho, "_cell", broken)  # as a Textual upgrade could
            await pilot.press("a")  # frames go on: the error does not reach them
            await pilot.pause(0.2)
            assert app.prompt.text == "a"
            assert app._echo is None and app.prompt.local_echo is None and not driver.echo_on
            assert any("Local echo is off" in str(n.message) and "_compositor" in str(n.message)
                       for n in app._notifications)
