"""The model picker's list: the models a session can switch to, grouped (current, recent,
local servers, Hugging Face router), narrowed by the words typed, with a router model's
providers folded out under it on request (each one a pinned id, ``org/model:provider``).

Drawn line by line like the jobs table, not a DataTable: the cells' colours are theme
variables, and only the lines on screen are drawn. The router's catalog has hundreds of
models; a key typed in the filter walks a list of lowercase ids and redraws one screenful,
nothing is measured or mounted. A drawn row is cached by (id, column widths) until the next
list arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.content import Content
from textual.message import Message
from textual.widget import Widget

from agent.protocol import ModelChoice, ModelOffer
from widgets.content_join import join_line

MUTED = "$foreground-muted"  # not $text-muted: Content spans render it as pure white (8.2.8)
CURSOR = "on $accent 25%"
GROUPS = ("current", "recent", "local", "router")
GROUP_TITLES = {"current": "In use", "recent": "Recent", "local": "Local servers", "router": "Hugging Face router"}
GAP = 2
MARK = 2  # "⚠ " before a row with a warning
PRICE_W = 15  # "$15.00 / $75.00"
CONTEXT_W = 5  # "131k"
TOOLS_W = 5
ID_MIN, ID_MAX = 24, 46


# --------------------------------------------------------------------------- formatting

def format_money(usd: float) -> str:
    if usd == 0:
        return "$0"
    return f"${usd:.3f}" if usd < 0.01 else f"${usd:.2f}"


def format_price(input_per_mtok: float | None, output_per_mtok: float | None) -> str:
    """Dollars per million tokens in and out: "$0.60 / $2.50", "free", or "?" when unknown."""
    if input_per_mtok is None and output_per_mtok is None:
        return "?"
    if input_per_mtok == 0 and output_per_mtok == 0:
        return "free"
    return " / ".join("?" if v is None else format_money(v) for v in (input_per_mtok, output_per_mtok))


def format_context(tokens: int | None) -> str:
    """A context window in thousands ("131k") or millions ("1M", "1.5M"); "?" when unknown."""
    if not tokens:
        return "?"
    if tokens >= 1_000_000:
        return f"{tokens / 1_000_000:.1f}".removesuffix(".0") + "M"
    return f"{round(tokens / 1000)}k" if tokens >= 1000 else str(tokens)


def tools_cell(tools: bool | None) -> tuple[str, str]:
    if tools is None:
        return "?", MUTED
    return ("✓", "$success") if tools else ("✗", "$warning")


def middle_cut(text: str, width: int) -> str:
    """``text`` in ``width`` cells, its middle replaced by "…" (both ends of an id say most)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


# --------------------------------------------------------------------------- lines

@dataclass(frozen=True, eq=False)
class Line:
    """A line of the list: a group's title (``key`` empty), a model, or one of a router
    model's providers (``offer`` set; ``key`` is the pinned id ``org/model:provider``)."""

    key: str
    choice: ModelChoice | None = None
    offer: ModelOffer | None = None
    title: str = ""

    @property
    def selectable(self) -> bool:
        return bool(self.key)


@dataclass(frozen=True)
class Layout:
    width: int
    id_width: int
    detail_width: int


#: narrower than this, the id takes the detail column's room (the detail area still says it)
DETAIL_MIN_REST = 48


def layout_for(width: int) -> Layout:
    fixed = MARK + PRICE_W + CONTEXT_W + TOOLS_W + GAP * 4
    rest = max(0, width - fixed - GAP)
    if rest < DETAIL_MIN_REST:
        return Layout(width, max(ID_MIN, rest + GAP), 0)
    id_width = max(ID_MIN, min(ID_MAX, round(rest * 0.6)))
    return Layout(width, id_width, rest - id_width)


def _cells(mark: Content, name: Content, price: str, context: str, tools: tuple[str, str], detail: Content,
           layout: Layout, *, muted: bool = False) -> Content:
    style = MUTED if muted else ""
    return join_line(" " * GAP, [
        Content.assemble(mark.truncate(MARK, pad=True), name.truncate(layout.id_width, ellipsis=True, pad=True)),
        Content.styled(price.rjust(PRICE_W), style).truncate(PRICE_W, ellipsis=True),
        Content.styled(context.rjust(CONTEXT_W), style).truncate(CONTEXT_W),
        Content.styled(tools[0].center(TOOLS_W), tools[1]),
        *([detail.truncate(layout.detail_width, ellipsis=True)] if layout.detail_width else []),
    ])


def draw_header(layout: Layout) -> Content:
    text = (" " * MARK + "model".ljust(layout.id_width) + " " * GAP + "$/Mtok in / out".rjust(PRICE_W) + " " * GAP
            + "ctx".rjust(CONTEXT_W) + " " * GAP + "tools".center(TOOLS_W) + (" " * GAP + "detail" if layout.detail_width else ""))
    return Content.styled(text[:layout.width], f"bold {MUTED}")


