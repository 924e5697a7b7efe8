"""The Jobs pane inside the app: job events reach it through the bridge, the side column and
the jobs view show it, ctrl+g and escape move between it and the prompt, and cancelling asks
first, then stops the real local process.

Jobs that must really run (cancel) are local subprocesses started through the session's own
backend and monitor, or by the model through the hf_jobs tool; the rest are protocol events
fed into the bridge, the path the monitor's events take.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from agent.protocol import JobLog, JobUpdate, ToolCallEvent, ToolLog, ToolOutput
from mlintern_tui.screens.confirm import ConfirmScreen
from tests.engine_support import make_session
from tests.fakes import Call, Hang, Text, ToolCalls
from tests.tui_support import AppUnderTest, feed, palette_highlights, wait_for
from widgets.conversation import Notice
from widgets.jobs_table import JobsTable
from widgets.prompt import PromptArea
from widgets.receipt import CostReport
from widgets.status import StatusBar

ROOT = Path(__file__).resolve().parent.parent
HF_JOB = "6890f1a2b3c4d5e6f7a8b9c0"
LOCAL_JOB = "local-1a2b3c4d5e"


def trainer_lines(count: int, start: int = 0) -> list[str]:
    return [f"{{'loss': {2.0 - i * 0.01:.4f}, 'learning_rate': 2e-05, 'epoch': {i / 100:.2f}}}"
            for i in range(start, start + count)]


def notices(app, kind: str | None = None) -> list[str]:
    return [str(n.render()) for n in app.conversation.query(Notice) if kind is None or n.kind == kind]


def alive(pid: int) -> bool:
    """Running, not a zombie (a container's PID 1 may not reap orphans)."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def training_script(pid_file: Path) -> str:
    """Prints a falling loss until it is killed, after writing its pid where the test reads it."""
    return ("import os, time\n"
            f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
            "step = 0\n"
            "while True:\n"
            "    step += 1\n"
            "    print({'loss': round(2.0 / step ** 0.5, 4), 'step': step}, flush=True)\n"
            "    time.sleep(0.1)\n")


async def start_session(pilot, app, llm_server, monkeypatch, tmp_path, **kw):
    session = make_session(llm_server, monkeypatch, tmp_path, **kw)
    session.jobs.backend.uv = None  # plain `python -u`: no uv resolve inside a test
    app.attach_session(session)
    await wait_for(pilot, lambda: app.status_info.model_ready, what="engine ready")
    return session


async def launch(session, tmp_path: Path, name: str) -> tuple[str, Path]:
    """A real local job, followed by the session's monitor like one the agent launched."""
    from agent.jobs.base import JobSpec

    pid_file = tmp_path / f"{name}.pid"
    info = await session.jobs.backend.run(JobSpec(script=training_script(pid_file), timeout_s=120))
    session.jobs.monitor.watch(session.jobs.backend, info)
    return info.id, pid_file


def focused_on(app, kind) -> bool:
    return isinstance(app.focused, kind)


async def send(pilot, text: str) -> None:
    app = pilot.app
    app.prompt.text = text
    app.prompt.action_submit()
    await pilot.pause()


# ---------------------------------------------------------------------- events into the pane


async def test_job_events_fill_the_pane_the_tab_and_the_status_bar():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.side_tab == "output" and app.jobs_pane is None  # mounted with the first job
        lines = trainer_lines(150)
        await feed(app, JobUpdate(job_id=LOCAL_JOB, status="RUNNING", flavor="cpu-basic"),
                   JobLog(job_id=LOCAL_JOB, lines=lines[:100]), JobLog(job_id=LOCAL_JOB, lines=lines[100:]))
        await pilot.pause()
        pane = app.jobs_pane
        assert app.side_tab == "jobs" and pane.display and not app.tool_log.display  # a new job comes forward
        assert pane.job_ids == (LOCAL_JOB,) and pane.row(LOCAL_JOB).status == "RUNNING"
        assert pane.lines_of(LOCAL_JOB)[-1] == lines[-1] and pane.log_view.line_count == 150
        assert app.tool_log.lines_written == 0  # job lines go to the Jobs pane only
        assert pane.tracker_of(LOCAL_JOB).series("train")[-1][1] == 0.51
        assert app.status_info.running_jobs == pane.running_count == 1
        assert str(app.query_one("#tab-jobs").label) == "Jobs · 1 running"
        await feed(app, JobUpdate(job_id=LOCAL_JOB, status="COMPLETED", flavor="cpu-basic",
                                  detail="completed after 0m03s, $0.0000"))
        assert app.status_info.running_jobs == pane.running_count == 0
        assert str(app.query_one("#tab-jobs").label) == "Jobs"
        assert any("Job local-1a2b3c4d5e completed" in text for text in notices(app))


async def test_the_loss_curve_follows_the_log_in_the_jobs_view():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(app, JobUpdate(job_id=HF_JOB, status="RUNNING", flavor="a10g-large"),
                   JobLog(job_id=HF_JOB, lines=trainer_lines(100)))
        await pilot.press("ctrl+g")
        plot = app.jobs_pane.plot
        await wait_for(pilot, lambda: plot.display and len(plot.points) == 100, what="the curve")
        assert plot.points[-1][1] == 1.01
        await feed(app, JobLog(job_id=HF_JOB, lines=trainer_lines(50, start=100)))
        await wait_for(pilot, lambda: len(plot.points) == 150, what="the curve growing")
        assert plot.points[-1][1] == 0.51
        assert app.jobs_pane.row(HF_JOB).price_per_hour == 2.0  # the offline price table's a10g-large


async def test_job_lines_are_batched_per_job_and_written_at_the_flush():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)):
        await feed(app, JobUpdate(job_id=LOCAL_JOB, status="RUNNING", flavor="cpu-basic"),
                   JobUpdate(job_id=HF_JOB, status="RUNNING", flavor="a10g-large"))
        pane = app.jobs_pane
        for n in range(3):  # as the bus delivers them, without the 15 Hz timer in between
            await app.bridge.handle(JobLog(job_id=LOCAL_JOB, lines=[f"local {n}"]))
            await app.bridge.handle(JobLog(job_id=HF_JOB, lines=[f"hf {n}"]))
        assert pane.lines_of(LOCAL_JOB) == () and pane.lines_of(HF_JOB) == ()
        app.bridge.flush_logs()
        assert pane.lines_of(LOCAL_JOB) == ("local 0", "local 1", "local 2")
        assert pane.lines_of(HF_JOB) == ("hf 0", "hf 1", "hf 2")
        # a job's final status comes after its last lines, even between two timer ticks
        await app.bridge.handle(JobLog(job_id=LOCAL_JOB, lines=["done"]))
        await app.bridge.handle(JobUpdate(job_id=LOCAL_JOB, status="COMPLETED", flavor="cpu-basic"))
        assert pane.lines_of(LOCAL_JOB)[-1] == "done" and pane.row(LOCAL_JOB).last_line == "done"


