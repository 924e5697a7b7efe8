"""What the Jobs pane knows of one job: ``JobRecord`` (status, times, a bounded buffer of
display lines, its loss tracker) and the frozen ``JobRow`` the table draws from it, plus the
rules both follow (how a raw log line is shown, what a job has cost so far).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol

LINE_CAP = 5000  # lines kept per job (the full log is on disk, see agent/jobs/monitor.py)
MAX_LINE_CHARS = 2000  # a tqdm line can be megabytes; the Log measures every line it gets
FINAL_STAGES = frozenset({"COMPLETED", "ERROR", "CANCELED", "DELETED"})
#: stage -> (mark, label, theme style), for the Jobs table and the away card
STAGES: dict[str, tuple[str, str, str]] = {
    "QUEUED": ("○", "queued", "$foreground-muted"),
    "RUNNING": ("●", "running", "$accent"),
    "COMPLETED": ("✓", "completed", "$success"),
    "ERROR": ("✗", "error", "$error"),
    "CANCELED": ("⊘", "canceled", "$warning"),
    "DELETED": ("–", "deleted", "$foreground-muted"),
}
UNKNOWN_STAGE = ("?", "unknown", "$foreground-muted")


class LossPoint(Protocol):
    @property
    def step(self) -> int: ...

    @property
    def loss(self) -> float: ...


class LossSource(Protocol):
    """What the pane needs of a loss parser. ``agent.jobs.loss.LossTracker`` is one; widgets
    may import only ``agent.protocol`` from the engine, so the app passes the class in."""

    @property
    def latest(self) -> LossPoint | None: ...

    def feed(self, line: str) -> object | None: ...

    def feed_many(self, lines: list[str]) -> bool: ...

    def series(self, kind: Literal["train", "eval"] = "train") -> tuple[tuple[int, float], ...]: ...


LossSourceFactory = Callable[[], LossSource]


@dataclass(frozen=True)
class JobRow:
    """What the table shows for one job, already worked out by the pane."""

    job_id: str
    status: str = "UNKNOWN"
    flavor: str = ""
    backend: str = ""
    price_per_hour: float | None = None
    elapsed_s: float | None = None
    cost_usd: float | None = None
    last_line: str = ""


_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
# str.splitlines() breaks on these too: the Log would turn one line into several
_LINE_BREAKS = re.compile("[\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def display_line(raw: str) -> str:
    """A raw log line as the Log shows it: the last frame of a ``\\r``-redrawn progress bar,
    no ANSI escapes, one line, bounded, never empty (the Log drops "" and the line numbers
    the search keeps would drift)."""
    line = raw
    if "\r" in line:
        frames = [frame for frame in line.split("\r") if frame.strip()]
        line = frames[-1] if frames else ""
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    if _LINE_BREAKS.search(line):
        line = _LINE_BREAKS.sub(" ", line)
    if len(line) > MAX_LINE_CHARS:
        line = line[:MAX_LINE_CHARS - 1] + "…"
    return line or " "


def cost_so_far(backend: str, status: str, price_per_hour: float | None, elapsed_s: float | None,
                reported_usd: float | None) -> float | None:
    """Dollars spent by a job: nothing on this machine; the monitor's figure once the job has
    ended; price × elapsed while it runs; None when there is no price to multiply by."""
    if backend == "local":
        return 0.0
    if status in FINAL_STAGES and reported_usd is not None:
        return reported_usd
    if price_per_hour is None:
        return reported_usd
    if elapsed_s is None:
        return 0.0 if status == "QUEUED" else reported_usd
    return price_per_hour * elapsed_s / 3600


@dataclass
class JobRecord:
    """Everything the pane keeps about one job. Times are on the pane's clock."""

    job_id: str
    cap: int = LINE_CAP
    status: str = "UNKNOWN"
    flavor: str = ""
    backend: str = ""
    price: float | None = None
    reported_cost: float | None = None  # the monitor's cost so far (its final cost at the end)
    detail: str = ""
    url: str | None = None
    started: float | None = None
    finished: float | None = None
    anchored: bool = False  # start time derived from the monitor's cost so far
    lines: deque[str] = field(init=False)
    total_lines: int = 0  # every line ever appended (the buffer keeps the newest ``cap``)
    last_line: str = ""  # the newest line that is not blank
    tracker: LossSource | None = None  # None: no loss curve for this pane

    def __post_init__(self) -> None:
        self.lines = deque(maxlen=self.cap)

    @property
    def finished_stage(self) -> bool:
        return self.status in FINAL_STAGES

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        return max(0.0, (self.finished if self.finished is not None else now) - self.started)

    def apply(self, status: str, flavor: str, url: str | None, detail: str, cost_usd: float | None,
              price_per_hour: float | None, backend: str, now: float) -> None:
        """Take in a status update."""
        self.status = status or self.status
        self.flavor = flavor or self.flavor
        self.backend, self.price, self.detail = backend, price_per_hour, detail
        self.url = url or self.url
        if cost_usd is not None:
            self.reported_cost = cost_usd
        if self.status == "RUNNING" and self.started is None:
            self.started = now
        if self.finished_stage and self.finished is None:
            self.finished = now
        if not self.anchored and backend != "local" and price_per_hour and cost_usd and self.status != "QUEUED":
            # the monitor's cost is price × its own elapsed time: anchoring on it makes a job
            # picked up mid-run (or only seen finishing) show its true elapsed time and cost
            self.started = (self.finished if self.finished is not None else now) - cost_usd / price_per_hour * 3600
            self.anchored = True

    def append(self, raw_lines: list[str]) -> bool:
        """Buffer a batch of raw lines; True when one of them held a loss value."""
        found = False
        if self.tracker is not None:
            found = self.tracker.feed_many(raw_lines)
        shown = [display_line(raw) for raw in raw_lines]
        self.lines.extend(shown)
        self.total_lines += len(shown)
        self.last_line = next((line for line in reversed(shown) if not line.isspace()), self.last_line)
        return found

    def row(self, now: float) -> JobRow:
        elapsed = self.elapsed(now)
        return JobRow(job_id=self.job_id, status=self.status, flavor=self.flavor, backend=self.backend,
                      price_per_hour=self.price, elapsed_s=elapsed,
                      cost_usd=cost_so_far(self.backend, self.status, self.price, elapsed, self.reported_cost),
                      last_line=self.last_line)