def draw_title(line: Line, layout: Layout) -> Content:
    return Content.styled(line.title, f"bold {MUTED}").truncate(layout.width, ellipsis=True)


def draw_model(choice: ModelChoice, layout: Layout) -> Content:
    mark = Content.styled("⚠", "$warning") if choice.warning else Content("")
    name = Content.styled(middle_cut(choice.id, layout.id_width), "bold" if choice.source == "current" else "")
    return _cells(mark, name, format_price(choice.input_per_mtok, choice.output_per_mtok),
                  format_context(choice.context), tools_cell(choice.tools), Content.styled(choice.detail, MUTED), layout)


def draw_offer(choice: ModelChoice, offer: ModelOffer, layout: Layout) -> Content:
    suffix = ":" + offer.provider
    room = max(1, layout.id_width - 2 - len(suffix))
    name = Content.assemble(("└ ", MUTED), (middle_cut(choice.id, room), MUTED), (suffix, "bold"))
    state = Content.styled("● live", "$success") if offer.live else Content.styled("○ not live", "$warning")
    return _cells(Content(""), name, format_price(offer.input_per_mtok, offer.output_per_mtok),
                  format_context(offer.context), tools_cell(offer.tools), state, layout, muted=not offer.live)


def _words(query: str) -> tuple[str, ...]:
    return tuple(query.lower().split())


def ordered_offers(choice: ModelChoice) -> list[ModelOffer]:
    return sorted(choice.offers, key=lambda o: not o.live)  # live ones first, the router's order kept


def build_lines(choices: tuple[ModelChoice, ...], lowered: tuple[str, ...], words: tuple[str, ...],
                expanded: frozenset[str]) -> list[Line]:
    """The lines shown for a filter: every group with a match under its title. A model
    matches when each word is in its id; a provider matches when each word is in
    ``id:provider`` (so "kimi groq" finds Kimi on groq), which shows it under its model."""
    groups: dict[str, list[Line]] = {}
    for choice, low in zip(choices, lowered):
        shown = all(w in low for w in words)
        offers: list[ModelOffer] = []
        if shown and choice.id in expanded:
            offers = ordered_offers(choice)
        elif not shown and words and choice.offers:
            offers = [o for o in ordered_offers(choice) if all(w in f"{low}:{o.provider.lower()}" for w in words)]
            shown = bool(offers)
        if not shown:
            continue
        rows = groups.setdefault(choice.source, [])
        rows.append(Line(choice.id, choice))
        rows.extend(Line(f"{choice.id}:{o.provider}", choice, o) for o in offers)
    lines: list[Line] = []
    for group in GROUPS:
        rows = groups.get(group)
        if rows:
            count = sum(1 for r in rows if r.offer is None)
            title = GROUP_TITLES[group] + (f" · {count}" if group == "router" else "")
            lines.append(Line("", title=title))
            lines.extend(rows)
    return lines


