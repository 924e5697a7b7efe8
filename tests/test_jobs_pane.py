"""The Jobs pane in a small host app: rows, selection, the live log (follow, search, hidden
buffering), the loss plot, cancel requests and the cost-so-far arithmetic on a pinned clock."""

from __future__ import annotations

import asyncio

import pytest
from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.widgets import Input

from agent.jobs.loss import LossTracker
from agent.protocol import JobUpdate
from tests.tui_support import press_at_once
from themes import DEFAULT_THEME, THEMES
from widgets.jobs_pane import JobsPane
from widgets.job_record import LINE_CAP, MAX_LINE_CHARS, JobRow, cost_so_far, display_line
from widgets.jobs_table import format_cost, format_elapsed, layout_columns

HF_JOB = "6890f1a2b3c4d5e6f7a8b9c0"
LOCAL_JOB = "local-1a2b3c4d5e"


class Clock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


class PaneHost(App):
    CSS = "#holder { height: 1fr; }"

    def __init__(self, clock: Clock | None = None, setup=None, loss_tracker=LossTracker):
        super().__init__()
        self.clock = clock or Clock()
        self.setup = setup
        self.loss_tracker = loss_tracker

    def compose(self) -> ComposeResult:
        with Vertical(id="holder"):
            yield JobsPane(loss_tracker=self.loss_tracker, clock=self.clock)

    def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        self.theme = DEFAULT_THEME
        self.query_one("#job-search", Input).cursor_blink = False
        if self.setup is not None:
            self.setup(self.pane)

    @property
    def pane(self) -> JobsPane:
        return self.query_one(JobsPane)


def update(job_id: str, status: str, flavor: str = "a10g-large", cost: float | None = None,
           detail: str = "") -> JobUpdate:
    return JobUpdate(job_id=job_id, status=status, flavor=flavor, cost_usd=cost, detail=detail)


def trainer_lines(count: int, start: int = 1, every_eval: int = 0) -> list[str]:
    lines = []
    for step in range(start, start + count):
        lines.append(f"{{'loss': {2.2 * 0.985 ** step + 0.03 * (step % 5) / 5:.4f}, 'learning_rate': 5e-05, "
                     f"'epoch': {step / 100:.2f}}}")
        if every_eval and step % every_eval == 0:
            lines.append(f"{{'eval_loss': {2.4 * 0.985 ** step:.4f}, 'eval_runtime': 1.2, 'epoch': {step / 100:.2f}}}")
    return lines


