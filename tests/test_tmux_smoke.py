"""The installed ``mlintern`` command in a real terminal (tmux): it starts, shows the panes,
takes a prompt, asks to approve the demo model's training job, shows the job's log while the
demo keeps checking on it, answers with the job's real numbers and quits with ctrl+q."""

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
    return subprocess.run([TMUX, "-L", session, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


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
    return subprocess.run([TMUX, "-L", session, "has-session", "-t", session], capture_output=True).returncode == 0


def send(session: str, *keys: str, literal: bool = False) -> None:
    subprocess.run([TMUX, "-L", session, "send-keys", "-t", session, *(["-l"] if literal else []), *keys], check=True)


def test_installed_command_in_tmux(mlintern_home, tmp_path):
    exe = Path(sys.executable).parent / "mlintern"
    assert exe.exists(), "the console script is not installed next to this Python"
    session = f"mlintern-test-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "HF_TOKEN"}
    # a short job (400 steps, a second or two, still 40 log lines) checked every second: the flow
    # of the default run, in less time
    # (the answer comes at the first check after the job ends; 30 checks leave the job as long as
    # 12 checks of 2 s did before the demo would hand it over still running)
    env.update({"MLINTERN_HOME": str(mlintern_home), "MLINTERN_DEMO_DELAY": "0", "TERM": "xterm-256color",
                "MLINTERN_DEMO_STEPS": "400", "MLINTERN_DEMO_POLL_S": "1", "MLINTERN_DEMO_MAX_POLLS": "30"})
    command = f"cd {tmp_path} && exec {exe}"
    # a private server (-L): a tmux server already running would give the app its own
    # environment instead of this one (MLINTERN_HOME would not reach the app)
    subprocess.run([TMUX, "-L", session, "new-session", "-d", "-s", session, "-x", "120", "-y", "36", command],
                   env=env, check=True)
    try:
        screen = wait_screen(session, lambda s: "demo (scripted" in s and "(loading)" not in s, 60, "the demo model to be ready")
        assert "Plan" in screen and "Output" in screen and "Ask the agent" in screen and "DEMO" in screen
        send(session, "Train a tiny classifier", literal=True)
        send(session, "Enter")
        screen = wait_screen(session, lambda s: "Approval 1 of 1 · hf_jobs" in s and "y approve" in s, 60,
                             "the approval card for the training job")
        assert "CPU job on cpu-basic" in screen and "confirm_cpu_jobs" in screen
        time.sleep(0.6)  # keys within the card's grace period are ignored on purpose
        send(session, "y")
        # the job's Trainer-style lines show while the demo is still working (it did not block)
        wait_screen(session, lambda s: "{'loss':" in s and "working…" in s, 60, "the job's log lines during the turn")
        screen = wait_screen(session, lambda s: "turn:" in s and "working…" not in s, 90, "the demo answer")
        assert "Plan 5/5 done" in screen and "Re-run it yourself" in screen
        logs = list((mlintern_home / "jobs").glob("*.log"))
        assert len(logs) == 1 and "'eval_accuracy'" in logs[0].read_text().splitlines()[-2]
        send(session, "C-q")
        deadline = time.monotonic() + 15
        while alive(session) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(session), "ctrl+q did not quit the app"
    finally:
        if alive(session):
            subprocess.run([TMUX, "-L", session, "kill-server"], capture_output=True)
