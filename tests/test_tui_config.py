"""The config file in the app (issue 19): a broken one blocks the start with a screen that
says what is wrong and offers to open it in $EDITOR, retry after fixing it, start without it
for this run, or quit; nothing is written to the config without a user action (not even the
theme on a first start)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from agent.config import Config
from mlintern_tui.screens.broken_config import BrokenConfigScreen
from tests.tui_support import AppUnderTest, wait_for
from themes import DEFAULT_THEME, THEMES
from widgets.conversation import Notice

SIZE = (120, 36)
BROKEN = '{\n  "approval_mode": "ask",\n  "approval_rules": [{"action": "deny", "tool": "bash" "pattern": "rm -rf*"}]\n}\n'
FIXED = '{\n  "approval_mode": "ask",\n  "theme": "%s"\n}\n'


def other_theme() -> str:
    return next(t.name for t in THEMES if t.name != DEFAULT_THEME)


@pytest.fixture
def broken_config(tmp_path, monkeypatch) -> Path:
    """A config file with a missing comma on line 3, named by a relative path (so the screen
    shows the same text on every machine)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLINTERN_CONFIG", "config.json")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    path = tmp_path / "config.json"
    path.write_text(BROKEN)
    return path


def broken_screen(app) -> BrokenConfigScreen | None:
    return app.screen if isinstance(app.screen, BrokenConfigScreen) else None


def text_of(screen: BrokenConfigScreen) -> str:
    return "\n".join(str(s.render()) for s in screen.query("Static"))


async def test_a_broken_config_blocks_the_start_and_says_where(broken_config):
    app = AppUnderTest(config=None, start_engine=True, model="demo")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: broken_screen(app) is not None, what="the broken-config screen")
        shown = text_of(broken_screen(app))
        assert "config file config.json is not valid JSON (line 3, column 56" in shown
        assert '"tool": "bash" "pattern"' in shown and "^" in shown  # the line itself, a caret under the column
        assert "start without it" in shown and "retry" in shown and "$EDITOR" in shown
        await pilot.pause(0.5)
        assert app.session is None  # nothing started on defaults behind the user's back
        await pilot.press("enter", "escape", "y")  # keys meant for something else do not pass it
        assert broken_screen(app) is not None and app.session is None
    assert broken_config.read_text() == BROKEN


async def test_retry_after_fixing_it_starts_with_the_fixed_file(broken_config):
    app = AppUnderTest(config=None, start_engine=True, model="demo")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: broken_screen(app) is not None, what="the broken-config screen")
        await pilot.press("r")  # still broken: it says so and stays
        screen = broken_screen(app)
        assert screen is not None and "Checked again (1×): the file still cannot be used." in text_of(screen)
        broken_config.write_text('{"approval_mode": "ask", "yolo_cap_usd": [}')
        await pilot.press("r")
        assert "line 1, column 43" in text_of(broken_screen(app))  # the new error, not the old one
        broken_config.write_text(FIXED % other_theme())
        await pilot.press("r")
        await wait_for(pilot, lambda: broken_screen(app) is None, what="the screen to close")
        assert app.config_error is None and app.config.approval_mode == "ask"
        assert app.theme == other_theme() and app.status_info.mode == "ask"
        # the status names a model that needs no loading ready at once; the session is built just after
        await wait_for(pilot, lambda: app.status_info.model_ready and app.session is not None,
                       what="the engine, started now", timeout=60)
        assert app.session.policy.mode == "ask"
    assert broken_config.read_text() == FIXED % other_theme()


async def test_start_without_it_is_explicit_and_writes_nothing(broken_config):
    app = AppUnderTest(config=None)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: broken_screen(app) is not None, what="the broken-config screen")
        await pilot.press("s")
        await wait_for(pilot, lambda: broken_screen(app) is None, what="the screen to close")
        notices = [str(n.render()) for n in app.conversation.query(Notice)]
        assert any("Started without config.json for this run: built-in defaults" in n for n in notices), notices
        assert app.config == Config()
        app.theme = other_theme()  # a user's choice, normally saved: not into a file this run could not read
        await pilot.pause()
    assert broken_config.read_text() == BROKEN