async def test_a_hidden_pane_is_not_written_and_catches_up_when_shown():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(app, JobUpdate(job_id=LOCAL_JOB, status="RUNNING", flavor="cpu-basic"))
        pane = app.jobs_pane
        await pilot.click("#tab-output")
        await pilot.pause()
        assert app.side_tab == "output" and not pane.display
        assert isinstance(app.focused, PromptArea)  # a click on a tab leaves the prompt focused
        await feed(app, JobLog(job_id=LOCAL_JOB, lines=trainer_lines(300)))
        await pilot.pause()
        assert len(pane.lines_of(LOCAL_JOB)) == 300 and pane.log_view.line_count == 0
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: pane.log_view.line_count == 300, what="the log catching up")
        assert pane.log_view.lines[-1] == trainer_lines(300)[-1]


async def test_the_side_column_shows_what_is_live():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        call = lambda n: [ToolCallEvent(tool_call_id=f"t{n}", tool="bash", arguments={"command": "ls"}),  # noqa: E731
                          ToolLog(tool="bash", tool_call_id=f"t{n}", log="out"),
                          ToolOutput(tool_call_id=f"t{n}", tool="bash", output="out", success=True)]
        await feed(app, JobUpdate(job_id=LOCAL_JOB, status="RUNNING", flavor="cpu-basic"))
        assert app.side_tab == "jobs"
        await feed(app, *call(1))
        assert app.side_tab == "jobs"  # a job runs: it stays in front
        await feed(app, JobUpdate(job_id=LOCAL_JOB, status="COMPLETED", flavor="cpu-basic"), *call(2))
        assert app.side_tab == "output"  # nothing runs any more: tool output comes back
        await pilot.click("#tab-jobs")
        await feed(app, *call(3))
        assert app.side_tab == "jobs"  # the user chose it
        await pilot.pause()
        assert app.tool_log.display is False and app.jobs_pane.display


