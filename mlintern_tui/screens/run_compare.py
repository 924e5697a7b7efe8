"""Runs side by side (``c`` on the experiment board): the hyper-parameters that differ and
every metric, as ``agent.experiments.compare`` tabulates them, and the runs' train-loss curves
overlaid, read from their logs in a thread."""

from __future__ import annotations

import asyncio
import math

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from agent.protocol import ExperimentRun
from widgets.markdown_view import StreamedMarkdown
from widgets.run_curves import Curve, RunCurves

#: log lines read per run (the board's runs finished; their logs are on disk)
MAX_LOG_LINES = 400_000


def read_curve(run: ExperimentRun) -> Curve:
    """A run's train loss by step from its log (its eval loss when it logged no train loss).
    Blocking: call it in a thread."""
    from agent.jobs.loss import LossTracker

    if not run.log_path:
        return Curve(run.job_id, (), "no log")
    tracker = LossTracker()
    try:
        with open(run.log_path, encoding="utf-8", errors="replace") as log:
            for n, line in enumerate(log):
                if n >= MAX_LOG_LINES:
                    break
                tracker.feed(line)
    except OSError:
        return Curve(run.job_id, (), "log unreadable")
    points = tuple((s, v) for s, v in tracker.series("train") if math.isfinite(v))
    if not points:
        points = tuple((s, v) for s, v in tracker.series("eval") if math.isfinite(v))
        if points:
            return Curve(run.job_id, points, "eval loss")
    return Curve(run.job_id, points, "" if points else "no loss lines")


def read_curves(runs: list[ExperimentRun]) -> tuple[Curve, ...]:
    return tuple(read_curve(r) for r in runs)


class RunCompare(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "Back to the board")]
    DEFAULT_CSS = """
    RunCompare { align: center middle; background: $background 50%; }
    RunCompare > Vertical {
        width: 98%; max-width: 150; height: 92%; border: thick $accent; background: $surface; padding: 0 1;
        border-title-color: $foreground; border-title-style: bold;
    }
    RunCompare #compare-scroll { height: 1fr; }
    RunCompare RunCurves { height: 12; }
    RunCompare .compare-keys { color: $foreground-muted; height: 1; }
    """

    def __init__(self, runs: list[ExperimentRun]):
        super().__init__()
        self.runs = list(runs)

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"Compare {len(self.runs)} run{'s' if len(self.runs) != 1 else ''}"
            with VerticalScroll(id="compare-scroll"):
                yield StreamedMarkdown(id="compare-table")
            yield RunCurves(id="compare-curves")
            yield Static(Content("↑↓ scroll the table · esc back to the board"), classes="compare-keys")

    def on_mount(self) -> None:
        from agent.experiments import compare

        self.query_one("#compare-table", StreamedMarkdown).append(compare(self.runs))
        self.query_one("#compare-scroll").focus()
        self.read_logs()

    @property
    def markdown(self) -> str:
        return self.query_one("#compare-table", StreamedMarkdown).text

    @work(group="curves", exclusive=True, exit_on_error=False)
    async def read_logs(self) -> None:
        curves = await asyncio.to_thread(read_curves, self.runs)
        plot = self.query_one(RunCurves)
        plot.curves = curves
        plot.waiting = False

    def action_close(self) -> None:
        self.dismiss(None)
