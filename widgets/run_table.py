"""The experiment board's table: one line per run (job, status, hardware, model, dataset, the
hyper-parameters that differ between the runs, final / best / eval loss, an eval metric,
duration, cost), sorted by a column either way, with runs marked for comparison.

A header line over an OptionList of a few dozen lines: every change (a new run, another sort,
a mark) redraws the lines, keeping the highlighted run by job id. Columns are chosen for the
width: the least useful fold away first, the model and dataset take what is left (the detail
below the table shows everything about the highlighted run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from agent.protocol import ExperimentRun
from widgets.content_join import join_line
from widgets.job_record import STAGES, UNKNOWN_STAGE
from widgets.jobs_table import format_elapsed

MUTED = "$foreground-muted"  # not $text-muted: Content spans render it as pure white (8.2.8)
MARK = "◆"
GAP = 1
#: the sort before any key is pressed: newest run first
START_SORT = "started"
#: hyper-parameters in the order they say most about a run; the rest follow by name
PREFERRED_PARAMS = (
    "learning_rate", "lr", "num_train_epochs", "epochs", "max_steps", "per_device_train_batch_size", "batch_size",
    "train_batch_size", "gradient_accumulation_steps", "lora_r", "r", "lora_alpha", "lora_dropout", "beta",
    "warmup_ratio", "warmup_steps", "weight_decay", "max_seq_length", "max_length", "lr_scheduler_type", "optim",
    "num_generations", "temperature", "seed",
)
#: parameters that name things the board shows elsewhere (or nothing about the training)
NOT_PARAMS = frozenset({
    "output_dir", "hub_model_id", "push_to_hub", "model_name_or_path", "model", "model_id", "base_model", "model_name",
    "dataset_name", "dataset", "dataset_id", "data", "train_dataset", "run_name", "logging_dir", "report_to",
    "logging_steps", "save_steps", "eval_steps", "save_strategy", "logging_strategy",
})
PARAM_TITLES = {
    "learning_rate": "lr", "num_train_epochs": "epochs", "per_device_train_batch_size": "batch",
    "train_batch_size": "batch", "batch_size": "batch", "gradient_accumulation_steps": "grad_acc",
    "max_seq_length": "seq_len", "max_length": "max_len", "warmup_ratio": "warmup", "weight_decay": "wd",
    "lr_scheduler_type": "sched", "lora_dropout": "lora_do",
}
#: eval numbers that are not a quality metric
NOT_METRICS = frozenset({"eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "eval_epoch"})
METRIC_WORDS = ("accuracy", "acc", "f1", "exact_match", "rouge", "bleu", "pass", "score", "precision", "recall")


# --------------------------------------------------------------------------- what the runs differ in

def differing_params(runs: tuple[ExperimentRun, ...] | list[ExperimentRun]) -> list[str]:
    """Hyper-parameters whose value is not the same in every run (a missing one counts), most
    telling first."""
    names = {k for r in runs for k in r.hyperparameters if k not in NOT_PARAMS}
    differing = [k for k in names if len({r.hyperparameters.get(k) for r in runs}) > 1]
    order = {k: i for i, k in enumerate(PREFERRED_PARAMS)}
    return sorted(differing, key=lambda k: (order.get(k, len(order)), k))


def eval_metric(runs: tuple[ExperimentRun, ...] | list[ExperimentRun]) -> str | None:
    """The eval metric the board shows: an accuracy, F1, ROUGE… of the last evaluation."""
    names = sorted({k for r in runs for k in r.metrics if k.startswith("eval_") and k not in NOT_METRICS})
    for word in METRIC_WORDS:
        for name in names:
            if word in name:
                return name
    return names[0] if names else None


def param_title(name: str) -> str:
    return PARAM_TITLES.get(name, name)


def metric_title(name: str) -> str:
    return name.removeprefix("eval_")


def short_repo(repo: str | None) -> str:
    """"Qwen/Qwen2.5-0.5B" -> "Qwen2.5-0.5B": the name says more than the owner in a column."""
    if not repo:
        return "?"
    return repo.rsplit("/", 1)[-1]


def format_number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.4g}"


def format_cost(run: ExperimentRun) -> str:
    if run.backend == "local":
        return "$0"
    if run.cost_usd is None:
        return "?"
    return f"${run.cost_usd:.2f}" if run.cost_usd >= 0.01 or run.cost_usd == 0 else f"${run.cost_usd:.3f}"


def hardware(run: ExperimentRun) -> str:
    return run.flavor or run.backend


# --------------------------------------------------------------------------- columns

@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int
    #: columns with the lowest priority fold away first when the table is narrow
    priority: int
    right: bool = False
    #: cells the column may widen to with room to spare
    grow_to: int = 0


def _param_width(name: str, runs: tuple[ExperimentRun, ...]) -> int:
    values = [len(r.hyperparameters.get(name, "–")) for r in runs]
    return max(4, min(10, max([len(param_title(name)) + 1, *values])))  # + 1: the sort arrow


def all_columns(runs: tuple[ExperimentRun, ...]) -> list[Column]:
    """Every column the runs could fill, in display order. Widths leave room for the title's
    sort arrow; the hyper-parameters that differ outrank the hardware and the dataset, which
    are often the same in every run (the detail under the table shows them)."""
    cols = [Column("job", "job", 10, 100), Column("status", "status", 11, 95), Column("hardware", "hardware", 10, 58),
            Column("model", "model", 12, 85, grow_to=26), Column("dataset", "dataset", 12, 50, grow_to=24)]
    for n, name in enumerate(differing_params(runs)[:4]):
        cols.append(Column(f"param:{name}", param_title(name), _param_width(name, runs), (84, 83, 72, 60)[n]))
    cols += [Column("final_loss", "loss", 6, 90, right=True), Column("best_loss", "best", 6, 89, right=True),
             Column("best_eval_loss", "eval", 6, 80, right=True)]
    metric = eval_metric(runs)
    if metric is not None:
        title = metric_title(metric)[:8]
        cols.append(Column(f"metric:{metric}", title, max(7, len(title) + 1), 70, right=True))
    cols += [Column("duration", "time", 6, 76, right=True), Column("cost", "cost", 6, 78, right=True)]
    return cols


def columns_for(runs: tuple[ExperimentRun, ...], width: int) -> list[Column]:
    """The columns that fit in ``width`` cells (after the mark), the model and dataset widened
    with the room left."""
    cols = all_columns(runs)
    if len(runs) > 1:  # a model, dataset or hardware every run shares says nothing between rows
        same = {c.key for c in cols if c.key in ("model", "dataset", "hardware")
                and len({cell(r, c.key)[0] for r in runs}) == 1}
        cols = [Column(c.key, c.title, c.width, 30, c.right, c.grow_to) if c.key in same else c for c in cols]

    def needed(cs: list[Column]) -> int:
        return 2 + sum(c.width for c in cs) + GAP * (len(cs) - 1)  # the mark, the gaps

    while needed(cols) > width and len(cols) > 3:
        cols.remove(min(cols, key=lambda c: c.priority))
    spare = width - needed(cols)
    out = []
    for c in cols:
        if c.grow_to > c.width and spare > 0:
            extra = min(spare, c.grow_to - c.width)
            spare -= extra
            c = Column(c.key, c.title, c.width + extra, c.priority, c.right, c.grow_to)
        out.append(c)
    return out


# --------------------------------------------------------------------------- cells and sorting

def sort_value(run: ExperimentRun, key: str) -> Any:
    """What a column sorts by (None: no value, always last)."""
    if key == START_SORT:
        return run.started_at
    if key == "job":
        return run.job_id
    if key == "status":
        return run.status
    if key == "hardware":
        return hardware(run)
    if key == "model":
        return run.model_id
    if key == "dataset":
        return run.dataset_id
    if key == "duration":
        return run.duration_s
    if key == "cost":
        return 0.0 if run.backend == "local" else run.cost_usd
    if key.startswith("param:"):
        value = run.hyperparameters.get(key[6:])
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            return value
    name = key.split(":", 1)[-1]
    value = run.metrics.get(name)
    return value if value is None or math.isfinite(value) else None


def sort_runs(runs: tuple[ExperimentRun, ...], key: str, descending: bool) -> tuple[ExperimentRun, ...]:
    """Sorted by ``key``; runs without a value last either way; numbers before words."""
    valued = [r for r in runs if sort_value(r, key) is not None]
    empty = [r for r in runs if sort_value(r, key) is None]

    def order(run: ExperimentRun) -> tuple:
        value = sort_value(run, key)
        return (1, value, run.job_id) if isinstance(value, str) else (0, value, run.job_id)

    numbers = sorted((r for r in valued if not isinstance(sort_value(r, key), str)), key=order, reverse=descending)
    words = sorted((r for r in valued if isinstance(sort_value(r, key), str)), key=order, reverse=descending)
    return (*numbers, *words, *empty)


def cell(run: ExperimentRun, key: str) -> tuple[str, str]:
    """(text, style) of one cell."""
    if key == "job":
        return run.job_id, "bold"
    if key == "status":
        mark, label, style = STAGES.get(run.status.upper(), UNKNOWN_STAGE)
        return f"{mark} {label if label != 'unknown' else run.status.lower()}", style
    if key == "hardware":
        return hardware(run), ""
    if key == "model":
        return short_repo(run.model_id), ""
    if key == "dataset":
        return short_repo(run.dataset_id), MUTED
    if key == "duration":
        return format_elapsed(run.duration_s), ""
    if key == "cost":
        return format_cost(run), ""
    if key.startswith("param:"):
        return run.hyperparameters.get(key[6:], "–"), "$secondary"
    return format_number(sort_value(run, key)), "$accent" if key == "best_loss" else ""


def _fit(text: str, col: Column, style: str) -> Content:
    width = col.width
    if len(text) > width:
        text = text[: width - 1] + "…"
    text = text.rjust(width) if col.right else text.ljust(width)
    return Content.styled(text, style) if style else Content(text)


def run_row(run: ExperimentRun, cols: list[Column], marked: bool) -> Content:
    mark = Content.styled(MARK + " ", "bold $warning") if marked else Content("  ")
    cells = []
    for c in cols:
        text, style = cell(run, c.key)
        cells.append(_fit(text, c, style))
    return Content.assemble(mark, join_line(" " * GAP, cells))


def header_row(cols: list[Column], sort_key: str, descending: bool) -> Content:
    arrow = "▼" if descending else "▲"
    parts = []
    for c in cols:
        title = c.title + (arrow if c.key == sort_key else "")
        parts.append(_fit(title, c, f"bold {MUTED}" if c.key != sort_key else "bold $accent"))
    return Content.assemble("  ", join_line(" " * GAP, parts))


def sort_title(sort_key: str, descending: bool, cols: list[Column]) -> str:
    """The sort in words, for the board's border."""
    if sort_key == START_SORT:
        return "newest first" if descending else "oldest first"
    title = next((c.title for c in cols if c.key == sort_key), sort_key)
    return f"by {title}, {'highest' if descending else 'lowest'} first"