# ---------------------------------------------------------------------- keys and layout


async def test_ctrl_g_shows_the_jobs_view_and_returns_to_the_prompt():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(app, JobUpdate(job_id=LOCAL_JOB, status="RUNNING", flavor="cpu-basic"),
                   JobUpdate(job_id=HF_JOB, status="RUNNING", flavor="a10g-large"))
        assert isinstance(app.focused, PromptArea)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: focused_on(app, JobsTable), what="the table focused")
        assert app.jobs_view_active
        assert not app.query_one("#left").display and app.jobs_pane.size.width >= 100
        assert not app.jobs_pane.has_class("-compact")  # room for the loss plot
        await pilot.press("down")
        assert app.jobs_pane.selected == HF_JOB
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: focused_on(app, PromptArea), what="the prompt focused")
        assert not app.jobs_view_active and app.query_one("#left").display
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: focused_on(app, JobsTable), what="the table focused again")
        await pilot.press("escape")
        await wait_for(pilot, lambda: focused_on(app, PromptArea), what="the prompt focused again")
        assert not app.jobs_view_active
        assert app.side_tab == "jobs"  # the side column keeps showing the jobs


async def test_the_jobs_view_before_any_job_says_so():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app.jobs_view_active and focused_on(app, JobsTable), what="the jobs view")
        assert "No jobs yet" in app.jobs_pane.table.lines()[1].plain
        await pilot.press("c")  # nothing to cancel: the key is disabled
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: focused_on(app, PromptArea), what="the prompt focused")
        await send(pilot, "/jobs cancel x")
        await wait_for(pilot, lambda: any("No jobs in this session yet" in t for t in notices(app, "error")), what="no jobs")


