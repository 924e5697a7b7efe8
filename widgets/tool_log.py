"""Live output of the running tool: a bounded Log fed in batches, with follow/pause."""

from __future__ import annotations

from collections import deque

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Log, Static


class ToolLogPane(Vertical):
    """Lines arrive through ``write_lines`` (the bridge batches them at ~15 Hz). While the
    pane is not displayed nothing is written to the Log; the newest lines wait in a
    bounded buffer and are written when the pane is shown again."""

    MAX_LINES = 5000
    DEFAULT_CSS = """
    ToolLogPane { height: 1fr; border: round $panel; border-title-color: $text-muted; border-subtitle-color: $text-muted; }
    ToolLogPane > Log { height: 1fr; background: transparent; scrollbar-size: 1 1; display: none; }
    ToolLogPane.-has-lines > Log { display: block; }
    ToolLogPane > .log-empty { color: $text-muted; text-style: italic; padding: 0 1; }
    ToolLogPane.-has-lines > .log-empty { display: none; }
    """

    follow: reactive[bool] = reactive(True)
    source: reactive[str] = reactive("")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._pending: deque[str] = deque(maxlen=self.MAX_LINES)
        self.lines_written = 0

    def compose(self) -> ComposeResult:
        yield Static("Tool output appears here while a tool runs.", classes="log-empty")
        yield Log(max_lines=self.MAX_LINES, auto_scroll=True)

    def on_mount(self) -> None:
        self._titles()

    def _titles(self) -> None:
        # Content, not markup: the source is a tool's name, which the model chose
        self.border_title = Content(f"Output · {self.source}") if self.source else "Output"
        self.border_subtitle = "following" if self.follow else "paused"

    def watch_follow(self, follow: bool) -> None:
        if self.is_mounted:
            log = self.query_one(Log)
            log.auto_scroll = follow
            if follow:
                log.scroll_end(animate=False)
        self._titles()

    def watch_source(self) -> None:
        self._titles()

    @property
    def visible_now(self) -> bool:
        return self.is_mounted and self.display and self.parent is not None and self.parent.display

    def write_lines(self, lines: list[str], source: str | None = None) -> None:
        if source:
            self.source = source
        if not lines:
            return
        self._pending.extend(lines)
        if self.visible_now:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        lines = list(self._pending)
        self._pending.clear()
        log = self.query_one(Log)
        log.write_lines(lines)
        # Textual 8.2.8: once the Log is at max_lines, write_lines refreshes rows below the
        # view and the view never repaints again; a full refresh keeps the tail visible
        log.refresh()
        self.lines_written += len(lines)
        self.add_class("-has-lines")

    def clear(self) -> None:
        self._pending.clear()
        self.query_one(Log).clear()
        self.remove_class("-has-lines")
