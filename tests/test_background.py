"""What the agent's commands leave running in the background (``&``, ``nohup``, ``setsid``) is
found at exit and stopped, or kept with ``--keep-background`` and listed (issue 18)."""

from __future__ import annotations

import json
import os
import signal
import time

from tests.fakes import Call, Text, ToolCalls
from tests.test_headless_cli import run, server_env


def running(marker: str) -> list[int]:
    found = []
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode()
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[-1].split()[0]
        except OSError:
            continue
        if marker in cmd and state != b"Z":
            found.append(pid)
    return found


def detach_call(seconds: str) -> ToolCalls:
    command = (f"sleep {seconds}1 & nohup sleep {seconds}2 > /dev/null 2>&1 & "
               f"setsid sleep {seconds}3 > /dev/null 2>&1 & echo started")
    return ToolCalls([Call("b1", "bash", json.dumps({"command": command}))])


def test_headless_stops_what_the_agent_left_running(llm_server, mlintern_home):
    llm_server.script(detach_call("97"), Text("Started three."))
    proc = run(["-p", "start them", "-m", "openai/scripted-model", "--yolo"], mlintern_home, server_env(llm_server))
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 0.3  # gone within the same 0.3 s as before, checked every 20 ms
    while running("sleep 97") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running("sleep 97") == []
    assert "Stopped 3 process(es) the agent left running in the background" in proc.stderr
    assert "sleep 973" in proc.stderr  # the setsid one too


async def test_keep_background_leaves_them_running(llm_server, monkeypatch, tmp_path):
    """In process (the headless flag only sets ``keep_background``): kept, and listed."""
    import asyncio

    from agent.protocol import Shutdown, UserInput
    from tests.engine_support import collect_until, make_session, of_type

    llm_server.script(detach_call("96"), Text("Started three."))
    s = make_session(llm_server, monkeypatch, tmp_path)
    s.keep_background = True
    sub = s.subscribe("t")
    s.start()
    s.submit(UserInput(text="start them"))
    await collect_until(sub)
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 20)
    try:
        logs = [e.log for e in of_type([sub.get_nowait() for _ in range(sub.queue.qsize())], "tool_log")]
        assert len(running("sleep 96")) == 3
        assert any("Left running in the background as asked" in line for line in logs)
    finally:
        for pid in running("sleep 96"):
            os.kill(pid, signal.SIGKILL)
