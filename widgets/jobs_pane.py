"""The Jobs pane: every job of the session in a table, and the selected job's live log and
loss curve below it.

The app feeds it two things: ``update_job`` for each ``JobUpdate`` and ``append_lines``
with the batched lines of each ``JobLog`` (about 15 times a second). Each job keeps its
newest lines in a bounded buffer and its own loss tracker. The Log shows the selected
job only, and only while the pane is on screen: when it is hidden, lines pile up in the
buffers (bounded) and the Log catches up from them when the pane is shown again.

Elapsed time and cost so far tick once a second from one timer, running only while some job
runs. Time comes from the ``clock`` callable (monotonic seconds) so tests can pin it.

The log is a ``JobLogView`` (``widgets/job_log_view.py``): search with matches highlighted,
``n``/``N`` to step through them.
"""

from __future__ import annotations

import time
from itertools import islice
from typing import Callable

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input

from agent.protocol import JobUpdate
from widgets.job_log_view import JobLogView
from widgets.job_record import LINE_CAP, JobRecord, JobRow, LossSource, LossSourceFactory
from widgets.jobs_table import JobsTable, short_id
from widgets.loss_plot import LossPlot, format_loss

COMPACT_WIDTH = 100  # below this the plot folds away and the table drops columns


class JobsPane(Vertical):
    """Jobs table on top; below it the selected job's log (and its loss curve when wide)."""

    DEFAULT_CSS = """
    JobsPane { height: 1fr; }
    JobsPane > JobsTable {
        max-height: 40%; border: round $panel; border-title-color: $foreground; border-title-style: bold;
        border-subtitle-color: $foreground-muted;
    }
    JobsPane > JobsTable:focus { border: round $accent; }
    JobsPane > #job-detail { height: 1fr; min-height: 5; }
    JobsPane #job-log-box {
        width: 1fr; border: round $panel; border-title-color: $foreground; border-subtitle-color: $foreground-muted;
    }
    JobsPane #job-log-box:focus-within { border: round $accent; }
    JobsPane JobLogView { height: 1fr; background: transparent; scrollbar-size: 1 1; overflow-x: auto; }
    JobsPane #job-search { display: none; height: 1; border: none; padding: 0 1; margin: 0; background: $boost; }
    JobsPane #job-search:focus { border: none; background-tint: $foreground 5%; }
    JobsPane.-searching #job-search { display: block; }
    JobsPane #job-plot { width: 44%; max-width: 64; height: 1fr; display: none; }
    JobsPane.-has-loss #job-plot { display: block; }
    JobsPane.-compact #job-plot { display: none; }
    """
    BINDINGS = [
        Binding("c", "cancel_job", "Cancel job"),
        Binding("f", "toggle_follow", "Follow/pause"),
        Binding("slash", "open_search", "Search"),
        Binding("n", "jump(1)", "Next match", show=False),
        Binding("N,shift+n", "jump(-1)", "Previous match", show=False),
        Binding("escape", "close_search", "Clear search", show=False),
        Binding("left_square_bracket", "cycle(-1)", "Previous job", show=False),
        Binding("right_square_bracket", "cycle(1)", "Next job", show=False),
    ]

    LINE_CAP = LINE_CAP  # per job, and the Log's max_lines
    TICK_S = 1.0

    selected: reactive[str | None] = reactive(None)
    follow: reactive[bool] = reactive(True)

    class CancelRequested(Message):
        """The user asked to cancel a job. The app confirms and cancels; the pane does neither."""

        def __init__(self, pane: JobsPane, job_id: str):
            super().__init__()
            self.pane = pane
            self.job_id = job_id

        @property
        def control(self) -> JobsPane:
            return self.pane

    def __init__(self, *, loss_tracker: LossSourceFactory | None = None, clock: Callable[[], float] = time.monotonic,
                 name: str | None = None, id: str | None = None, classes: str | None = None):
        """``loss_tracker`` makes one tracker per job (the app passes ``LossTracker``; without
        it there is no loss curve). ``clock`` gives monotonic seconds."""
        super().__init__(name=name, id=id, classes=classes)
        self.loss_tracker = loss_tracker
        self.clock = clock
        self._jobs: dict[str, JobRecord] = {}
        self._log_job: str | None = None  # whose lines the Log holds
        self._log_total = 0  # that job's total_lines when the Log last caught up
        self._plot_dirty = False
        self._ticker = None
        self._ticking = False
        self._follow_before_search: bool | None = None
        self._search_status = ""
        self._catch_up_queued = False

    def compose(self) -> ComposeResult:
        yield JobsTable(id="jobs-table")
        with Horizontal(id="job-detail"):
            with Vertical(id="job-log-box"):
                yield Input(id="job-search", placeholder="search this log (enter: go to newest match, esc: clear)")
                yield JobLogView(max_lines=self.LINE_CAP, auto_scroll=True, id="job-log")
            yield LossPlot(id="job-plot")

    def on_mount(self) -> None:
        self._ticker = self.set_interval(self.TICK_S, self.tick, pause=True, name="jobs-elapsed")
        self.log_view.on_paint = self._log_painted
        self._titles()

    # ------------------------------------------------------------------ public API

    @property
    def running_count(self) -> int:
        """Jobs in the RUNNING stage."""
        return sum(1 for job in self._jobs.values() if job.status == "RUNNING")

    @property
    def active_count(self) -> int:
        """Jobs not finished yet (queued, running or of unknown stage)."""
        return sum(1 for job in self._jobs.values() if not job.finished_stage)

    @property
    def job_ids(self) -> tuple[str, ...]:
        return self.table.job_ids

    @property
    def ticking(self) -> bool:
        return self._ticking

    @property
    def selected_job(self) -> JobRecord | None:
        return self._jobs.get(self.selected) if self.selected else None

    def row(self, job_id: str) -> JobRow:
        """What the table shows for ``job_id`` right now."""
        return self.table.row(job_id)

    def update_job(self, update: JobUpdate, price_per_hour: float | None, backend: str) -> None:
        """Apply a ``JobUpdate``. ``price_per_hour`` is the flavour's price in the table the
        monitor bills by (``hourly_price(flavor, monitor.prices)``); ``backend`` is "local" or
        "hf" (the session's ``jobs.backend.name``)."""
        job = self._job(update.job_id)
        now = self.clock()
        job.apply(update.status, update.flavor, update.url, update.detail, update.cost_usd,
                  price_per_hour, backend, now)
        self._refresh_row(job, now)
        if self.selected is None or (self.selected != job.job_id and self._jobs[self.selected].finished_stage
                                     and not job.finished_stage):
            self.selected = job.job_id  # a new live job takes over from a finished one
        self._update_ticker()
        self._titles()

    def append_lines(self, job_id: str, lines: list[str]) -> None:
        """A batch of a job's log lines (raw, as the backend printed them)."""
        if not lines:
            return
        job = self._job(job_id)
        found = job.append(lines)
        self._refresh_row(job, self.clock())
        if self.selected is None:
            self.selected = job_id
        elif job_id == self.selected:
            self._plot_dirty = self._plot_dirty or found
            self.catch_up()

    def select(self, job_id: str) -> None:
        if job_id not in self._jobs:
            raise KeyError(f"no job {job_id!r} in the jobs pane")
        self.selected = job_id

    def lines_of(self, job_id: str) -> tuple[str, ...]:
        """The buffered (display) lines of a job, oldest first."""
        return tuple(self._jobs[job_id].lines)

    def tracker_of(self, job_id: str) -> LossSource | None:
        return self._jobs[job_id].tracker

    def tick(self) -> None:
        """Advance elapsed time and cost of the running jobs (the timer calls this)."""
        now = self.clock()
        for job in self._jobs.values():
            if job.status == "RUNNING":
                self._refresh_row(job, now)
        self._update_ticker()

    # ------------------------------------------------------------------ widgets

    @property
    def table(self) -> JobsTable:
        return self.query_one(JobsTable)

    @property
    def log_view(self) -> JobLogView:
        return self.query_one(JobLogView)

    @property
    def plot(self) -> LossPlot:
        return self.query_one(LossPlot)

    @property
    def search_input(self) -> Input:
        return self.query_one("#job-search", Input)

    @property
    def shown_now(self) -> bool:
        """Whether the pane and every container above it are displayed."""
        if not self.is_mounted:
            return False
        node = self
        while isinstance(node, Widget):
            if not node.display:
                return False
            node = node.parent
        return True

    # ------------------------------------------------------------------ internals

    def _job(self, job_id: str) -> JobRecord:
        job = self._jobs.get(job_id)
        if job is None:
            tracker = self.loss_tracker() if self.loss_tracker is not None else None
            job = self._jobs[job_id] = JobRecord(job_id, cap=self.LINE_CAP, tracker=tracker)
        return job

    def _refresh_row(self, job: JobRecord, now: float) -> None:
        self.table.set_row(job.row(now))

    def _update_ticker(self) -> None:
        if self._ticker is None:
            return
        running = any(job.status == "RUNNING" for job in self._jobs.values())
        if running != self._ticking:
            self._ticking = running
            (self._ticker.resume if running else self._ticker.pause)()

    def _titles(self) -> None:
        total, running = len(self._jobs), self.running_count
        title = "Jobs"
        if total:
            title += f" · {running} running · {total} total" if running else f" · {total} total"
        self.table.border_title = title
        self.table.border_subtitle = "↑↓ select · c cancel" if total else ""
        box = self.query_one("#job-log-box")
        job = self.selected_job
        if job is None:
            box.border_title = "Log"
            box.border_subtitle = ""
            return
        compact = self.has_class("-compact")
        title = f"Log · {short_id(job.job_id, 16 if compact else 32)}"
        latest = job.tracker.latest if job.tracker is not None else None
        if latest is not None and compact:
            title += f" · loss {format_loss(latest.loss)} @ {latest.step:,}"  # the plot is folded away
        box.border_title = Content(title)  # not markup: a job id comes from a backend
        parts = [self._search_status] if self._search_status else []
        parts.append("following" if self.follow else "paused · f follows")
        box.border_subtitle = " · ".join(parts)

    def catch_up(self) -> None:
        """Bring the Log and the plot up to date with the selected job's buffer, if the pane is
        on screen (nothing is written to a hidden Log). The pane calls this itself, also when it
        is painted again after being hidden; calling it is harmless."""
        self._catch_up_queued = False
        if not self.shown_now:
            return
        log = self.log_view
        job = self.selected_job
        if job is None:
            if self._log_job is not None:
                log.clear()
                self._log_job = None
            return
        if self._log_job != job.job_id:
            log.clear()
            self._log_job, self._log_total = job.job_id, job.total_lines - len(job.lines)
            self._plot_dirty = True
        missing = job.total_lines - self._log_total
        if missing > 0:
            buffered = len(job.lines)
            log.write_lines(job.lines if missing >= buffered else islice(job.lines, buffered - missing, None))
            # Textual 8.2.8: once the Log is at max_lines, write_lines refreshes rows below the
            # view and the view never repaints again; a full refresh keeps the tail visible
            log.refresh()
            self._log_total = job.total_lines
            if log.pattern is not None and self._search_status:
                self._search_status = log.summary()
        if self._plot_dirty:
            self._plot_dirty = False
            plot = self.plot
            tracker = job.tracker
            plot.points = tracker.series("train") if tracker is not None else ()
            plot.eval_points = tracker.series("eval") if tracker is not None else ()
            self.set_class(bool(plot.points or plot.eval_points), "-has-loss")
        self._titles()

    def _behind(self) -> bool:
        job = self.selected_job
        if job is None:
            return self._log_job is not None
        return self._plot_dirty or self._log_job != job.job_id or self._log_total != job.total_lines

    def _log_painted(self) -> None:
        if not self._catch_up_queued and self._behind():
            self._catch_up_queued = True
            self.call_later(self.catch_up)

    # ------------------------------------------------------------------ reactions

    def watch_selected(self, job_id: str | None) -> None:
        if not self.is_mounted:
            return
        self.table.cursor_id = job_id
        self._plot_dirty = True
        self.catch_up()
        self._titles()
        self.refresh_bindings()

    def watch_follow(self, follow: bool) -> None:
        if not self.is_mounted:
            return
        log = self.log_view
        log.auto_scroll = follow
        if follow:
            log.scroll_end(animate=False, immediate=True)
        self._titles()

    def on_show(self, event: events.Show) -> None:
        self.catch_up()

    def on_resize(self, event: events.Resize) -> None:
        compact = event.size.width < COMPACT_WIDTH
        if compact != self.has_class("-compact"):
            self.set_class(compact, "-compact")
            self._titles()

    @on(JobsTable.Highlighted)
    def _table_moved(self, event: JobsTable.Highlighted) -> None:
        event.stop()
        self.selected = event.job_id

    @on(Input.Changed, "#job-search")
    def _search_typed(self, event: Input.Changed) -> None:
        event.stop()
        self.log_view.set_query(event.value)
        self._search_status = self.log_view.summary() if event.value else ""
        self._titles()

    @on(Input.Submitted, "#job-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value:
            self.action_close_search()
            return
        self.remove_class("-searching")
        self.log_view.focus()
        self.action_jump(0)

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_job":
            job = self.selected_job
            return None if job is None or job.finished_stage else True  # None: shown, disabled
        if action == "jump":
            return self.log_view.pattern is not None
        if action == "close_search":
            return self.has_class("-searching") or self.log_view.pattern is not None
        return True

    def action_cancel_job(self) -> None:
        job = self.selected_job
        if job is not None and not job.finished_stage:
            self.post_message(self.CancelRequested(self, job.job_id))

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow

    def action_open_search(self) -> None:
        if self._follow_before_search is None:
            self._follow_before_search = self.follow
        self.add_class("-searching")
        self.search_input.focus()
        self.refresh_bindings()

    def action_jump(self, direction: int) -> None:
        log = self.log_view
        if log.pattern is None:
            return
        self.follow = False  # a match scrolled into view must stay there
        log.jump(direction)
        self._search_status = log.summary()
        self._titles()

    def action_close_search(self) -> None:
        searching = self.has_class("-searching")
        self.remove_class("-searching")
        self.search_input.value = ""  # clears the highlight through Input.Changed
        self.log_view.set_query("")
        self._search_status = ""
        if self._follow_before_search is not None:
            self.follow = self._follow_before_search
            self._follow_before_search = None
        if searching:
            self.log_view.focus()
        self._titles()
        self.refresh_bindings()

    def action_cycle(self, delta: int) -> None:
        self.table.action_move(delta)
