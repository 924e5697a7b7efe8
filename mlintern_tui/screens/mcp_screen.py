"""The MCP servers screen (``/mcp``): every server of the session with its state, where it
comes from and what it runs, and below the list everything about the highlighted one (why
it failed with its stderr's last lines, its log, its tools).

It asks the session for the servers' states when it opens (``ActionRequested("status")``)
and shows every ``mcp_status`` that arrives while it is open (``show_status``). Its keys
ask the session to act (reconnect, enable, disable, trust the project's ``.mcp.json``); the
session answers with a new status, or an error sentence shown here (``show_error``).
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static

from agent.protocol import McpServerInfo, McpStatus
from mlintern_tui.mcp_watch import count_servers, trust_line
from widgets.mcp_detail import McpServerDetail
from widgets.mcp_servers import McpServerList

NO_SERVERS = ("No MCP servers. Add one with `mlintern mcp add NAME -- COMMAND ARGS…` (or mcpServers in "
              "the config, or a project's .mcp.json), then start a new session.")


class McpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("r", "act('reconnect')", "Reconnect"),
        Binding("e", "toggle_enabled", "Enable/disable"),
        Binding("t", "toggle_tools", "Tools"),
        Binding("T,shift+t", "trust", "Trust the project's servers"),
    ]
    DEFAULT_CSS = """
    McpScreen { align: center middle; background: $background 50%; }
    McpScreen > Vertical {
        width: 96%; max-width: 132; height: 92%; border: thick $primary; background: $surface; padding: 0 1;
        border-title-color: $foreground; border-title-style: bold; border-subtitle-color: $foreground-muted;
    }
    McpScreen #mcp-trust { color: $warning; text-style: bold; height: auto; display: none; margin: 0 0 1 0; }
    McpScreen.-untrusted #mcp-trust { display: block; }
    McpScreen #mcp-empty { color: $foreground-muted; text-style: italic; height: auto; }
    McpScreen #mcp-detail-scroll { height: 1fr; border-top: solid $panel-lighten-2; }
    McpScreen #mcp-message { color: $error; height: auto; display: none; }
    McpScreen.-message #mcp-message { display: block; }
    McpScreen .mcp-keys { color: $foreground-muted; height: 1; }
    """

    class ActionRequested(Message):
        """Ask the session: ``status``, or ``reconnect`` / ``enable`` / ``disable`` ``server``,
        or ``trust_project``."""

        def __init__(self, action: str, server: str = ""):
            super().__init__()
            self.action = action
            self.server = server

    def __init__(self, status: McpStatus | None = None, *, cwd: Path | str | None = None):
        """``status``: the last one the app saw (shown at once; the session is asked again)."""
        super().__init__()
        self.status = status
        self.cwd = cwd
        #: servers whose tool list is unfolded
        self.tools_open: set[str] = set()
        self._mounted = False

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "MCP servers"
            yield Static("", id="mcp-trust")
            yield Static("Asking the session for its MCP servers…", id="mcp-empty")
            yield McpServerList(id="mcp-list")
            with VerticalScroll(id="mcp-detail-scroll"):
                yield McpServerDetail(id="mcp-detail")
            yield Static("", id="mcp-message")
            yield Static("", classes="mcp-keys")

    @property
    def server_list(self) -> McpServerList:
        return self.query_one(McpServerList)

    @property
    def highlighted(self) -> McpServerInfo | None:
        return self.server_list.highlighted_server

    def on_mount(self) -> None:
        self._mounted = True
        self.server_list.focus()
        if self.status is not None:
            self.show_status(self.status)
        else:
            self._show_keys()
        self.post_message(self.ActionRequested("status"))

    # ------------------------------------------------------------------ the session's answers

    def show_status(self, status: McpStatus) -> None:
        """An ``mcp_status``: the list, the detail, the trust line and the count follow it."""
        self.status = status
        if not self._mounted:
            return  # pushed, not drawn yet: on_mount shows it
        self.server_list.show(status.servers)
        empty = self.query_one("#mcp-empty", Static)
        empty.display = not status.servers
        empty.update(Content(NO_SERVERS))
        line = trust_line(status, self.cwd)
        self.query_one("#mcp-trust", Static).update(Content("⚠ " + line) if line else Content(""))
        self.set_class(bool(line), "-untrusted")
        self.query_one(Vertical).border_subtitle = count_servers(status)
        self._show_detail()

    def show_error(self, message: str) -> None:
        """The session could not do what a key asked (one sentence, from the engine)."""
        if not self._mounted:
            return
        self.query_one("#mcp-message", Static).update(Content("✗ " + message))
        self.add_class("-message")

    def _clear_error(self) -> None:
        self.remove_class("-message")

    def _show_detail(self) -> None:
        detail = self.query_one(McpServerDetail)
        server = self.highlighted
        detail.server = server
        detail.show_tools = server is not None and server.name in self.tools_open
        self._show_keys()

    def _show_keys(self) -> None:
        server = self.highlighted
        keys = ["↑↓ select"]
        if server is not None:
            keys += ["r reconnect", "e enable" if server.state in ("disabled", "untrusted") else "e disable"]
            if server.tools:
                keys.append("t tools")
        if self.status is not None and self.status.untrusted_project:
            keys.append("T trust")
        keys.append("esc close")
        self.query_one(".mcp-keys", Static).update(Content(" · ".join(keys)))

    @on(OptionList.OptionHighlighted, "#mcp-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_detail()

    # ------------------------------------------------------------------ keys

    def _ask(self, action: str, server: str = "") -> None:
        self._clear_error()
        self.post_message(self.ActionRequested(action, server))

    def action_act(self, action: str) -> None:
        server = self.highlighted
        if server is not None:
            self._ask(action, server.name)

    def action_toggle_enabled(self) -> None:
        """Off if it is on (ready, connecting or failed), on if it is off."""
        server = self.highlighted
        if server is not None:
            self._ask("enable" if server.state in ("disabled", "untrusted") else "disable", server.name)

    def action_toggle_tools(self) -> None:
        server = self.highlighted
        if server is None:
            return
        self.tools_open ^= {server.name}
        self._show_detail()

    @on(OptionList.OptionSelected, "#mcp-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.action_toggle_tools()  # enter (or a click on the highlighted line)

    def action_trust(self) -> None:
        if self.status is None or not self.status.untrusted_project:
            self.show_error("No project .mcp.json is waiting for your trust.")
            return
        self._ask("trust_project")

    def action_close(self) -> None:
        self.dismiss(None)