# --------------------------------------------------------------------------- the widget

class RunTable(Vertical):
    """The runs as sorted; ``highlighted_run`` is the one the detail shows."""

    DEFAULT_CSS = """
    RunTable { height: auto; max-height: 60%; }
    RunTable > .run-header { height: 1; }
    RunTable > OptionList { height: auto; max-height: 100%; border: none; padding: 0; background: $surface; }
    RunTable > OptionList:focus { border: none; background-tint: $foreground 0%; }
    RunTable > OptionList > .option-list--option-highlighted,
    RunTable > OptionList:focus > .option-list--option-highlighted { color: $foreground; background: $accent 25%; }
    """

    class Changed(Message):
        """The highlighted run, the sort or the marks changed."""

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.runs: tuple[ExperimentRun, ...] = ()  # as sorted
        self.sort_key = START_SORT
        self.descending = True
        self.marked: frozenset[str] = frozenset()
        self.columns: list[Column] = []
        self._drawn_width = 0

    def compose(self) -> ComposeResult:
        yield Static("", classes="run-header")
        yield OptionList()

    @property
    def option_list(self) -> OptionList:
        return self.query_one(OptionList)

    @property
    def highlighted_run(self) -> ExperimentRun | None:
        index = self.option_list.highlighted
        if index is None or not 0 <= index < len(self.runs):
            return None
        return self.runs[index]

    @property
    def marked_runs(self) -> list[ExperimentRun]:
        return [r for r in self.runs if r.job_id in self.marked]

    def show(self, runs: list[ExperimentRun] | tuple[ExperimentRun, ...]) -> None:
        """The runs the session listed (or one more that ended): redrawn, highlight kept."""
        self.runs = tuple(runs)
        self.marked = self.marked & {r.job_id for r in runs}
        self._redraw()

    def sort_keys(self) -> list[str]:
        """What ``s`` walks through: the start time, then each column shown."""
        return [START_SORT, *(c.key for c in self.columns)]

    def cycle_sort(self, step: int) -> None:
        keys = self.sort_keys()
        index = keys.index(self.sort_key) if self.sort_key in keys else 0
        self.sort_key = keys[(index + step) % len(keys)]
        # losses read best lowest first; the rest (and the start time) newest / highest first
        self.descending = not (self.sort_key.endswith("loss") or self.sort_key in ("job", "status", "model",
                                                                                   "dataset", "hardware"))
        self._redraw()

    def reverse(self) -> None:
        self.descending = not self.descending
        self._redraw()

    def toggle_mark(self) -> None:
        run = self.highlighted_run
        if run is not None:
            self.marked = self.marked ^ {run.job_id}
            self._redraw()

    def neighbour(self) -> ExperimentRun | None:
        """The run after the highlighted one (or before it, at the bottom)."""
        index = self.option_list.highlighted
        if index is None or len(self.runs) < 2:
            return None
        return self.runs[index + 1] if index + 1 < len(self.runs) else self.runs[index - 1]

    def _width(self) -> int:
        return self.content_region.width or 110  # before the first layout: redrawn on resize

    def _redraw(self) -> None:
        keep = self.highlighted_run
        width = self._width()
        self._drawn_width = width
        self.columns = columns_for(self.runs, width)
        if self.sort_key not in self.sort_keys():
            self.sort_key, self.descending = START_SORT, True
        self.runs = sort_runs(self.runs, self.sort_key, self.descending)
        self.query_one(".run-header", Static).update(header_row(self.columns, self.sort_key, self.descending))
        options = self.option_list
        options.clear_options()
        options.add_options([Option(run_row(r, self.columns, r.job_id in self.marked), id=r.job_id) for r in self.runs])
        ids = [r.job_id for r in self.runs]
        if ids:
            options.highlighted = ids.index(keep.job_id) if keep is not None and keep.job_id in ids else 0
        self.post_message(self.Changed())

    def on_resize(self, event: events.Resize) -> None:
        if self._width() != self._drawn_width:
            self._redraw()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self.post_message(self.Changed())
