"""The ``/mcp`` screen's list: one line per MCP server with its state (icon and colour), where
it comes from, its transport and its command line or URL.

An OptionList of a handful of lines: each answer from the session replaces the lines (only
when something changed) and the highlighted server stays highlighted by name. The lines
are cut to the list's width, so they are drawn again when it changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from agent.protocol import McpServerInfo
from widgets.content_join import join_line

MUTED = "$foreground-muted"  # not $text-muted: Content spans render it as pure white (8.2.8)
#: state -> (icon, colour); connecting is "…", not a spinner: nothing redraws the list for it
STATE_LOOK = {
    "connecting": ("…", "$accent"),
    "ready": ("✓", "$success"),
    "failed": ("✗", "$error"),
    "disabled": ("○", MUTED),
    "untrusted": ("⚠", "$warning"),
}
ORIGIN_WORD = {"user": "user", "project": "project", "cli": "cli", "default": "built-in"}
GAP = 2
MARK = 2
STATE_W = 16  # "ready · 12 tools"
WHERE_W = 15  # "project · stdio"
NAME_MIN, NAME_MAX = 6, 18
#: narrower than this for the target, the where column gives it its room (the detail says it)
TARGET_MIN = 16


def state_text(server: McpServerInfo) -> str:
    if server.state == "ready":
        n = len(server.tools)
        return f"ready · {n} tool{'s' if n != 1 else ''}"
    if server.state == "connecting":
        return "connecting…"
    return server.state


def state_look(server: McpServerInfo) -> tuple[str, str]:
    return STATE_LOOK.get(server.state, ("?", MUTED))


def where_text(server: McpServerInfo) -> str:
    return f"{ORIGIN_WORD.get(server.origin, server.origin)} · {server.transport}"


@dataclass(frozen=True)
class Layout:
    name_width: int
    where: bool
    target_width: int


def layout_for(width: int, servers: tuple[McpServerInfo, ...]) -> Layout:
    name_width = max(NAME_MIN, min(NAME_MAX, max((len(s.name) for s in servers), default=0)))
    rest = width - MARK - name_width - GAP - STATE_W - GAP
    if rest - WHERE_W - GAP >= TARGET_MIN:
        return Layout(name_width, True, rest - WHERE_W - GAP)
    return Layout(name_width, False, max(1, rest))


def server_row(server: McpServerInfo, layout: Layout) -> Content:
    icon, colour = state_look(server)
    name = Content.styled(server.name, "bold").truncate(layout.name_width, ellipsis=True, pad=True)
    cells = [Content.assemble((f"{icon} ", colour), name),
             Content.styled(state_text(server), colour).truncate(STATE_W, ellipsis=True, pad=True)]
    if layout.where:
        cells.append(Content.styled(where_text(server), MUTED).truncate(WHERE_W, ellipsis=True, pad=True))
    cells.append(Content(" ".join(server.target.split())).truncate(layout.target_width, ellipsis=True))
    return join_line(" " * GAP, cells)


class McpServerList(OptionList):
    """The servers, in the session's order; ``highlighted_server`` is the one the detail shows."""

    DEFAULT_CSS = """
    McpServerList { height: auto; max-height: 45%; border: none; padding: 0; background: $surface; }
    McpServerList:focus { border: none; background-tint: $foreground 0%; }
    /* the model picker's cursor: the state colours stay readable on it */
    McpServerList > .option-list--option-highlighted,
    McpServerList:focus > .option-list--option-highlighted { color: $foreground; background: $accent 25%; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.servers: tuple[McpServerInfo, ...] = ()
        self._drawn_width = 0

    @property
    def highlighted_server(self) -> McpServerInfo | None:
        index = self.highlighted
        if index is None or not 0 <= index < len(self.servers):
            return None
        return self.servers[index]

    def show(self, servers: list[McpServerInfo]) -> None:
        """A new status: the lines are replaced, the highlighted server kept (by name)."""
        servers_t = tuple(servers)
        if servers_t == self.servers and self._drawn_width == self._width():
            return
        before = self.highlighted_server
        self.servers = servers_t
        self._redraw(before.name if before is not None else None)

    def _width(self) -> int:
        return self.content_region.width or 100  # before the first layout: redrawn on resize

    def _redraw(self, keep: str | None) -> None:
        width = self._width()
        self._drawn_width = width
        layout = layout_for(width, self.servers)
        self.clear_options()
        self.add_options([Option(server_row(s, layout), id=s.name) for s in self.servers])
        names = [s.name for s in self.servers]
        if names:
            self.highlighted = names.index(keep) if keep in names else 0

    def on_resize(self, event: events.Resize) -> None:
        if self.servers and self._width() != self._drawn_width:
            current = self.highlighted_server
            self._redraw(current.name if current is not None else None)