def test_the_app_starts_without_loading_the_jobs_pane():
    """The pane, its table and the loss parser load with the first job, not before the first frame."""
    code = ("import sys, mlintern_tui.app; "
            "print([m for m in ('widgets.jobs_pane', 'widgets.jobs_table', 'agent.jobs.loss') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


async def test_resizing_keeps_the_jobs_view_and_its_lines():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(app, JobUpdate(job_id=LOCAL_JOB, status="RUNNING", flavor="cpu-basic"),
                   JobLog(job_id=LOCAL_JOB, lines=trainer_lines(80)))
        await pilot.press("ctrl+g")
        await pilot.pause()
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        pane = app.jobs_pane
        assert app.jobs_view_active and pane.display and pane.has_class("-compact")
        assert pane.log_view.line_count == 80 and "loss 1.21" in str(pane.query_one("#job-log-box").border_title)
        await pilot.press("escape")
        await wait_for(pilot, lambda: focused_on(app, PromptArea), what="the prompt focused")
        # narrow: back to the conversation, not to the side panes
        assert app.query_one("#left").display and not app.query_one("#side").display
        await pilot.resize_terminal(120, 36)
        await pilot.pause()
        assert app.query_one("#side").display and pane.display and pane.log_view.line_count == 80


async def test_escape_in_the_log_search_closes_it_and_does_not_interrupt(llm_server, monkeypatch, tmp_path):
    llm_server.script(Hang(after_text="Thinking about **it**", seconds=20))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        session = await start_session(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "explain")
        await wait_for(pilot, lambda: app.conversation.answer is not None and "Thinking" in app.conversation.answer.text,
                       what="streamed text")
        await feed(app, JobUpdate(job_id=LOCAL_JOB, status="RUNNING", flavor="cpu-basic"),
                   JobLog(job_id=LOCAL_JOB, lines=trainer_lines(40)))
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: focused_on(app, JobsTable), what="the table focused")
        pane = app.jobs_pane
        await pilot.press("slash")
        assert app.focused is pane.search_input
        await pilot.press(*"0.7")
        assert pane.log_view.pattern is not None
        await pilot.press("escape")
        await pilot.pause()
        assert not pane.has_class("-searching") and pane.log_view.pattern is None
        assert app.jobs_view_active and session.busy  # the search closed; nothing was interrupted
        await pilot.press("escape")
        await wait_for(pilot, lambda: focused_on(app, PromptArea), what="the prompt focused")
        assert not app.jobs_view_active and session.busy
        await pilot.press("escape")  # at the prompt escape interrupts, as before
        await wait_for(pilot, lambda: not session.busy and not app.status_info.busy, what="interrupted")
        assert notices(app, "interrupt")


async def test_help_lists_the_jobs_command_and_the_palette_runs_it():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await send(pilot, "/help")
        await wait_for(pilot, lambda: notices(app), what="help")
        text = notices(app)[-1]
        assert "/jobs [[cancel] id]" in text and "ctrl+g jobs view" in text
        await pilot.press("ctrl+p")
        await pilot.press(*"/jobs")
        await palette_highlights(pilot, "/jobs")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.jobs_view_active and isinstance(app.focused, JobsTable),
                       what="the jobs view from the palette")


# ---------------------------------------------------------------------- cancelling real jobs


async def test_c_asks_then_cancels_a_running_local_job(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        session = await start_session(pilot, app, llm_server, monkeypatch, tmp_path)
        try:
            job_id, pid_file = await launch(session, tmp_path, "train")
            await wait_for(pilot, lambda: app.jobs_pane is not None and job_id in app.jobs_pane.job_ids
                           and app.jobs_pane.tracker_of(job_id).latest is not None, what="loss lines from the real job")
            pane = app.jobs_pane
            pid = int(pid_file.read_text())
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: focused_on(app, JobsTable), what="the table focused")
            await pilot.press("c")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
            await pilot.press("n")  # keep it running
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="the confirmation closing")
            await pilot.pause(0.3)
            assert alive(pid) and pane.row(job_id).status == "RUNNING"
            await pilot.press("c")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation again")
            await pilot.press("y")
            await wait_for(pilot, lambda: pane.row(job_id).status == "CANCELED", what="the job cancelled", timeout=15)
            assert not alive(pid)
            assert app.status_info.running_jobs == 0
            await wait_for(pilot, lambda: any(f"Job {job_id} canceled" in t for t in notices(app)), what="the notice")
        finally:
            await session.jobs.backend.shutdown()


