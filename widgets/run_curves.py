"""Several runs' loss curves on one pair of axes, one colour per run, in braille (as the Jobs
pane's ``LossPlot`` draws one): the owner sets ``curves``, a tuple of ``Curve`` (a label and
its ``(step, loss)`` points); the widget knows nothing about logs. Where two curves cross in
one cell the later run's colour shows. A legend line under the axes names each colour.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from widgets.loss_plot import _DOT_BITS, AXIS_STYLE, Series, _column_means, _step_axis, axis_labels

#: one per run, in order (a sixth run takes the first colour again)
CURVE_STYLES = ("$accent", "$warning", "$success", "$error", "$secondary")
WAITING_TEXT = "reading the runs' logs…"


@dataclass(frozen=True)
class Curve:
    label: str
    points: Series
    #: why there is no curve ("no log", "no loss lines in its log"), shown in the legend
    note: str = ""


def curve_style(index: int) -> str:
    return CURVE_STYLES[index % len(CURVE_STYLES)]


def legend(curves: tuple[Curve, ...]) -> Content:
    parts: list[str | tuple[str, str]] = []
    for n, curve in enumerate(curves):
        if parts:
            parts.append("   ")
        parts.append(("━━ ", f"bold {curve_style(n)}"))
        parts.append(curve.label)
        if curve.note:
            parts.append((f" ({curve.note})", AXIS_STYLE))
        elif curve.points:
            parts.append((f" {min(loss for _, loss in curve.points):.4g} best", AXIS_STYLE))
    return Content.assemble(*parts)


def curves_lines(curves: tuple[Curve, ...], width: int, height: int, waiting: bool = False) -> list[Content]:
    """The chart as ``height`` lines of ``width`` cells: y labels, the curves, the step axis."""
    if width <= 0 or height <= 0:
        return []
    drawn = [(n, c.points) for n, c in enumerate(curves) if c.points]
    if not drawn:
        lines = [Content.blank(width) for _ in range(height)]
        text = WAITING_TEXT if waiting else "no loss lines in these runs' logs"
        lines[(height - 1) // 2] = Content.styled(text[:width].center(width), f"italic {AXIS_STYLE}")
        return lines
    values = [loss for _, pts in drawn for _, loss in pts]
    steps = [step for _, pts in drawn for step, _ in pts]
    low, high = min(values), max(values)
    first, final = min(steps), max(steps)
    bottom_label, top_label = axis_labels(low, high)
    label_width = max(len(bottom_label), len(top_label))
    plot_rows = max(1, height - 1)
    plot_width = width - label_width - 1
    if plot_width < 4:
        label_width, plot_width = 0, width - 1
    dot_rows, dot_columns = plot_rows * 4, plot_width * 2
    span = final - first
    scale = (dot_rows - 1) / (high - low) if high > low else 0.0

    def dot_row(loss: float) -> int:
        return (dot_rows - 1) - round((loss - low) * scale) if scale else dot_rows // 2

    bits = [[0] * plot_width for _ in range(plot_rows)]
    owner = [[-1] * plot_width for _ in range(plot_rows)]
    for n, points in drawn:
        previous: tuple[int, int] | None = None
        for x, mean in enumerate(_column_means(points, first, span, dot_columns)):
            if mean is None:
                continue
            y = dot_row(mean)
            segment = [(x, y)]
            if previous is not None:  # joined to the previous column, steep drops filled
                x0, y0 = previous
                before, segment = y0, []
                for xi in range(x0 + 1, x + 1):
                    here = y0 + round((y - y0) * (xi - x0) / (x - x0))
                    segment += [(xi, yi) for yi in range(min(before, here), max(before, here) + 1)]
                    before = here
            for dx, dy in segment:
                bits[dy >> 2][dx >> 1] |= _DOT_BITS[dx & 1][dy & 3]
                owner[dy >> 2][dx >> 1] = n
            previous = (x, y)

    labelled = {0: top_label, plot_rows - 1: bottom_label} if scale else {(dot_rows // 2) >> 2: top_label}
    lines: list[Content] = []
    for row in range(plot_rows):
        label = labelled.get(row, "")
        parts: list[str | tuple[str, str]] = []
        if label_width:
            parts.append((label.rjust(label_width), AXIS_STYLE))
        parts.append(("┤" if label else "│", AXIS_STYLE))
        for column in range(plot_width):
            cell_bits = bits[row][column]
            parts.append((chr(0x2800 + cell_bits), curve_style(owner[row][column])) if cell_bits else " ")
        lines.append(Content.assemble(*parts))
    if height > 1:
        lines.append(_step_axis(first, final, label_width, plot_width))
    return lines


class RunCurves(Widget):
    DEFAULT_CSS = """
    RunCurves { height: 12; min-height: 6; border: round $panel; border-title-color: $foreground;
        border-title-style: bold; }
    """

    curves: reactive[tuple[Curve, ...]] = reactive(())
    #: the logs are still being read
    waiting: reactive[bool] = reactive(True)

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        # render() runs on every repaint: the chart is rebuilt only when the data or the size changed
        self._drawn: tuple | None = None
        self._content = Content("")

    def on_mount(self) -> None:
        self.border_title = "train loss by step"

    def render(self) -> Content:
        width, height = self.size
        key = (self.curves, self.waiting, width, height)
        if key != self._drawn:
            self._drawn = key
            if height < 2:
                self._content = Content("")
            else:
                chart = curves_lines(self.curves, width, height - 1, self.waiting)
                self._content = Content("\n").join([*chart, legend(self.curves).truncate(width, ellipsis=True)])
        return self._content
