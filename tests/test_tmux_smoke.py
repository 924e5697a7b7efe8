"""The installed ``mlintern`` command in a real terminal (tmux): it starts, shows the panes,
takes a prompt, answers on the demo model and quits with ctrl+q."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


def capture(session: str) -> str:
    return subprocess.run([TMUX, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def wait_screen(session: str, predicate, timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = capture(session)
        if predicate(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; screen was:\n{screen}")


def alive(session: str) -> bool:
    return subprocess.run([TMUX, "has-session", "-t", session], capture_output=True).returncode == 0


def test_installed_command_in_tmux(mlintern_home, tmp_path):
    exe = Path(sys.executable).parent / "mlintern"
    assert exe.exists(), "the console script is not installed next to this Python"
    session = f"mlintern-test-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "HF_TOKEN"}
    env.update({"MLINTERN_HOME": str(mlintern_home), "MLINTERN_DEMO_DELAY": "0", "TERM": "xterm-256color"})
    command = f"cd {tmp_path} && exec {exe}"
    subprocess.run([TMUX, "new-session", "-d", "-s", session, "-x", "120", "-y", "36", command], env=env, check=True)
    try:
        screen = wait_screen(session, lambda s: "demo (scripted" in s and "(loading)" not in s, 60, "the demo model to be ready")
        assert "Plan" in screen and "Output" in screen and "Ask the agent" in screen and "DEMO" in screen
        subprocess.run([TMUX, "send-keys", "-t", session, "-l", "Train a tiny classifier"], check=True)
        subprocess.run([TMUX, "send-keys", "-t", session, "Enter"], check=True)
        screen = wait_screen(session, lambda s: "turn:" in s and "working…" not in s, 90, "the demo answer")
        assert "Plan 5/5 done" in screen and "eval" in screen.lower()
        subprocess.run([TMUX, "send-keys", "-t", session, "C-q"], check=True)
        deadline = time.monotonic() + 15
        while alive(session) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(session), "ctrl+q did not quit the app"
    finally:
        if alive(session):
            subprocess.run([TMUX, "kill-session", "-t", session], capture_output=True)
