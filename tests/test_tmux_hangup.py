"""A terminal that disappears mid-stream (the tmux server is killed): the installed app must
exit by itself (after stopping what it started, see mlintern_tui/hangup.py), not linger
with a dead pty burning CPU."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from mlintern_tui.hangup import EXIT_CODE, GRACE_S
from tests.fakes.openai_server import Text

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def app_env(llm_server, mlintern_home) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "HF_TOKEN"}
    env.update({"MLINTERN_HOME": str(mlintern_home), "TERM": "xterm-256color",
                "OPENAI_BASE_URL": llm_server.base_url, "OPENAI_API_KEY": "sk-test"})
    return env


def ready_pane(socket: str, deadline: float) -> int:
    """The pane's process, once the status bar names the model without "(loading)"."""
    pane_pid = int(subprocess.run([TMUX, "-L", socket, "display-message", "-p", "-t", "s", "#{pane_pid}"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    while "(loading)" in (screen := subprocess.run([TMUX, "-L", socket, "capture-pane", "-p", "-t", "s"],
                                                    capture_output=True, text=True).stdout) \
            or "scripted-model" not in screen:
        assert time.monotonic() < deadline, screen
        time.sleep(0.1)
    return pane_pid


def test_the_app_exits_when_the_terminal_is_killed_mid_stream(llm_server, mlintern_home, tmp_path):
    llm_server.script(Text("streaming " * 3000, chunk_chars=8, delay=0.01))
    exe = Path(sys.executable).parent / "mlintern"
    socket = f"mlintern-hup-{uuid.uuid4().hex[:8]}"
    command = f"cd {tmp_path} && exec {exe} -m openai/scripted-model --yolo"
    subprocess.run([TMUX, "-L", socket, "new-session", "-d", "-s", "s", "-x", "120", "-y", "36", command],
                   env=app_env(llm_server, mlintern_home), check=True)
    try:
        deadline = time.monotonic() + 60
        pane_pid = ready_pane(socket, deadline)
        subprocess.run([TMUX, "-L", socket, "send-keys", "-t", "s", "-l", "go"], check=True)
        subprocess.run([TMUX, "-L", socket, "send-keys", "-t", "s", "Enter"], check=True)
        while "streaming streaming" not in subprocess.run([TMUX, "-L", socket, "capture-pane", "-p", "-t", "s"],
                                                          capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline, "the answer never started streaming"
            time.sleep(0.1)
    finally:
        subprocess.run([TMUX, "-L", socket, "kill-server"], capture_output=True)
    deadline = time.monotonic() + GRACE_S + 5
    while not gone(pane_pid):
        assert time.monotonic() < deadline, f"the app (pid {pane_pid}) is still running after its terminal was killed"
        time.sleep(0.2)
    assert EXIT_CODE == 129


def test_a_closed_terminal_ends_the_app_at_once_not_by_its_watchdog(llm_server, mlintern_home, tmp_path):
    """A hangup is followed by SIGCONT; Textual's driver resumed on it and started a second
    input thread, which the quit then waited for until the watchdog ended the process (9 s,
    in half of the launches). Five launches, each must be gone well before the watchdog."""
    exe = Path(sys.executable).parent / "mlintern"
    env = app_env(llm_server, mlintern_home)
    for attempt in range(5):
        socket = f"mlintern-hup-{uuid.uuid4().hex[:8]}"
        subprocess.run([TMUX, "-L", socket, "new-session", "-d", "-s", "s", "-x", "120", "-y", "36",
                        f"cd {tmp_path} && exec {exe} -m openai/scripted-model"], env=env, check=True)
        # as the peers harness has it: focus reports on, the pane's window never in view
        subprocess.run([TMUX, "-L", socket, "set-option", "-g", "focus-events", "on"], check=True)
        try:
            pane_pid = ready_pane(socket, time.monotonic() + 60)
            time.sleep(0.3)  # settled: the focus report answered, the session started
            subprocess.run([TMUX, "-L", socket, "kill-session", "-t", "s"], check=True)
            closed = time.monotonic()
            time.sleep(0.3)
            if not gone(pane_pid):
                os.kill(pane_pid, signal.SIGTERM)  # and then a kill, as the harness sends
        finally:
            subprocess.run([TMUX, "-L", socket, "kill-server"], capture_output=True)
        while not gone(pane_pid):
            assert time.monotonic() - closed < 3.0, f"launch {attempt + 1}: still running 3 s after its terminal closed"
            time.sleep(0.05)