async def wait_for(pilot, condition, what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def table_text(pane: JobsPane) -> list[str]:
    return [line.plain for line in pane.table.lines()]


# ---------------------------------------------------------------------- pure pieces


def test_cost_so_far_rules():
    assert cost_so_far("local", "RUNNING", None, 600, None) == 0.0
    assert cost_so_far("hf", "RUNNING", 2.0, 90, None) == pytest.approx(0.05)
    assert cost_so_far("hf", "COMPLETED", 2.0, 90, 0.06) == 0.06  # the monitor's final figure wins
    assert cost_so_far("hf", "RUNNING", None, 90, None) is None
    assert cost_so_far("hf", "RUNNING", None, 90, 0.04) == 0.04  # the monitor knew a price we did not
    assert cost_so_far("hf", "QUEUED", 2.0, None, None) == 0.0
    assert format_cost(JobRow("x", backend="local", cost_usd=0.0)) == "$0 (local)"
    assert format_cost(JobRow("x", backend="hf", cost_usd=None)) == "unknown"
    assert format_cost(JobRow("x", backend="hf", cost_usd=0.05)) == "$0.0500"
    assert format_cost(JobRow("x", backend="hf", cost_usd=12.345)) == "$12.35"
    assert [format_elapsed(s) for s in (None, 0, 59.9, 90, 3599, 3600 + 62)] == [
        "—", "0s", "59s", "1m30s", "59m59s", "1h01m"]


def test_columns_fold_away_when_narrow():
    keys = lambda width: [column.key for column, _ in layout_columns(width)]  # noqa: E731
    assert keys(116) == ["id", "flavor", "status", "elapsed", "price", "cost", "last"]
    assert keys(76) == ["id", "status", "elapsed", "cost", "last"]
    assert keys(50) == ["id", "status", "elapsed", "cost"]
    assert keys(40) == ["id", "status", "cost"]
    for width in (116, 76, 50, 40):
        assert sum(w for _, w in layout_columns(width)) + 2 * (len(keys(width)) - 1) <= width


def test_display_lines_are_one_bounded_line_without_escapes():
    assert display_line("  3%|▎ | 3/100\r  4%|▍ | 4/100\r") == "  4%|▍ | 4/100"
    assert display_line("\x1b[32mok\x1b[0m done") == "ok done"
    assert display_line("a\x0cb\u2028c") == "a b c"
    assert display_line("") == " " and display_line("\r") == " "
    long = display_line("x" * (MAX_LINE_CHARS * 10))
    assert len(long) == MAX_LINE_CHARS and long.endswith("…")


# ---------------------------------------------------------------------- rows


async def test_rows_appear_and_update_in_place():
    app = PaneHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        assert "No jobs yet" in table_text(pane)[1]
        pane.update_job(update(HF_JOB, "QUEUED"), 1.0, "hf")
        pane.update_job(update(LOCAL_JOB, "RUNNING", flavor="cpu-basic"), None, "local")
        await pilot.pause()
        assert pane.job_ids == (HF_JOB, LOCAL_JOB)
        assert pane.selected == HF_JOB  # the first job is selected
        lines = table_text(pane)
        assert "queued" in lines[1] and "a10g-large" in lines[1]
        assert "running" in lines[2] and "$0 (local)" in lines[2]
        local_drawn = pane.table.lines()[2]

        pane.update_job(update(HF_JOB, "RUNNING"), 1.0, "hf")
        await pilot.pause()
        assert pane.job_ids == (HF_JOB, LOCAL_JOB)  # same rows, one changed
        assert "running" in table_text(pane)[1]
        assert pane.table.lines()[2] is local_drawn  # the untouched row was not redrawn
        assert (pane.running_count, pane.active_count) == (2, 2)
        assert pane.table.border_title == "Jobs · 2 running · 2 total"

        pane.append_lines(LOCAL_JOB, ["preparing data", "step 1 done", ""])
        assert pane.row(LOCAL_JOB).last_line == "step 1 done"  # a trailing blank line is skipped
        pane.update_job(update(LOCAL_JOB, "ERROR", flavor="cpu-basic", detail="error after 0m12s"), None, "local")
        await pilot.pause()
        assert "error" in table_text(pane)[2]
        assert (pane.running_count, pane.active_count) == (1, 1)


async def test_lines_for_a_job_not_seen_yet_are_kept():
    app = PaneHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        pane.append_lines("early", ["first line"])
        await pilot.pause()
        assert pane.row("early").status == "UNKNOWN" and pane.selected == "early"
        assert list(pane.log_view.lines) == ["first line"]
        with pytest.raises(KeyError, match="no job 'nope'"):
            pane.select("nope")


async def test_a_new_running_job_takes_over_from_a_finished_selection_only():
    app = PaneHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        pane.update_job(update("b", "RUNNING"), 1.0, "hf")
        assert pane.selected == "a"  # a live job being watched keeps the view
        pane.update_job(update("a", "COMPLETED", cost=0.1), 1.0, "hf")
        pane.update_job(update("c", "RUNNING"), 1.0, "hf")
        await pilot.pause()
        assert pane.selected == "c"


# ---------------------------------------------------------------------- selection, log, plot


async def test_selection_switches_the_log_and_the_plot():
    app = PaneHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        pane.update_job(update("b", "RUNNING"), 1.0, "hf")
        pane.append_lines("a", trainer_lines(50))
        pane.append_lines("b", ["downloading dataset", *trainer_lines(120, start=1, every_eval=40)])
        await pilot.pause()
        assert pane.selected == "a"
        assert list(pane.log_view.lines) == list(pane.lines_of("a"))
        assert pane.plot.points == pane.tracker_of("a").series("train") and len(pane.plot.points) == 50
        assert pane.plot.border_title.endswith("@ step 49")  # Trainer dicts name no step: counted from 0

        pane.table.focus()
        await pilot.press("down")
        await pilot.pause()
        assert pane.selected == "b" and pane.table.cursor_id == "b"
        assert pane.log_view.lines[0] == "downloading dataset" and len(pane.log_view.lines) == 124
        assert len(pane.plot.points) == 120 and len(pane.plot.eval_points) == 3
        assert pane.plot.border_title.endswith("@ step 119")
        assert pane.query_one("#job-log-box").border_title == "Log · b"

        await pilot.press("]")  # already the last job: stays
        assert pane.selected == "b"
        pane.log_view.focus()
        await pilot.press("[")  # the pane's keys, whichever of its widgets has focus
        await pilot.pause()
        assert pane.selected == "a" and pane.table.cursor_id == "a" and len(pane.log_view.lines) == 50
        pane.select("b")
        await pilot.pause()
        assert pane.table.cursor_id == "b" and len(pane.log_view.lines) == 124


async def test_a_job_without_loss_lines_shows_no_plot():
    app = PaneHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        pane.update_job(update("prep", "RUNNING", flavor="cpu-upgrade"), 0.1, "hf")
        pane.append_lines("prep", ["tokenising shard 1/8", "tokenising shard 2/8"])
        await pilot.pause()
        assert not pane.plot.display
        pane.append_lines("prep", ["step 10 loss=1.93"])
        await pilot.pause()
        assert pane.plot.display and pane.plot.points == ((10, 1.93),)


async def test_without_a_loss_tracker_there_is_no_curve():
    app = PaneHost(loss_tracker=None)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        pane.append_lines("a", trainer_lines(30))
        await pilot.pause()
        assert pane.tracker_of("a") is None and not pane.plot.display and len(pane.log_view.lines) == 30


async def test_follow_and_pause():
    app = PaneHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        log = pane.log_view
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        pane.append_lines("a", [f"line {i}" for i in range(200)])
        await wait_for(pilot, lambda: log.scroll_y == log.max_scroll_y > 0, "the log to follow its tail")
        pane.table.focus()
        await pilot.press("f")
        assert pane.follow is False and "paused" in pane.query_one("#job-log-box").border_subtitle
        paused_at = log.scroll_y
        pane.append_lines("a", [f"more {i}" for i in range(50)])
        await pilot.pause()
        assert log.scroll_y == paused_at and log.max_scroll_y > paused_at
        await pilot.press("f")
        await pilot.pause()
        assert pane.follow and log.scroll_y == log.max_scroll_y
        assert pane.query_one("#job-log-box").border_subtitle == "following"


async def test_following_survives_the_horizontal_scrollbar_and_resizes():
    """Lines wider than a narrow pane bring a horizontal scrollbar, which takes the bottom row:
    the newest line must still be in view, and the log must go on following."""
    app = PaneHost()
    async with app.run_test(size=(60, 30)) as pilot:
        pane = app.pane
        log = pane.log_view
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        wide = lambda n: [f"step {i:04d} " + "x" * 80 for i in range(n, n + 100)]  # noqa: E731
        pane.append_lines("a", wide(0))
        await wait_for(pilot, lambda: log.show_horizontal_scrollbar and log.scroll_y == log.max_scroll_y,
                       "the tail above the scrollbar")
        pane.append_lines("a", wide(100))
        await wait_for(pilot, lambda: log.scroll_y == log.max_scroll_y and log.line_count == 200, "still following")
        await pilot.resize_terminal(60, 20)
        await wait_for(pilot, lambda: log.scroll_y == log.max_scroll_y, "following after a resize")
        assert pane.follow


async def test_search_finds_lines_and_steps_through_matches():
    app = PaneHost()
    messages = []
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        pane = app.pane
        log = pane.log_view
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        # blank lines in between: Textual's Log drops "", which would shift the match numbers
        pane.append_lines("a", [line for entry in trainer_lines(300, every_eval=100) for line in (entry, "")])
        await pilot.pause()
        assert len(log.lines) == len(pane.lines_of("a")) == 606
        pane.table.focus()
        await pilot.press("slash")
        assert pane.search_input.has_focus
        await pilot.press("c", "backspace")  # a "c" typed into the search is not a cancel
        await press_at_once(pilot, *"EVAL_LOSS")  # case does not matter
        await pilot.pause()
        assert "3 matches" in pane.query_one("#job-log-box").border_subtitle
        await pilot.press("enter")
        await pilot.pause()
        assert log.has_focus and not pane.search_input.display
        newest = max(i for i, line in enumerate(log.lines) if "eval_loss" in line)
        assert log.current == newest and "'eval_loss'" in log.lines[newest]
        assert log.scroll_y <= newest < log.scroll_y + log.scrollable_content_region.height  # on screen
        assert "“EVAL_LOSS” 3/3" in pane.query_one("#job-log-box").border_subtitle
        assert pane.follow is False

        await pilot.press("N")
        assert "2/3" in pane.query_one("#job-log-box").border_subtitle and "eval_loss" in log.lines[log.current]
        await pilot.press("n", "n")
        assert "1/3" in pane.query_one("#job-log-box").border_subtitle  # wrapped round

        # the current match's line is drawn in its own style, other matches only highlighted
        row = log.current - int(log.scroll_y)
        current_bg = list(log.render_line(row))[0].style.bgcolor
        other = next(i for i, line in enumerate(log.lines) if "eval_loss" in line and i != log.current)
        if log.scroll_y <= other < log.scroll_y + log.size.height:
            assert list(log.render_line(other - int(log.scroll_y)))[0].style.bgcolor != current_bg

        await pilot.press("escape")
        await pilot.pause()
        assert log.pattern is None and log.current is None and pane.follow is True
        assert pane.query_one("#job-log-box").border_subtitle == "following"
        assert not any(isinstance(m, JobsPane.CancelRequested) for m in messages)


async def test_search_with_no_match_says_so():
    app = PaneHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        pane.append_lines("a", trainer_lines(20))
        pane.table.focus()
        await pilot.press("slash", *"nan", "enter")
        await pilot.pause()
        assert "“nan” not found" in pane.query_one("#job-log-box").border_subtitle
        assert pane.log_view.current is None


async def test_hidden_pane_buffers_and_catches_up_when_shown():
    app = PaneHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        log = pane.log_view
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        pane.append_lines("a", trainer_lines(10))
        await pilot.pause()
        assert len(log.lines) == 10
        app.query_one("#holder").display = False  # the app hides the container, not the pane
        await pilot.pause()
        assert not pane.shown_now
        pane.append_lines("a", trainer_lines(40, start=11))
        pane.append_lines("a", trainer_lines(50, start=51))
        await pilot.pause()
        assert len(log.lines) == 10 and log.written == 10  # nothing written while hidden
        assert len(pane.plot.points) == 10
        assert len(pane.lines_of("a")) == 100 and pane.row("a").last_line.startswith("{'loss'")

        app.query_one("#holder").display = True
        await wait_for(pilot, lambda: len(log.lines) == 100, "the log to catch up")
        assert list(log.lines) == list(pane.lines_of("a"))  # in order, nothing twice
        assert len(pane.plot.points) == 100


async def test_hidden_longer_than_the_buffer_shows_the_newest_lines(monkeypatch):
    monkeypatch.setattr(JobsPane, "LINE_CAP", 50)
    app = PaneHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        pane.append_lines("a", [f"old {i}" for i in range(30)])
        app.query_one("#holder").display = False
        await pilot.pause()
        pane.append_lines("a", [f"new {i}" for i in range(120)])
        app.query_one("#holder").display = True
        await wait_for(pilot, lambda: pane.log_view.lines and pane.log_view.lines[-1] == "new 119", "catch-up")
        assert list(pane.log_view.lines)[-50:] == [f"new {i}" for i in range(70, 120)]


async def test_cancel_posts_a_message_for_a_running_job_only():
    app = PaneHost()
    messages = []
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        pane = app.pane
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        pane.update_job(update("b", "COMPLETED", cost=0.2), 1.0, "hf")
        pane.table.focus()
        await pilot.press("c")
        await pilot.pause()
        # the hook sees a bubbling message once per node it reaches: count distinct messages
        cancels = list({id(m): m for m in messages if isinstance(m, JobsPane.CancelRequested)}.values())
        assert [m.job_id for m in cancels] == ["a"] and cancels[0].control is pane
        assert pane.row("a").status == "RUNNING"  # the pane never cancels by itself

        pane.select("b")
        await pilot.pause()
        assert pane.check_action("cancel_job", ()) is None  # shown, disabled
        await pilot.press("c")
        pane.action_cancel_job()  # called directly (a command palette entry), still nothing
        await pilot.pause()
        assert len({id(m) for m in messages if isinstance(m, JobsPane.CancelRequested)}) == 1


# ---------------------------------------------------------------------- time and money


async def test_elapsed_and_cost_follow_the_clock():
    clock = Clock(1000.0)
    app = PaneHost(clock)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        pane.update_job(update("gpu", "QUEUED"), 2.0, "hf")
        assert pane.row("gpu").elapsed_s is None and pane.row("gpu").cost_usd == 0.0
        clock.now = 1030.0
        pane.update_job(update("gpu", "RUNNING"), 2.0, "hf")
        clock.now = 1120.0
        pane.tick()
        row = pane.row("gpu")
        assert format_elapsed(row.elapsed_s) == "1m30s" and row.cost_usd == pytest.approx(0.05)
        assert "1m30s" in table_text(pane)[1] and "$0.0500" in table_text(pane)[1]
        clock.now = 1150.0
        pane.update_job(update("gpu", "COMPLETED", cost=0.0667), 2.0, "hf")
        clock.now = 5000.0
        pane.tick()
        row = pane.row("gpu")
        assert format_elapsed(row.elapsed_s) == "2m00s" and row.cost_usd == 0.0667  # frozen at the end

        pane.update_job(update("cpu", "RUNNING", flavor="cpu-basic"), None, "local")
        pane.update_job(update("odd", "RUNNING", flavor="z9000"), None, "hf")
        clock.now = 5060.0
        pane.tick()
        assert format_cost(pane.row("cpu")) == "$0 (local)"
        assert format_cost(pane.row("odd")) == "unknown" and pane.row("odd").elapsed_s == 60
        await pilot.pause()


async def test_a_job_picked_up_mid_run_takes_its_elapsed_time_from_the_monitors_cost():
    clock = Clock(1000.0)
    app = PaneHost(clock)
    async with app.run_test(size=(120, 36)):
        pane = app.pane
        pane.update_job(update("gpu", "RUNNING", cost=0.25), 2.0, "hf")  # $0.25 at $2/h: 7m30s in
        assert format_elapsed(pane.row("gpu").elapsed_s) == "7m30s"
        clock.now = 1030.0
        # later polls do not move the start (their cost is rounded and a poll late)
        pane.update_job(update("gpu", "RUNNING", cost=0.2700), 2.0, "hf")
        assert format_elapsed(pane.row("gpu").elapsed_s) == "8m00s"


async def test_one_timer_ticks_only_while_a_job_runs(monkeypatch):
    monkeypatch.setattr(JobsPane, "TICK_S", 0.02)
    clock = Clock(1000.0)
    app = PaneHost(clock)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        assert not pane.ticking
        pane.update_job(update("a", "QUEUED"), 1.0, "hf")
        assert not pane.ticking
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        pane.update_job(update("b", "RUNNING"), 1.0, "hf")
        assert pane.ticking
        clock.now = 1042.0
        await wait_for(pilot, lambda: pane.row("a").elapsed_s == 42 and pane.row("b").elapsed_s == 42, "a tick")
        pane.update_job(update("a", "COMPLETED", cost=0.01), 1.0, "hf")
        assert pane.ticking  # b still runs
        pane.update_job(update("b", "CANCELED", cost=0.01), 1.0, "hf")
        assert not pane.ticking
        reads = clock.reads
        await pilot.pause(0.2)  # ten periods: a paused timer reads no clock
        assert clock.reads == reads


# ---------------------------------------------------------------------- bounds and layout


async def test_buffers_are_bounded():
    app = PaneHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        for batch in range(12):
            pane.append_lines("a", [f"b{batch} line {i}" for i in range(1000)])
        pane.append_lines("a", ["y" * 1_000_000])
        await pilot.pause()
        lines = pane.lines_of("a")
        assert len(lines) == LINE_CAP and len(lines[-1]) == MAX_LINE_CHARS
        assert lines[0] == "b7 line 1" and lines[-2] == "b11 line 999"  # 12,001 in, the newest 5,000 kept
        assert len(pane.log_view.lines) == LINE_CAP
        assert list(pane.log_view.lines) == list(lines)


async def test_the_log_keeps_painting_the_newest_line_past_its_cap(monkeypatch):
    """What reaches the terminal, not the widget state: Textual 8.2.8's Log stops repainting
    once it holds max_lines, so the newest line must appear in the driver's output."""
    from rich.console import Console

    monkeypatch.setattr(JobsPane, "LINE_CAP", 200)
    app = PaneHost()
    async with app.run_test(size=(120, 36)) as pilot:
        painted: list[str] = []
        original = app._display

        def capture(screen, renderable):  # the compositor's updates, as sent to the terminal
            if renderable is not None:
                console = Console(width=120, file=None, record=True, force_terminal=True, color_system=None)
                with console.capture() as captured:
                    console.print(renderable)
                painted.append(captured.get())
            return original(screen, renderable)

        app._display = capture
        pane = app.pane
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        for batch in range(8):  # 400 lines through a 200-line Log
            # every batch ends with the same line, so the table row does not change and its
            # repaint cannot hide a Log that stopped painting; one width: no resize repaints
            pane.append_lines("a", [f"L{batch * 50 + i:04d}" for i in range(49)] + ["epoch end"])
            await pilot.pause(0.05)
        assert pane.log_view.line_count == 200
        assert painted and "L0398" in "".join(painted[-3:])


async def test_many_jobs_scroll_the_table_to_the_cursor():
    app = PaneHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.pane
        for n in range(15):
            pane.update_job(update(f"job-{n:02d}", "RUNNING"), 1.0, "hf")
        await pilot.pause()
        pane.table.focus()
        await pilot.press("end")
        await pilot.pause()
        assert pane.selected == "job-14"
        shown = table_text(pane)
        assert shown[-1].startswith("job-14") and len(shown) == pane.table.content_region.height
        await pilot.press("home")
        assert table_text(pane)[1].startswith("job-00")


async def test_compact_width_folds_the_plot_into_the_log_title():
    app = PaneHost()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.pane
        pane.update_job(update("a", "RUNNING"), 1.0, "hf")
        pane.append_lines("a", trainer_lines(30))
        await pilot.pause()
        assert pane.has_class("-compact") and not pane.plot.display
        latest = pane.tracker_of("a").latest
        assert pane.query_one("#job-log-box").border_title == f"Log · a · loss {latest.loss:.4g} @ 29"
        assert "flavour" not in table_text(pane)[0]
        await pilot.resize_terminal(120, 36)
        await wait_for(pilot, lambda: not pane.has_class("-compact"), "the wide layout")
        await pilot.pause()
        assert pane.plot.display and pane.query_one("#job-log-box").border_title == "Log · a"


# ---------------------------------------------------------------------- snapshots


def two_jobs(pane: JobsPane) -> None:
    pane.update_job(update(HF_JOB, "RUNNING", flavor="a10g-large", cost=0.25), 2.0, "hf")
    pane.update_job(update(LOCAL_JOB, "COMPLETED", flavor="cpu-basic", cost=0.0,
                           detail="completed after 0m41s, $0.0000"), None, "local")
    pane.append_lines(LOCAL_JOB, ["Generating train split: 1200 examples", "wrote data/train.jsonl"])
    pane.append_lines(HF_JOB, ["Downloading model.safetensors: 100%|██████████| 988M/988M",
                               *trainer_lines(240, every_eval=60)])
    pane.select(HF_JOB)


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()  # the Log measures line widths in a thread
    await pilot.pause()


def test_snapshot_two_jobs_with_a_loss_curve(snap_compare):
    """120x36. The table (focused, accent border) titled "Jobs · 1 running · 2 total" has the
    headers job/flavour/status/elapsed/$/h/cost/last line. Row 1, under the accent cursor: the
    HF job "6890f1a2b3…" on a10g-large, "● running" in accent, 7m30s, $2.00, $0.2500, and its
    last log line (the newest eval dict) muted. Row 2: "local-1a2b…" on cpu-basic, "✓ completed"
    in green, elapsed "—", $0, "$0 (local)", "wrote data/train.jsonl". Below, left: the HF job's
    log tail (trainer dicts, the eval dict last) titled "Log · 6890f1a2b3c4d5e6f7a8b9c0",
    "following" in its bottom border. Right: the loss plot titled "loss 0.0585 @ step 239", a
    falling accent braille curve from 2.17 to 0.0585, four warning-coloured ● eval markers
    just above it, and "eval 0.0638 @ 239" in the bottom border."""

    assert snap_compare(PaneHost(Clock(), setup=two_jobs), terminal_size=(120, 36), run_before=settle)


def test_snapshot_two_jobs_compact_80x24(snap_compare):
    """80x24, the compact pane: the table drops flavour and $/h (job, status, elapsed, cost,
    last line), the plot is folded away and the log's border title carries the newest loss
    instead: "Log · 6890f1a2b3c4d5e… · loss 0.0585 @ 239"; the log tail fills the rest."""

    assert snap_compare(PaneHost(Clock(), setup=two_jobs), terminal_size=(80, 24), run_before=settle)


def test_snapshot_search_in_the_log(snap_compare):
    """120x36 with "eval_loss" searched: the log box has focus (accent border) and its subtitle
    reads "“eval_loss” 4/4 · paused · f follows". The current match is the newest eval line, the
    last one in view: the whole line is tinted accent and the word "eval_loss" in it stands out
    in bold on a warning background. The table's cursor row is dimmed (the table lost focus);
    the plot is as in the two-jobs snapshot."""

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("slash", *"eval_loss", "enter")
        await pilot.pause()

    assert snap_compare(PaneHost(Clock(), setup=two_jobs), terminal_size=(120, 36), run_before=run_before)
