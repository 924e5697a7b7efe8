"""The job log with search: the Log the Jobs pane shows the selected job's lines in, with the
search term highlighted, the current match's line tinted and ``jump`` to step through matches.
"""

from __future__ import annotations

import re
from typing import Callable

from rich.highlighter import Highlighter
from rich.segment import Segment
from rich.style import Style as RichStyle
from rich.text import Text
from textual.strip import Strip
from textual.widgets import Log


class _MatchHighlighter(Highlighter):
    def __init__(self, log: JobLogView):
        self.log = log

    def highlight(self, text: Text) -> None:
        if self.log.pattern is not None:
            text.highlight_regex(self.log.pattern, self.log.get_component_rich_style("job-log--match"))


class JobLogView(Log):
    """A Log that highlights a search term and marks the current match's line."""

    COMPONENT_CLASSES = {"job-log--match", "job-log--current"}
    DEFAULT_CSS = """
    JobLogView > .job-log--match { background: $warning; color: $background; text-style: bold; }
    JobLogView > .job-log--current { background: $accent 30%; }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.highlighter = _MatchHighlighter(self)
        self.query_text = ""
        self.pattern: re.Pattern[str] | None = None
        self.current: int | None = None  # the current match, as a line number since the last clear
        self.written = 0  # lines written since the last clear; first shown line = written - len(lines)
        self.on_paint: Callable[[], None] | None = None

    def render_lines(self, crop):
        # Show events get lost when a hidden widget is refreshed (textual 8.2.8), but being
        # painted is proof of being on screen: the pane uses it to catch up after a hide
        if self.on_paint is not None:
            self.on_paint()
        return super().render_lines(crop)

    def watch_show_horizontal_scrollbar(self, shown: bool) -> None:
        # the scrollbar takes the bottom row: a following log would end one line short, and
        # then, no longer at its end, stop following (Log only scrolls when already there)
        if self.auto_scroll:
            self.scroll_end(animate=False, x_axis=False)

    def on_resize(self) -> None:
        if self.auto_scroll:  # a shorter view (the side column after the jobs view) keeps the tail
            self.scroll_end(animate=False, x_axis=False)

    def write_lines(self, lines, scroll_end: bool | None = None):
        lines = list(lines)
        self.written += len(lines)
        return super().write_lines(lines, scroll_end)

    def clear(self):
        self.written = 0
        self.current = None
        return super().clear()

    @property
    def first_line_number(self) -> int:
        return self.written - len(self.lines)

    def set_query(self, text: str) -> None:
        self.query_text = text
        self.pattern = re.compile(re.escape(text), re.IGNORECASE) if text else None
        self.highlight = self.pattern is not None
        self.current = None
        self._repaint()

    def matches(self) -> list[int]:
        """Indexes (into ``lines``) of the lines holding the search term."""
        if self.pattern is None:
            return []
        search = self.pattern.search
        return [index for index, line in enumerate(self.lines) if search(line)]

    @property
    def current_index(self) -> int | None:
        """The current match as an index into ``lines`` (None once it scrolled out)."""
        if self.current is None or self.current < self.first_line_number:
            return None
        return self.current - self.first_line_number

    def jump(self, direction: int) -> bool:
        """Go to the next (1) or previous (-1) match, wrapping, or to the newest one (0).
        False when nothing matches."""
        found = self.matches()
        if not found:
            self.current = None
            self._repaint()
            return False
        here = self.current_index
        if direction == 0 or here is None:
            index = found[-1]
        elif direction > 0:
            index = next((i for i in found if i > here), found[0])
        else:
            index = next((i for i in reversed(found) if i < here), found[-1])
        self.current = self.first_line_number + index
        self.scroll_to(y=max(0, index - self.scrollable_content_region.height // 2), animate=False, immediate=True)
        self._repaint()
        return True

    def summary(self) -> str:
        """“term” k/n, “term” n matches, or “term” not found."""
        found = self.matches()
        term = f"“{self.query_text}”"
        if not found:
            return f"{term} not found"
        here = self.current_index
        if here is not None and here in found:
            return f"{term} {found.index(here) + 1}/{len(found)}"
        return f"{term} {len(found)} match{'es' if len(found) != 1 else ''}"

    def _repaint(self) -> None:
        self._render_line_cache.clear()  # Log caches strips; highlights changed under them
        self.refresh()

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        if self.current is not None and self.scroll_offset.y + y == self.current - self.first_line_number:
            current = self.get_component_rich_style("job-log--current")
            match_bg = self.get_component_rich_style("job-log--match").bgcolor
            # tint the line, but leave the matched words on their own background
            strip = Strip([segment if segment.style is not None and segment.style.bgcolor == match_bg
                           else Segment(segment.text, (segment.style or RichStyle.null()) + current, segment.control)
                           for segment in strip], strip.cell_length)
        return strip