async def test_slash_jobs_selects_and_cancels_a_job_launched_by_the_model(llm_server, monkeypatch, tmp_path):
    pid_file = tmp_path / "model-job.pid"
    run = {"operation": "run", "script": training_script(pid_file), "hardware_flavor": "cpu-basic", "timeout": "2m"}
    llm_server.script(ToolCalls([Call("j1", "hf_jobs", json.dumps(run))]), Text("Launched; I'll check on it."))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        session = await start_session(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="yolo")
        try:
            await send(pilot, "train it as a job")
            await wait_for(pilot, lambda: app.jobs_pane is not None and app.jobs_pane.running_count == 1
                           and pid_file.exists() and pid_file.read_text(), what="the model's job running", timeout=20)
            pane = app.jobs_pane
            job_id = pane.job_ids[0]
            pid = int(pid_file.read_text())
            await wait_for(pilot, lambda: not session.busy, what="the turn to end", timeout=20)
            await send(pilot, "/jobs nope")
            await wait_for(pilot, lambda: any("No job 'nope'" in t for t in notices(app, "error")), what="unknown id")
            await send(pilot, f"/jobs {job_id[:9]}")  # a unique prefix is enough
            await wait_for(pilot, lambda: focused_on(app, JobsTable), what="the table focused")
            assert app.jobs_view_active and pane.selected == job_id
            await pilot.press("escape")
            await send(pilot, f"/jobs cancel {job_id}")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen.query(".confirm-question"),
                           what="the confirmation")  # pushed is not yet composed: its question too
            assert job_id in str(app.screen.query_one(".confirm-question").render())
            await pilot.press("y")
            await wait_for(pilot, lambda: pane.row(job_id).status == "CANCELED", what="the job cancelled", timeout=15)
            assert not alive(pid)
            await send(pilot, f"/jobs cancel {job_id}")
            await wait_for(pilot, lambda: any("already ended" in t for t in notices(app)), what="nothing to cancel")
            assert not isinstance(app.screen, ConfirmScreen)
        finally:
            await session.jobs.backend.shutdown()


async def test_a_refused_cancel_becomes_a_notice(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_session(pilot, app, llm_server, monkeypatch, tmp_path)
        # a job the monitor does not follow (a row from another session's events)
        await feed(app, JobUpdate(job_id=HF_JOB, status="RUNNING", flavor="a10g-large"))
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: focused_on(app, JobsTable), what="the table focused")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: any(f"Could not cancel job {HF_JOB}: No job" in t for t in notices(app, "error")),
                       what="the refusal")


async def test_cost_lists_each_job_with_its_latest_cost():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(app, JobUpdate(job_id=HF_JOB, status="RUNNING", flavor="a10g-small", cost_usd=0.05),
                   JobUpdate(job_id=HF_JOB, status="COMPLETED", flavor="a10g-small", cost_usd=0.12))
        await pilot.press(*"/cost", "enter")
        await wait_for(pilot, lambda: app.conversation.query(CostReport), what="/cost")
        report = app.conversation.query_one(CostReport).text
        assert "+ compute $0.1200" in report
        row = next(line for line in report.splitlines() if line.startswith(HF_JOB))
        assert row.split() == [HF_JOB, "a10g-small", "completed", "$0.1200"]


async def test_a_job_that_ends_while_the_agent_is_idle_wakes_it(llm_server, monkeypatch, tmp_path):
    """wake_on_job_end: the status bar says the agent will wake while the job runs; when it
    ends, a notice says why the agent is working and its answer to the news follows."""
    from agent.jobs.base import JobSpec
    from tests.fakes import Text

    def answer(body: dict):
        note = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        assert note.startswith("[JOB UPDATE]"), note
        return Text("The job finished and printed: all done.")

    llm_server.script(answer)
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        session = await start_session(pilot, app, llm_server, monkeypatch, tmp_path)
        info = await session.jobs.backend.run(JobSpec(script="import time\ntime.sleep(1.5)\nprint('all done')",
                                                      timeout_s=60))
        session.jobs.monitor.watch(session.jobs.backend, info)
        await wait_for(pilot, lambda: "↻ wakes agent" in str(app.query_one(StatusBar).render()),
                       what="the status bar saying the agent wakes")
        await wait_for(pilot, lambda: any("wakes to read the result" in n for n in notices(app)), timeout=20,
                       what="the wake notice")
        await wait_for(pilot, lambda: any("printed: all done" in a.text for a in app.conversation.query("AnswerBlock")),
                       timeout=20, what="the answer")
        assert any(info.id in n for n in notices(app) if "wakes" in n)
