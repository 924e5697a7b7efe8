"""A training job's loss curve, drawn in braille in whatever space the pane gives it.

The owner sets ``points`` (train) and ``eval_points`` as tuples of ``(step, loss)``; the
widget knows nothing about logs. Each braille cell is 2 x 4 dots, so a 40-column plot has
80 x-positions: the points are bucketed into those dot columns (mean per column) and
consecutive columns are joined, which keeps a 5,000-point redraw to a few milliseconds.
"""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

Series = tuple[tuple[int, float], ...]

TRAIN_STYLE = "$accent"
EVAL_STYLE = "bold $warning"
# not $text-muted: it is "auto 60%", which Content spans render as pure white (textual 8.2.8)
AXIS_STYLE = "$foreground-muted"
EVAL_MARK = "●"
EMPTY_TEXT = "waiting for loss lines…"

# bit of the braille dot at (x 0-1, y 0-3) inside a cell, per the Unicode braille layout
_DOT_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


def format_loss(value: float) -> str:
    return f"{value:.4g}"


def axis_labels(low: float, high: float) -> tuple[str, str]:
    """Min and max labels with just enough digits to tell them apart."""
    for digits in range(3, 8):
        top, bottom = f"{high:.{digits}g}", f"{low:.{digits}g}"
        if top != bottom or low == high:
            return bottom, top
    return bottom, top


def plot_title(points: Series, eval_points: Series) -> tuple[str, str]:
    """Border title and subtitle: the newest train loss and step, the newest eval loss."""
    if points:
        step, loss = points[-1]
        title = f"loss {format_loss(loss)} @ step {step:,}"
    elif eval_points:
        step, loss = eval_points[-1]
        title = f"eval loss {format_loss(loss)} @ step {step:,}"
    else:
        title = "loss"
    subtitle = ""
    if points and eval_points:
        step, loss = eval_points[-1]
        subtitle = f"eval {format_loss(loss)} @ {step:,}"
    return title, subtitle


def _column_means(points: Series, first: int, span: int, columns: int) -> list[float | None]:
    """Mean loss of the points falling in each dot column, None where none does."""
    sums = [0.0] * columns
    counts = [0] * columns
    last = columns - 1
    for step, loss in points:
        x = round((step - first) * last / span) if span else last
        if 0 <= x <= last:
            sums[x] += loss
            counts[x] += 1
    return [total / n if n else None for total, n in zip(sums, counts)]


