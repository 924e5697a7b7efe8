"""Local echo (mlintern_tui/local_echo.py) in a real terminal: a key typed while the UI loop
is busy shows at once, in the prompt's place and colours, and stays right once the loop
catches up; a key drawn early that the prompt then does not take is wiped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

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


def styled_row(screen: str, text: str) -> str:
    return next(line for line in screen.splitlines() if text in line)


def test_a_key_drawn_early_that_the_prompt_does_not_take_is_wiped(echo_app):
    session, flag = echo_app
    send(session, "xy", literal=True)
    wait_screen(session, lambda s: prompt_row(s) == "xy", 10, "xy in the prompt")
    time.sleep(0.3)
    make_busy(flag, busy_s=1.0, blur=True)  # the focus leaves the prompt before the key is handled
    send(session, "z", literal=True)
    time.sleep(0.3)
    assert prompt_row(capture(session)) == "xyz"  # the guess
    wait_screen(session, lambda s: prompt_row(s) == "xy", 10, "the guess to be wiped")
    assert alive(session)
