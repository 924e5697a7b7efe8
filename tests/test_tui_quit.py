"""Quitting the app while the agent's commands left processes running in the background (issue
18): a confirm lists them and asks to stop them or leave them running (and says that work meant
to outlive the app is what jobs are for); escape stays in the app. The processes are real, started
through the bash tool on the loopback model."""

from __future__ import annotations

import json
import os
import signal

from agent.process_tracker import Leftover
from mlintern_tui.screens.background_quit import BackgroundQuitScreen
from tests.fakes import Call, Text, ToolCalls
from tests.test_background import running
from tests.test_tui_pilot import send, start_app, until_idle
from tests.tui_support import AppUnderTest, rendered_text, wait_for

SIZE = (120, 36)


def question(app) -> BackgroundQuitScreen | None:
    return app.screen if isinstance(app.screen, BackgroundQuitScreen) else None


async def leave_one_running(pilot, app, llm_server, monkeypatch, tmp_path, seconds: str) -> list[int]:
    llm_server.script(ToolCalls([Call("b1", "bash", json.dumps({"command": f"sleep {seconds} & echo started"}))]),
                      Text("Started it in the background."))
    await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="yolo")
    await send(pilot, "start a sleeper")
    await until_idle(pilot, app)
    pids = running(f"sleep {seconds}")
    assert len(pids) == 1
    await pilot.press("ctrl+q")
    await wait_for(pilot, lambda: question(app) is not None, what="the question about background processes")
    shown = "\n".join(rendered_text(app))
    assert "left 1 process running in the background" in shown and f"{pids[0]:>8}  sleep {seconds}" in shown
    assert "what jobs are for (hf_jobs)" in shown
    return pids


async def test_s_stops_them_and_quits(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        await leave_one_running(pilot, app, llm_server, monkeypatch, tmp_path, "2917")
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit", timeout=15)
    assert running("sleep 2917") == []


async def test_l_leaves_them_running_and_quits(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    try:
        async with app.run_test(size=SIZE) as pilot:
            pids = await leave_one_running(pilot, app, llm_server, monkeypatch, tmp_path, "2918")
            await pilot.press("l")
            await wait_for(pilot, lambda: not app.is_running, what="the app to exit", timeout=15)
        assert running("sleep 2918") == pids
    finally:
        for pid in running("sleep 2918"):
            os.kill(pid, signal.SIGKILL)


async def test_escape_stays_in_the_app(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        pids = await leave_one_running(pilot, app, llm_server, monkeypatch, tmp_path, "2919")
        await pilot.press("escape")
        await wait_for(pilot, lambda: question(app) is None, what="the question to close")
        await pilot.pause(0.3)
        assert app.is_running and app.session is not None and not app.session._runner.done()
        assert running("sleep 2919") == pids
        await pilot.press("ctrl+q")  # asked again, and stopped this time
        await wait_for(pilot, lambda: question(app) is not None, what="the question again")
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit", timeout=15)
    assert running("sleep 2919") == []


async def test_nothing_left_running_quits_without_asking(llm_server, monkeypatch, tmp_path):
    llm_server.script(Text("Nothing to start."))
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "hello")
        await until_idle(pilot, app)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit", timeout=15)


def test_snapshot_background_quit(snap_compare):
    """The question over the app: how many processes the agent's commands left running, each
    with its pid and command line, that jobs are what work meant to outlive the app is for, and
    the keys: s stop them and quit, l leave them running and quit, esc back to the app."""
    left = [Leftover(41234, "sleep 300"), Leftover(41240, "python train.py --epochs 30 --out runs/exp-7"),
            Leftover(41301, "tensorboard --logdir runs --port 6006")]

    async def run_before(pilot) -> None:
        pilot.app.push_screen(BackgroundQuitScreen(left))
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)
