"""The experiment board (``/runs``, f4): this project's training runs across sessions, running
ones included, as a sortable table, with everything about the highlighted run below it.

It asks the session for the runs when it opens (``RunsRequested``; the app sends
``list_runs``) and follows what arrives while it is open: the whole list (``show_runs``) or
one run that just ended (``add_run``). ``space`` marks runs, ``c`` compares the marked ones
(or the highlighted one and the next) side by side with their loss curves, ``s``/``S`` walk
the sort column, ``r`` reverses it, ``x`` writes the board as CSV and Markdown to the working
directory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static

from agent.protocol import ExperimentRun
from widgets.jobs_table import format_elapsed
from widgets.run_table import RunTable, format_cost, format_number, hardware, sort_title

MUTED = "$foreground-muted"  # not $text-muted: Content spans render it as pure white (8.2.8)
NO_RUNS = ("No runs yet in this project. Every training job the agent launches becomes a run here when it ends "
           "(its hyper-parameters, losses, duration and cost).")


def run_detail(run: ExperimentRun) -> Content:
    """Everything about one run, a line per fact."""
    head = " · ".join(x for x in (run.status.lower(), f"{hardware(run)} ({run.backend})" if run.flavor else run.backend,
                                  format_elapsed(run.duration_s), format_cost(run),
                                  f"turn {run.turn}" if run.turn else "") if x)

    def row(label: str, value: str) -> Content:
        return Content.assemble((f"{label:<9}", f"bold {MUTED}"), value)

    lines = [Content.assemble((run.job_id, "bold"), "  ", (head, MUTED))]
    if run.command:
        lines.append(row("command", run.command))
    lines.append(row("model", f"{run.model_id or '?'}   dataset {run.dataset_id or '?'}"))
    if run.output_repo:
        lines.append(row("output", run.output_repo))
    if run.hyperparameters:
        lines.append(row("params", " · ".join(f"{k}={v}" for k, v in run.hyperparameters.items())))
    if run.metrics:
        lines.append(row("metrics", " · ".join(f"{k} {format_number(v)}" for k, v in run.metrics.items())))
    if run.log_path:
        lines.append(row("log", run.log_path))
    return Content("\n").join(lines)


def export_names(now: float) -> tuple[str, str]:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"runs-{stamp}.csv", f"runs-{stamp}.md"


def write_exports(runs: list[ExperimentRun], directory: Path, now: float) -> tuple[Path, Path]:
    """The runs as CSV (every parameter and metric) and as Markdown (side by side). Blocking."""
    from agent.experiments import compare, to_csv

    csv_name, md_name = export_names(now)
    csv_path, md_path = directory / csv_name, directory / md_name
    csv_path.write_text(to_csv(runs), encoding="utf-8")
    md_path.write_text(f"# Experiment runs\n\n{compare(runs)}\n", encoding="utf-8")
    return csv_path, md_path


class RunBoard(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("s", "sort(1)", "Sort by the next column"),
        Binding("S,shift+s", "sort(-1)", "Sort by the previous column"),
        Binding("r", "reverse", "Reverse the sort"),
        Binding("x", "export", "Export CSV and Markdown"),
    ]
    DEFAULT_CSS = """
    RunBoard { align: center middle; background: $background 50%; }
    RunBoard > Vertical {
        width: 98%; max-width: 150; height: 92%; border: thick $primary; background: $surface; padding: 0 1;
        border-title-color: $foreground; border-title-style: bold; border-subtitle-color: $foreground-muted;
    }
    RunBoard #runs-empty { color: $foreground-muted; text-style: italic; height: auto; }
    RunBoard #run-detail-scroll { height: 1fr; border-top: solid $panel-lighten-2; }
    RunBoard #runs-message { height: auto; display: none; }
    RunBoard.-message #runs-message { display: block; }
    RunBoard.-error #runs-message { color: $error; }
    RunBoard .runs-keys { color: $foreground-muted; height: 1; }
    """

    class RunsRequested(Message):
        """Ask the session for this project's runs (``list_runs``)."""

    class Exported(Message):
        def __init__(self, csv_path: Path, md_path: Path, count: int):
            super().__init__()
            self.csv_path = csv_path
            self.md_path = md_path
            self.count = count

    def __init__(self, *, cwd: Path | str | None, clock: Callable[[], float] = time.time):
        super().__init__()
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()
        self.clock = clock
        self.runs: list[ExperimentRun] | None = None  # None: not listed yet
        self._mounted = False

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Content(f"Experiment runs · {self.cwd.name or self.cwd}")  # a "[draft]" dir is no markup
            yield Static("Asking the session for this project's runs…", id="runs-empty")
            yield RunTable(id="run-table")
            with VerticalScroll(id="run-detail-scroll"):
                yield Static("", id="run-detail")
            yield Static("", id="runs-message")
            yield Static(Content("↑↓ select · space mark · c compare · s/S sort column · r reverse · x export CSV "
                                 "and Markdown · esc close"), classes="runs-keys")

    @property
    def table(self) -> RunTable:
        return self.query_one(RunTable)

    def on_mount(self) -> None:
        self._mounted = True
        self.table.option_list.focus()
        if self.runs is not None:
            self.show_runs(self.runs)
        self.post_message(self.RunsRequested())

    # ------------------------------------------------------------------ the session's answers

    def show_runs(self, runs: list[ExperimentRun]) -> None:
        """A ``run_list``: every run of the project, as it is now."""
        self.runs = list(runs)
        if not self._mounted:
            return
        empty = self.query_one("#runs-empty", Static)
        empty.display = not runs
        empty.update(Content(NO_RUNS))
        self.table.show(self.runs)

    def add_run(self, run: ExperimentRun) -> None:
        """A ``run_record``: a job ended; its run replaces the running one of the same job."""
        runs = [r for r in (self.runs or []) if r.job_id != run.job_id] + [run]
        self.show_runs(runs)

    def show_message(self, text: str, error: bool = False) -> None:
        if not self._mounted:
            return
        self.query_one("#runs-message", Static).update(Content(("✗ " if error else "") + text))
        self.add_class("-message")
        self.set_class(error, "-error")

    @on(RunTable.Changed)
    def _changed(self) -> None:
        table = self.table
        run = table.highlighted_run
        self.query_one("#run-detail", Static).update(run_detail(run) if run is not None else Content(""))
        runs = table.runs
        running = sum(1 for r in runs if r.status.upper() in ("RUNNING", "QUEUED", "SCHEDULING"))
        parts = [f"{len(runs)} run{'s' if len(runs) != 1 else ''}"]
        if running:
            parts.append(f"{running} running")
        if table.marked:
            parts.append(f"{len(table.marked)} marked")
        parts.append(sort_title(table.sort_key, table.descending, table.columns))
        self.query_one(Vertical).border_subtitle = " · ".join(parts)

    # ------------------------------------------------------------------ keys

    def action_mark(self) -> None:
        self.table.toggle_mark()

    def action_sort(self, step: int) -> None:
        self.table.cycle_sort(step)

    def action_reverse(self) -> None:
        self.table.reverse()

    def compare_selection(self) -> list[ExperimentRun]:
        """The marked runs (with the highlighted one when only one is marked), else the
        highlighted one and the next."""
        table = self.table
        marked = table.marked_runs
        current = table.highlighted_run
        if len(marked) >= 2:
            return marked
        if len(marked) == 1 and current is not None and current.job_id != marked[0].job_id:
            return [marked[0], current]
        other = table.neighbour()
        return [r for r in (current, other) if r is not None]

    def action_compare(self) -> None:
        from mlintern_tui.screens.run_compare import RunCompare

        runs = self.compare_selection()
        if not runs:
            self.show_message("No runs to compare yet.", error=True)
            return
        self.app.push_screen(RunCompare(runs))

    def action_export(self) -> None:
        runs = list(self.table.runs)
        if not runs:
            self.show_message("No runs to export yet.", error=True)
            return
        self._export(runs)

    @work(group="export", exclusive=True, exit_on_error=False)
    async def _export(self, runs: list[ExperimentRun]) -> None:
        try:
            csv_path, md_path = await asyncio.to_thread(write_exports, runs, self.cwd, self.clock())
        except OSError as exc:
            self.show_message(f"Could not write the export to {self.cwd}: {exc.strerror or exc}. "
                              "Check that the directory is writable.", error=True)
            return
        self.show_message(f"Exported {len(runs)} runs to {csv_path.name} and {md_path.name} in {self.cwd}")
        self.post_message(self.Exported(csv_path, md_path, len(runs)))

    def action_close(self) -> None:
        self.dismiss(None)
