"""The ``/mcp`` screen's detail area: everything about the highlighted server. Its state and
where its entry comes from, what it runs (command line or URL), whether its calls ask
first, why it failed or is off (with the tail of its stderr), its log, and its tools: a
count, or with ``show_tools`` every name the model sees."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from agent.protocol import McpServerInfo
from widgets.mcp_servers import MUTED, state_look, state_text

ORIGIN_PHRASE = {
    "user": "From your config",
    "project": "From the project's .mcp.json",
    "cli": "From --mcp-config",
    "default": "Hugging Face's own server, built in",
}


def approval_phrase(server: McpServerInfo) -> str:
    if server.approval == "ask":
        return "each call asks first"
    if server.origin == "default":
        return "read-only tools run without asking, the rest ask"
    return "calls run without asking (approval: auto)"


def _problem(server: McpServerInfo) -> list[Content]:
    """Why it failed, is off or waits, first line in its state's colour, the rest (its
    stderr's last lines) muted and indented."""
    if not server.error:
        return []
    head, _, rest = server.error.strip().partition("\n")
    _, colour = state_look(server)
    label = {"failed": "Failed", "disabled": "Off", "untrusted": "Waiting"}.get(server.state, "Note")
    lines = [Content.assemble((f"{label}: ", f"bold {colour}"), (head, colour))]
    lines += [Content.styled("  " + line, MUTED) for line in rest.splitlines()]
    return lines


def _next_step(server: McpServerInfo) -> str:
    return {
        "failed": "r tries again · e turns it off for this session",
        "disabled": "e turns it on for this session",
        "untrusted": "T trusts the project's .mcp.json (all its servers) as it is now",
        "connecting": "e turns it off",
        "ready": "r reconnects · e turns it off for this session",
    }.get(server.state, "")


def describe(server: McpServerInfo | None, show_tools: bool = False) -> Content:
    if server is None:
        return Content("")
    icon, colour = state_look(server)
    lines = [Content.assemble((server.name, "bold"), "  ", (f"{icon} {state_text(server)}", colour))]
    origin = ORIGIN_PHRASE.get(server.origin, server.origin)
    source = f" ({server.source})" if server.source and server.origin != "default" else ""
    lines.append(Content(f"{origin}{source} · {server.transport} · {approval_phrase(server)}"))
    runs = "Runs" if server.transport == "stdio" else "URL"
    lines.append(Content.assemble((f"{runs}: ", MUTED), " ".join(server.target.split())))
    lines += _problem(server)
    if server.log_path and server.log_path not in (server.error or ""):
        lines.append(Content.assemble(("Log: ", MUTED), server.log_path))
    tools = server.tools
    if tools:
        count = f"{len(tools)} tool{'s' if len(tools) != 1 else ''}"
        if show_tools:
            lines.append(Content.assemble((f"{count}: ", MUTED), " · ".join(tools)))
        else:
            lines.append(Content.assemble((count, ""), (" (t lists them)", MUTED)))
    if server.hidden_tools:
        lines.append(Content.styled(f"{server.hidden_tools} more left out by the entry's allow/deny lists", MUTED))
    step = _next_step(server)
    if step:
        lines.append(Content.styled(step, f"italic {MUTED}"))
    return Content("\n").join(lines)


class McpServerDetail(Widget):
    DEFAULT_CSS = """
    McpServerDetail { height: auto; }
    """

    server: reactive[McpServerInfo | None] = reactive(None, layout=True)
    show_tools: reactive[bool] = reactive(False, layout=True)

    def render(self) -> Content:
        return describe(self.server, self.show_tools)