async def test_q_quits_and_e_without_an_editor_says_what_to_do(broken_config):
    app = AppUnderTest(config=None)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: broken_screen(app) is not None, what="the broken-config screen")
        await pilot.press("e")
        assert "No editor is set ($VISUAL or $EDITOR): edit config.json in another terminal, then press r." \
            in text_of(broken_screen(app))
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
    assert broken_config.read_text() == BROKEN


async def test_e_on_a_terminal_that_cannot_hand_over_says_where_the_file_is(broken_config, monkeypatch):
    monkeypatch.setenv("EDITOR", "vi")
    app = AppUnderTest(config=None)
    async with app.run_test(size=SIZE) as pilot:  # the test driver cannot suspend the app
        await wait_for(pilot, lambda: broken_screen(app) is not None, what="the broken-config screen")
        assert "open it in vi" in text_of(broken_screen(app))
        await pilot.press("e")
        assert "cannot hand over to an editor: edit config.json in another terminal" in text_of(broken_screen(app))


def test_snapshot_broken_config(snap_compare, broken_config):
    """The broken-config screen over the app: the reason with the path and position, line 3 of
    the file with a caret under the missing comma, what the file holds and that nothing started,
    and the keys: e open it (no editor set), r retry, s start without it for this run, q quit."""
    assert snap_compare(AppUnderTest(config=None), terminal_size=SIZE)


async def test_a_first_start_writes_no_config(mlintern_home):
    """No config file: the app starts on the default theme and writes nothing; the user's own
    pick of a theme (command palette) is saved."""
    path = mlintern_home / "config.json"
    app = AppUnderTest(config=None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        assert app.theme == DEFAULT_THEME
        assert not path.exists() and not path.with_name("config.json.lock").exists()
        app.theme = other_theme()
        await pilot.pause()
    assert json.loads(path.read_text()) == {"theme": other_theme()}


async def test_a_config_naming_a_theme_is_not_rewritten(mlintern_home):
    path = mlintern_home / "config.json"
    text = '{"theme": "no-such-theme"}'
    path.write_text(text)
    app = AppUnderTest(config=None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        assert app.theme == DEFAULT_THEME  # an unknown name falls back, and the file keeps what the user wrote
    assert path.read_text() == text


TMUX = shutil.which("tmux")


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_in_tmux_e_opens_the_editor_and_the_app_starts_with_the_fixed_file(mlintern_home, tmp_path):
    """The installed app on a broken config: ``e`` hands the terminal to $EDITOR (here a
    script that fixes the file), and once it exits the app checks the file again and starts."""
    from tests.test_headless_cli import mlintern_cmd
    from tests.test_tmux_smoke import alive, send, wait_screen

    config = mlintern_home / "config.json"
    config.write_text(BROKEN)
    editor = tmp_path / "fix-config"
    editor.write_text(f"#!/bin/sh\necho 'editing' \"$1\"\nsleep 0.5\nprintf '%s' '{json.dumps({'approval_mode': 'ask'})}' > \"$1\"\n")
    editor.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k not in ("HF_TOKEN", "VISUAL")}
    env.update({"MLINTERN_HOME": str(mlintern_home), "TERM": "xterm-256color", "EDITOR": str(editor),
                "MLINTERN_DEMO_DELAY": "0"})
    exe = Path(mlintern_cmd()[0])
    session = f"mlintern-cfg-{uuid.uuid4().hex[:8]}"
    subprocess.run([TMUX, "-L", session, "-f", "/dev/null", "new-session", "-d", "-s", session, "-x", "120", "-y", "36",
                    f"cd {tmp_path} && exec {exe} -m demo"], env=env, check=True)
    try:
        wait_screen(session, lambda s: "The config file cannot be used" in s and "line 3, column 56" in s, 60,
                    "the broken-config screen")
        send(session, "e")
        wait_screen(session, lambda s: "demo (scripted" in s and "(loading)" not in s and "mode ask" in s, 60,
                    "the app, started with the fixed file")
        assert json.loads(config.read_text()) == {"approval_mode": "ask"}
        send(session, "C-q")
        deadline = time.monotonic() + 15
        while alive(session) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(session)
    finally:
        if alive(session):
            subprocess.run([TMUX, "-L", session, "kill-server"], capture_output=True)