def plot_lines(points: Series, eval_points: Series, width: int, height: int) -> list[Content]:
    """The chart as ``height`` lines of ``width`` cells: y labels, axis, braille curve, eval
    markers and a bottom line with the step range."""
    if width <= 0 or height <= 0:
        return []
    if not points and not eval_points:
        lines = [Content.blank(width) for _ in range(height)]
        lines[(height - 1) // 2] = Content.styled(EMPTY_TEXT[:width].center(width), f"italic {AXIS_STYLE}")
        return lines

    values = [loss for _, loss in points] + [loss for _, loss in eval_points]
    steps = [step for step, _ in points] + [step for step, _ in eval_points]
    low, high = min(values), max(values)
    first, final = min(steps), max(steps)
    bottom_label, top_label = axis_labels(low, high)
    label_width = max(len(bottom_label), len(top_label))
    plot_rows = max(1, height - 1)  # the last line is the step axis
    plot_width = width - label_width - 1
    if plot_width < 4:  # too narrow for labels: curve only
        label_width, plot_width = 0, width - 1

    dot_rows, dot_columns = plot_rows * 4, plot_width * 2
    span = final - first
    scale = (dot_rows - 1) / (high - low) if high > low else 0.0

    def dot_row(loss: float) -> int:  # 0 is the top; a flat curve sits mid-plot
        return (dot_rows - 1) - round((loss - low) * scale) if scale else dot_rows // 2

    def dot_column(step: int) -> int:
        return round((step - first) * (dot_columns - 1) / span) if span else dot_columns - 1

    cells = [[0] * plot_width for _ in range(plot_rows)]

    def dot(x: int, y: int) -> None:
        cells[y >> 2][x >> 1] |= _DOT_BITS[x & 1][y & 3]

    previous: tuple[int, int] | None = None
    for x, mean in enumerate(_column_means(points, first, span, dot_columns) if points else ()):
        if mean is None:
            continue
        y = dot_row(mean)
        if previous is None:
            dot(x, y)
        else:
            # join to the previous column with a straight segment, filling each column
            # between the heights on either side of it so steep drops stay connected
            x0, y0 = previous
            before = y0
            for xi in range(x0 + 1, x + 1):
                here = y0 + round((y - y0) * (xi - x0) / (x - x0))
                for yi in range(min(before, here), max(before, here) + 1):
                    dot(xi, yi)
                before = here
        previous = (x, y)

    marks = {(dot_row(loss) >> 2, dot_column(step) >> 1) for step, loss in eval_points}

    if scale:
        labelled = {0: top_label, plot_rows - 1: bottom_label}
    else:  # a flat curve: one label, beside it
        labelled = {(dot_rows // 2) >> 2: top_label}
    lines: list[Content] = []
    for row in range(plot_rows):
        label = labelled.get(row, "")
        parts: list[str | tuple[str, str]] = []
        if label_width:
            parts.append((label.rjust(label_width), AXIS_STYLE))
        parts.append(("┤" if label else "│", AXIS_STYLE))
        run: list[str] = []
        for column, bits in enumerate(cells[row]):
            if (row, column) in marks:
                if run:
                    parts.append(("".join(run), TRAIN_STYLE))
                    run = []
                parts.append((EVAL_MARK, EVAL_STYLE))
            else:
                run.append(chr(0x2800 + bits) if bits else " ")
        if run:
            parts.append(("".join(run), TRAIN_STYLE))
        lines.append(Content.assemble(*parts))
    if height > 1:
        lines.append(_step_axis(first, final, label_width, plot_width))
    return lines


def _step_axis(first: int, final: int, label_width: int, plot_width: int) -> Content:
    left, right = f"{first:,}", f"{final:,}"
    if first == final:
        left = ""
    fill = plot_width - len(left) - len(right)
    if fill < 1:
        left, fill = "", max(0, plot_width - len(right))
    text = " " * label_width + "└" + left + "─" * fill + right
    return Content.styled(text[: label_width + 1 + plot_width], AXIS_STYLE)


class LossPlot(Widget):
    """Train loss as a line, eval losses as markers; the newest values in the border."""

    DEFAULT_CSS = """
    LossPlot {
        height: 12;
        min-height: 6;
        border: round $panel;
        border-title-color: $foreground;
        border-title-style: bold;
        border-subtitle-color: $warning;
    }
    """

    points: reactive[Series] = reactive(())
    eval_points: reactive[Series] = reactive(())

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        # render() runs on every repaint (scrolls, focus, a theme change); rebuild the curve
        # only when the data or the size changed
        self._drawn: tuple[Series, Series, int, int] | None = None
        self._lines: list[Content] = []

    def on_mount(self) -> None:
        self._update_titles()

    def watch_points(self) -> None:
        self._update_titles()

    def watch_eval_points(self) -> None:
        self._update_titles()

    def _update_titles(self) -> None:
        self.border_title, self.border_subtitle = plot_title(self.points, self.eval_points)

    def lines(self) -> list[Content]:
        """The chart at the current size (what render() shows, one Content per line)."""
        width, height = self.size
        drawn = self._drawn
        if drawn is None or drawn[0] is not self.points or drawn[1] is not self.eval_points or drawn[2:] != (width, height):
            self._lines = plot_lines(self.points, self.eval_points, width, height)
            self._drawn = (self.points, self.eval_points, width, height)
        return self._lines

    def render(self) -> Content:
        return Content("\n").join(self.lines())