class ModelTable(Widget):
    """The list the picker's filter narrows; the screen keeps the keys (its filter box has
    focus), so this widget takes no focus and is moved with its methods."""

    DEFAULT_CSS = """
    ModelTable { height: 1fr; }
    """

    class Highlighted(Message):
        """The cursor is on another line (or none): the picker's detail area follows."""

        def __init__(self, table: ModelTable, line: Line | None):
            super().__init__()
            self.table = table
            self.line = line

        @property
        def control(self) -> ModelTable:
            return self.table

    class Chosen(Message):
        """A click on the highlighted line: switch to ``key``."""

        def __init__(self, table: ModelTable, key: str):
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> ModelTable:
            return self.table

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self._choices: tuple[ModelChoice, ...] = ()
        self._lowered: tuple[str, ...] = ()
        self._words: tuple[str, ...] = ()
        self._expanded: frozenset[str] = frozenset()
        self._lines: list[Line] = []
        self._offset = 0  # the first line shown
        self._drawn: dict[tuple[str, Layout], Content] = {}
        self.cursor_key: str | None = None
        self.loaded = False
        self.empty_text = "Asking the session which models it can use…"

    # ------------------------------------------------------------------ data

    @property
    def lines(self) -> tuple[Line, ...]:
        return tuple(self._lines)

    @property
    def keys(self) -> list[str]:
        """The ids the lines offer, in order (what enter would switch to)."""
        return [line.key for line in self._lines if line.selectable]

    @property
    def highlighted(self) -> Line | None:
        return next((line for line in self._lines if line.key and line.key == self.cursor_key), None)

    @property
    def model_count(self) -> int:
        return len(self._choices)

    def set_choices(self, choices: list[ModelChoice]) -> None:
        """A new list from the session: the filter, the open providers and the cursor stay."""
        order = {g: n for n, g in enumerate(GROUPS)}
        self._choices = tuple(sorted(choices, key=lambda c: order.get(c.source, len(GROUPS))))
        self._lowered = tuple(c.id.lower() for c in self._choices)
        self._drawn.clear()
        self.loaded = True
        self._rebuild()

    def set_query(self, query: str) -> None:
        words = _words(query)
        if words != self._words:
            self._words = words
            self._rebuild(to_top=True)

    def toggle_providers(self, open_: bool | None = None) -> bool:
        """Fold the highlighted router model's providers out under it (or back in: from one
        of them too, the cursor going back to its model). False when there is nothing to do."""
        line = self.highlighted
        if line is None or line.choice is None or not line.choice.offers:
            return False
        model_id = line.choice.id
        is_open = model_id in self._expanded or line.offer is not None
        if open_ is None:
            open_ = not is_open
        if open_ == is_open:
            return False
        self._expanded = self._expanded | {model_id} if open_ else self._expanded - {model_id}
        self.cursor_key = model_id
        self._rebuild()
        return True

    def can_open(self) -> bool:
        line = self.highlighted
        return bool(line and line.choice and line.choice.offers and line.offer is None
                    and line.choice.id not in self._expanded)

    def can_close(self) -> bool:
        line = self.highlighted
        return bool(line and line.choice and (line.offer is not None or line.choice.id in self._expanded))

    def _rebuild(self, to_top: bool = False) -> None:
        before = self.cursor_key
        self._lines = build_lines(self._choices, self._lowered, self._words, self._expanded)
        keys = self.keys
        if before not in keys:
            self.cursor_key = keys[0] if keys else None
            self._offset = 0
        elif to_top:
            self._offset = 0
        self._clamp_offset()
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.Highlighted(self, self.highlighted))

    # ------------------------------------------------------------------ cursor

    def _cursor_index(self) -> int | None:
        return next((n for n, line in enumerate(self._lines) if line.key and line.key == self.cursor_key), None)

    def _move_to_line(self, index: int) -> None:
        key = self._lines[index].key
        if key and key != self.cursor_key:
            self.cursor_key = key
            self._scroll_to_cursor()
            self.refresh()
            self.post_message(self.Highlighted(self, self.highlighted))

    def move(self, delta: int) -> None:
        keys = self.keys
        if not keys:
            return
        position = keys.index(self.cursor_key) if self.cursor_key in keys else 0
        target = keys[max(0, min(len(keys) - 1, position + delta))]
        self._move_to_line(next(n for n, line in enumerate(self._lines) if line.key == target))

    def page(self, direction: int) -> None:
        self.move(direction * max(1, self._visible_lines() - 1))

    def on_click(self, event: events.Click) -> None:
        index = self._offset + event.y - 1  # line 0 is the header
        if event.y < 1 or not 0 <= index < len(self._lines) or not self._lines[index].selectable:
            return
        if self._lines[index].key == self.cursor_key:
            self.post_message(self.Chosen(self, self._lines[index].key))
        else:
            self._move_to_line(index)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._scroll_by(3)
        event.stop()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._scroll_by(-3)
        event.stop()

    def _scroll_by(self, lines: int) -> None:
        self._offset += lines
        self._clamp_offset()
        self.refresh()

    def _visible_lines(self) -> int:
        return max(1, self.content_region.height - 1)

    def _clamp_offset(self) -> None:
        self._offset = max(0, min(self._offset, len(self._lines) - self._visible_lines()))

    def _scroll_to_cursor(self) -> None:
        index = self._cursor_index()
        if index is None:
            return
        visible = self._visible_lines()
        top = index - 1 if index > 0 and not self._lines[index - 1].selectable else index  # its group's title too
        if top < self._offset:
            self._offset = top
        elif index >= self._offset + visible:
            self._offset = index - visible + 1

    def on_resize(self) -> None:
        self._clamp_offset()
        self._scroll_to_cursor()

    # ------------------------------------------------------------------ drawing

    def _draw(self, line: Line, layout: Layout) -> Content:
        if not line.selectable:
            return draw_title(line, layout)
        cached = self._drawn.get((line.key, layout))
        if cached is None:
            assert line.choice is not None
            cached = draw_model(line.choice, layout) if line.offer is None else draw_offer(line.choice, line.offer, layout)
            self._drawn[(line.key, layout)] = cached
        return cached

    def rendered_lines(self) -> list[Content]:
        """The header and the lines on screen, as drawn at the current width."""
        layout = layout_for(self.content_region.width)
        out = [draw_header(layout)]
        if not self._lines:
            out.append(Content.styled(self.empty_text, f"italic {MUTED}").truncate(layout.width, ellipsis=True))
            return out
        for line in self._lines[self._offset:self._offset + self._visible_lines()]:
            content = self._draw(line, layout)
            if line.selectable and line.key == self.cursor_key:
                content = content.pad_right(max(0, layout.width - content.cell_length)).stylize_before(CURSOR)
            out.append(content)
        return out

    def render(self) -> Content:
        return Content("\n").join(self.rendered_lines())
