"""The jobs list: the table that draws each job's ``JobRow`` (see ``widgets/job_record.py``)
with a cursor, folding columns away when narrow.

Not a DataTable: DataTable turns each cell into a Rich Text when it is set, so a theme
variable cannot reach it and a theme switch leaves old colours behind. Here a row is a frozen
``JobRow`` drawn as Content whose styles are theme variables, resolved at paint time. Each
drawn row is cached by (row, column widths), so a 15 Hz "last line" update re-formats only
the job that changed; everything else is a dict hit.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from widgets.content_join import join_line
from widgets.job_record import STAGES, UNKNOWN_STAGE, JobRow

MUTED = "$foreground-muted"  # not $text-muted: Content spans render it as pure white (8.2.8)
HEADER_STYLE = f"bold {MUTED}"
CURSOR_FOCUSED = "on $accent 25%"
CURSOR_BLURRED = "on $panel"
EMPTY_TEXT = "No jobs yet. Jobs the agent launches appear here."


def short_id(job_id: str, width: int = 11) -> str:
    return job_id if len(job_id) <= width else job_id[: width - 1] + "…"


def format_elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_money(usd: float) -> str:
    # cents hide a cpu-basic job's first minutes; four decimals show them moving
    return f"${usd:.4f}" if usd < 1 else f"${usd:.2f}"


def format_cost(row: JobRow) -> str:
    if row.backend == "local":
        return "$0 (local)"
    return "unknown" if row.cost_usd is None else format_money(row.cost_usd)


def format_price(row: JobRow) -> str:
    if row.backend == "local":
        return "$0"
    return "?" if row.price_per_hour is None else f"${row.price_per_hour:.2f}"


def status_cell(status: str) -> tuple[str, str]:
    mark, label, style = STAGES.get(status, UNKNOWN_STAGE)
    return f"{mark} {label}", style


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    width: int


COLUMNS = (
    Column("id", "job", 11),
    Column("flavor", "flavour", 12),
    Column("status", "status", 11),
    Column("elapsed", "elapsed", 7),
    Column("price", "$/h", 6),
    Column("cost", "cost", 10),
    Column("last", "last line", 0),  # takes what is left
)
GAP = 2
LAST_MIN = 20
#: dropped in this order until the row fits the width (a 50-column side pane keeps four)
DROP_ORDER = ("price", "flavor", "last", "elapsed")


def layout_columns(width: int) -> tuple[tuple[Column, int], ...]:
    """The columns that fit ``width`` and the width each gets (the last line fills the rest)."""
    shown = list(COLUMNS)

    def fixed() -> int:
        return sum(c.width for c in shown if c.key != "last") + GAP * (len(shown) - 1)

    for key in DROP_ORDER:
        needed = fixed() + (LAST_MIN if any(c.key == "last" for c in shown) else 0)
        if needed <= width:
            break
        shown = [c for c in shown if c.key != key]
    rest = max(0, width - fixed())
    return tuple((c, rest if c.key == "last" else c.width) for c in shown)


def _cell(row: JobRow, key: str) -> tuple[str, str]:
    if key == "id":
        return short_id(row.job_id), ""
    if key == "flavor":
        return row.flavor or "—", ""
    if key == "status":
        return status_cell(row.status)
    if key == "elapsed":
        return format_elapsed(row.elapsed_s), "" if row.status == "RUNNING" else MUTED
    if key == "price":
        return format_price(row), MUTED
    if key == "cost":
        return format_cost(row), "" if row.cost_usd is not None or row.backend == "local" else f"italic {MUTED}"
    return row.last_line, MUTED


def draw_row(row: JobRow, layout: tuple[tuple[Column, int], ...]) -> Content:
    parts: list[Content] = []
    for column, width in layout:
        text, style = _cell(row, column.key)
        right = column.key in ("elapsed", "price", "cost")
        text = text.rjust(width) if right else text
        parts.append(Content.styled(text, style).truncate(width, ellipsis=True, pad=True))
    return join_line(" " * GAP, parts)


def draw_header(layout: tuple[tuple[Column, int], ...]) -> Content:
    cells = []
    for column, width in layout:
        right = column.key in ("elapsed", "price", "cost")
        cells.append((column.header.rjust(width) if right else column.header.ljust(width))[:width])
    return Content.styled((" " * GAP).join(cells), HEADER_STYLE)


class JobsTable(Widget, can_focus=True):
    """Rows are set with ``set_row``; the cursor is a job id, moved with the keys or a click."""

    DEFAULT_CSS = """
    JobsTable { height: auto; min-height: 2; padding: 0 1; }
    """
    BINDINGS = [
        Binding("up,k", "move(-1)", "Previous job", show=False),
        Binding("down,j", "move(1)", "Next job", show=False),
        Binding("home", "move_to(0)", "First job", show=False),
        Binding("end", "move_to(-1)", "Last job", show=False),
    ]

    cursor_id: reactive[str | None] = reactive(None)

    class Highlighted(Message):
        """The user moved the cursor to another job."""

        def __init__(self, table: JobsTable, job_id: str):
            super().__init__()
            self.table = table
            self.job_id = job_id

        @property
        def control(self) -> JobsTable:
            return self.table

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self._rows: dict[str, JobRow] = {}  # insertion order is the display order
        self._order: list[str] = []
        self._drawn: dict[str, tuple[JobRow, tuple, Content]] = {}
        self._offset = 0  # first row shown when there are more rows than lines

    # ------------------------------------------------------------------ data

    @property
    def job_ids(self) -> tuple[str, ...]:
        return tuple(self._order)

    def row(self, job_id: str) -> JobRow:
        return self._rows[job_id]

    def set_row(self, row: JobRow) -> None:
        if self._rows.get(row.job_id) == row:
            return
        new = row.job_id not in self._rows
        self._rows[row.job_id] = row
        if new:
            self._order.append(row.job_id)
        self.refresh(layout=new)  # a new row makes the table taller

    # ------------------------------------------------------------------ cursor

    @property
    def cursor_index(self) -> int | None:
        return self._order.index(self.cursor_id) if self.cursor_id in self._rows else None

    def watch_cursor_id(self) -> None:
        self._scroll_to_cursor()
        self.refresh()

    def _move_to_index(self, index: int) -> None:
        if not self._order:
            return
        job_id = self._order[max(0, min(index, len(self._order) - 1))]
        if job_id != self.cursor_id:
            self.cursor_id = job_id
            self.post_message(self.Highlighted(self, job_id))

    def action_move(self, delta: int) -> None:
        index = self.cursor_index
        self._move_to_index(0 if index is None else index + delta)

    def action_move_to(self, index: int) -> None:
        self._move_to_index(index if index >= 0 else len(self._order) - 1)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:  # line 0 is the header
            self._move_to_index(self._offset + event.y - 1)

    def _visible_rows(self) -> int:
        return max(1, self.content_region.height - 1)

    def _scroll_to_cursor(self) -> None:
        index = self.cursor_index
        if index is None:
            return
        visible = self._visible_rows()
        if index < self._offset:
            self._offset = index
        elif index >= self._offset + visible:
            self._offset = index - visible + 1

    def on_resize(self) -> None:
        self._offset = min(self._offset, max(0, len(self._order) - self._visible_rows()))
        self._scroll_to_cursor()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # ------------------------------------------------------------------ drawing

    def get_content_height(self, container, viewport, width: int) -> int:
        return 1 + max(1, len(self._order))

    def _draw(self, job_id: str, layout: tuple) -> Content:
        row = self._rows[job_id]
        cached = self._drawn.get(job_id)
        if cached is not None and cached[0] is row and cached[1] == layout:
            return cached[2]
        content = draw_row(row, layout)
        self._drawn[job_id] = (row, layout, content)
        return content

    def lines(self) -> list[Content]:
        """The table as shown at the current size: header, then the visible rows."""
        width = self.content_region.width
        layout = layout_columns(width)
        lines = [draw_header(layout)]
        if not self._order:
            lines.append(Content.styled(EMPTY_TEXT, f"italic {MUTED}").truncate(width, ellipsis=True))
            return lines
        cursor = CURSOR_FOCUSED if self.has_focus else CURSOR_BLURRED
        shown = self._order[self._offset:self._offset + self._visible_rows()]
        for job_id in shown:
            content = self._draw(job_id, layout)
            if job_id == self.cursor_id:
                content = content.pad_right(max(0, width - content.cell_length)).stylize_before(cursor)
            lines.append(content)
        return lines

    def render(self) -> Content:
        return Content("\n").join(self.lines())
