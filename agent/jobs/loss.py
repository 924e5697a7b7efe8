"""Loss curves read from training logs as they stream.

Training code prints metrics in a handful of shapes: Transformers/TRL ``Trainer`` dicts (a
Python repr, often glued to a tqdm bar by ``\\r``), JSON lines, ``key=value`` / ``key: value``
prints (nanoGPT, the PyTorch examples, hand-written loops) and tqdm postfixes. Rather than one
regex per shape, a line is read as a flat list of ``key <sep> number`` pairs, which covers all
of them, and the keys are then classified (train loss, eval loss, step, everything else).

``LossTracker.feed`` runs on every log line of a job that may print 20,000 lines a second, so
a line that cannot hold a loss is rejected with one substring test, and only a bounded window
of a huge line is ever scanned. Nothing here raises on any input.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal, Mapping

MetricKind = Literal["train", "eval", "final"]

#: a line longer than this is only scanned around its first "loss"
WINDOW = 4096
MAX_EXTRA = 32

_NUMBER = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf(?:inity)?)"
# "train loss 2.1" (nanoGPT), "Validation Loss: 0.6": a qualifier word joined to the key
_QUALIFIER = r"(?:(?:train(?:ing)?|val(?:id(?:ation)?)?|eval(?:uation)?|test|dev|avg|average|mean|total|running)\s+)?"
_PAIR = re.compile(
    r"(?:['\"](?P<qkey>[A-Za-z_][^'\"\n]{0,63})['\"]\s*:\s*"  # 'loss': / "loss":
    rf"|(?<![\w./-])(?P<key>{_QUALIFIER}[A-Za-z_][\w./-]{{0,63}})(?:\s*[:=]\s*|\s+))"  # loss= / loss: / "loss 0.5"
    r"\[?\s*['\"]?"  # Step [100/600]; 'loss': '0.6899' (some loggers format numbers first)
    r"(?:(?:np\.)?float\d*\(|tensor\(|array\()?"  # numpy 2 and torch reprs: np.float64(0.5)
    rf"(?P<val>{_NUMBER})(?![\w.])",
    re.IGNORECASE,
)
# "120/1000" in a tqdm bar, "[10/500]", "200/ 2983 batches": a step when no key names one
_FRACTION = re.compile(r"(?<![\w./:])(\d+)\s*/\s*(\d+)(?![\w./:])")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: loss lines read in full per ``feed_many`` batch before it reads only some of them: the
#: app's batches come ~15 times a second, so up to ~3,000 lines a second are all read, and a
#: whole log read back at once still gives a curve of 200+ points (a plot is ~100 cells wide)
BATCH_BUDGET = 200

TRAIN_KEYS = ("loss", "train_loss", "training_loss", "train_loss_step", "loss_train", "train_lm_loss",
              "lm_loss", "total_loss", "avg_loss", "average_loss", "mean_loss", "running_loss", "batch_loss",
              "smoothed_loss")
EVAL_KEYS = ("eval_loss", "val_loss", "valid_loss", "validation_loss", "evaluation_loss", "test_loss",
             "dev_loss", "loss_val", "loss_eval", "val_loss_epoch")
STEP_KEYS = ("global_step", "train_global_step", "step", "steps", "train_step", "iter", "iteration",
             "update", "num_updates")
_EVAL_PREFIXES = ("eval_", "val_", "valid_", "validation_", "test_", "dev_")
_NORMALISE = str.maketrans({" ": "_", "/": "_", "-": "_", ".": "_"})


@dataclass(frozen=True, slots=True)
class MetricPoint:
    step: int
    loss: float
    kind: MetricKind = "train"
    extra: Mapping[str, float] = field(default_factory=dict, compare=False)
    #: the line named no step: ``step`` continues from the previous point
    step_inferred: bool = False

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss)


class _Series:
    """At most ``cap`` points spread evenly over the whole run: when full, every other point is
    dropped and from then on only every ``stride``-th point is kept, so the start of a long
    run stays on the plot. The newest point is always kept as the tail."""

    __slots__ = ("cap", "stride", "count", "samples", "tail")

    def __init__(self, cap: int):
        self.cap = max(2, cap)
        self.stride = 1
        self.count = 0
        self.samples: list[MetricPoint] = []
        self.tail: MetricPoint | None = None

    def add(self, point: MetricPoint) -> None:
        if self.count % self.stride == 0:
            self.samples.append(point)
            self.tail = None
            if len(self.samples) >= self.cap:
                del self.samples[1::2]
                self.stride *= 2
        else:
            self.tail = point
        self.count += 1

    def points(self) -> list[MetricPoint]:
        return self.samples + [self.tail] if self.tail is not None else list(self.samples)

    @property
    def last(self) -> MetricPoint | None:
        return self.tail or (self.samples[-1] if self.samples else None)


def _mentions_loss(text: str) -> bool:
    return "loss" in text or "Loss" in text or "LOSS" in text


def _always_read(line: str) -> bool:
    """A loss line read however fast lines come: a diverged (nan/inf) value, a run's closing
    summary, an eval/val/test/dev loss, a line naming more than one loss, an odd shape ("Loss",
    "LOSS"). Rare, and each one matters. Substring tests only (~0.8 us; a regex took ~5 us, and
    this runs on every loss line of a flood)."""
    if "nan" in line or "NaN" in line or "inf" in line or "Inf" in line or "runtime" in line:
        return True
    at = line.find("loss")
    if at < 0 or line.find("loss", at + 4) >= 0:
        return True
    head = line[max(0, at - 12):at].lower()  # eval_loss, val_loss, "Validation loss", test_loss
    return "val" in head or "test" in head or "dev" in head


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _as_step(value: float | None) -> int | None:
    if value is None or not math.isfinite(value) or value < 0 or value > 1e12 or not value.is_integer():
        return None
    return int(value)


def _fraction_step(text: str, last: bool) -> int | None:
    found = None
    if "/" not in text:
        return None
    for match in _FRACTION.finditer(text):
        head = text[max(0, match.start() - 9):match.start()].lower()
        if "epoch" in head:  # "Epoch [1/10]" counts epochs, not steps
            continue
        n, total = int(match.group(1)), int(match.group(2))
        if n <= total:
            found = n
            if not last:
                break
    return found


class LossTracker:
    """Feed it log lines; it keeps the train and eval loss curves, bounded."""

    def __init__(self, max_points: int = 5000, max_eval_points: int = 1000):
        self._train = _Series(max_points)
        self._eval = _Series(max_eval_points)
        self.final: MetricPoint | None = None  # Trainer's end-of-run summary (mean train loss)
        self.non_finite = 0
        self.first_non_finite: MetricPoint | None = None
        self.lines_parsed = 0
        self._last_raw_step = -1
        self._offset = 0
        self._last_step = 0  # on the plot's x-axis, after any offset
        self._skipped_any = False  # feed_many passed over a train line (its step still counts)

    # -- reading ---------------------------------------------------------------------------

    @property
    def latest(self) -> MetricPoint | None:
        """The newest finite train point (the newest eval one if there is no train loss)."""
        return self._train.last or self._eval.last

    @property
    def latest_eval(self) -> MetricPoint | None:
        return self._eval.last

    @property
    def points(self) -> tuple[MetricPoint, ...]:
        """Every kept train and eval point, ordered by step (train first at equal steps)."""
        merged = self._train.points() + self._eval.points()
        merged.sort(key=lambda p: (p.step, p.kind != "train"))
        return tuple(merged)

    def series(self, kind: MetricKind = "train") -> tuple[tuple[int, float], ...]:
        """``(step, loss)`` pairs ready for a plot."""
        source = self._eval if kind == "eval" else self._train
        return tuple((p.step, p.loss) for p in source.points())

    # -- writing ---------------------------------------------------------------------------

    def feed(self, line: str) -> MetricPoint | None:
        """Read one log line; return the metric point it holds, if any. Never raises."""
        # the one check every line pays (three C-speed substring scans, no copy of the line)
        if not _mentions_loss(line):
            return None
        try:
            return self._feed(line)
        except Exception:  # a log line must never take the job monitor down
            return None

    def feed_many(self, lines: list[str], budget: int = BATCH_BUDGET) -> bool:
        """Read a batch of log lines; True if one held a metric. A job printing thousands of
        loss lines a second needs no more than ``budget`` of them per batch (the app's batches
        come ~15 times a second; the curve keeps 5,000 points): past that, every k-th train
        line is read, plus the batch's newest one (the latest value is exact) and every eval,
        nan/inf or summary line. Lines skipped still move an inferred step on, so the x-axis
        is the same as if every line had been read. Reading every line cost ~18 us each: at
        20,000 lines/s a third of the app's time, and keys waited."""
        loss_lines = [line for line in lines if _mentions_loss(line)]
        n = len(loss_lines)
        stride = -(-n // budget) if n > budget else 1
        always = [_always_read(line) for line in loss_lines] if stride > 1 else [True] * n
        # the batch's newest train line is read too: the value the table shows is exact
        newest = next((i for i in range(n - 1, -1, -1) if not always[i]), -1)
        found = False
        for i, line in enumerate(loss_lines):
            if always[i] or i % stride == 0 or i == newest:
                found = self.feed(line) is not None or found
            else:  # its step still counts, as if it had been read
                self._advance()
        return found

    def _feed(self, line: str) -> MetricPoint | None:
        text, context = line, ""
        if "\r" in line:
            # a tqdm bar redrawn with \r, then the metrics: read the metrics, keep the bar
            # (the step it shows) as context
            parts = line.split("\r")
            for i in range(len(parts) - 1, -1, -1):
                if _mentions_loss(parts[i]):
                    text, context = parts[i], "\r".join(parts[:i])[-400:]
                    break
        if len(text) > WINDOW:
            at = min((i for i in (text.find("loss"), text.find("Loss"), text.find("LOSS")) if i >= 0), default=0)
            text = text[max(0, at - WINDOW // 2):at + WINDOW // 2]
        if "\x1b" in text:
            text = _ANSI.sub("", text)

        values: dict[str, float] = {}
        originals: dict[str, str] = {}
        for quoted, bare, number in _PAIR.findall(text):
            key = quoted or bare
            norm = key.lower().translate(_NORMALISE)
            if norm not in values and (value := _float(number)) is not None:  # the first occurrence wins
                values[norm] = value
                originals[norm] = key
        if not values:
            return None

        train_key = next((k for k in TRAIN_KEYS if k in values), None)
        eval_key = next((k for k in EVAL_KEYS if k in values), None)
        if eval_key is None:
            eval_key = next((k for k in values if k.endswith("loss") and k.startswith(_EVAL_PREFIXES)), None)
        if train_key is None and eval_key is None:
            return None
        self.lines_parsed += 1

        raw_step = next((s for k in STEP_KEYS if k in values and (s := _as_step(values[k])) is not None), None)
        if raw_step is None and train_key is not None:
            # no key names the step: a fraction in the text ("[10/500]", a tqdm bar's
            # "120/1000"), else the bar the metrics were printed under
            raw_step = _fraction_step(text, last=False)
            if raw_step is None and context:
                raw_step = _fraction_step(context, last=True)
        used = {train_key, eval_key, *STEP_KEYS}
        extra = {originals[k]: v for k, v in values.items() if k not in used and not math.isnan(v)}
        if len(extra) > MAX_EXTRA:
            extra = dict(list(extra.items())[:MAX_EXTRA])

        if train_key == "train_loss" and "train_runtime" in values:
            # Trainer's closing summary: the mean loss of the whole run, not a point on the curve
            self.final = MetricPoint(self._last_step, values[train_key], "final", extra)
            return self.final

        if train_key is None:
            step = self._place(raw_step, advance=False)
            return self._record(MetricPoint(step, values[eval_key], "eval", extra, raw_step is None))
        step = self._place(raw_step, advance=True)
        point = MetricPoint(step, values[train_key], "train", extra, raw_step is None)
        if eval_key is not None:
            # nanoGPT's "train loss .., val loss ..", Lightning's postfix: an eval value
            # repeated on every refresh is recorded once
            last_eval = self._eval.last
            if last_eval is None or last_eval.loss != values[eval_key]:
                self._record(MetricPoint(step, values[eval_key], "eval", {}, raw_step is None))
        return self._record(point)

    def _place(self, raw: int | None, advance: bool) -> int:
        """The x-axis position of a point. Steps that restart (a per-epoch counter, a second
        training phase in the same job) continue from where the curve was, so the x-axis
        only moves forward."""
        if raw is None:
            if advance:
                self._advance()
            return self._last_step
        if advance:
            if raw < self._last_raw_step:
                self._offset = self._last_step
            self._last_raw_step = raw
            self._last_step = raw + self._offset
            return self._last_step
        return raw + self._offset

    def _advance(self) -> None:
        """One more train line without a step of its own: the curve's first point is step 0."""
        self._last_step += 1 if (self._train.count or self._skipped_any) else 0
        self._skipped_any = True

    def _record(self, point: MetricPoint) -> MetricPoint:
        if not point.finite:
            # a diverged run prints nan/inf: worth reporting, impossible to plot
            self.non_finite += 1
            if self.first_non_finite is None:
                self.first_non_finite = point
            return point
        (self._eval if point.kind == "eval" else self._train).add(point)
        return point
