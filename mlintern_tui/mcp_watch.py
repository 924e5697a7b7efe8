"""What the conversation and ``/status`` say about the session's MCP servers, from the
``mcp_status`` events: one notice when a project's ``.mcp.json`` first asks to run servers,
one per server that goes from any other state to failed (Hugging Face's own server stays
quiet: offline, it fails every time, and ``/mcp`` shows it), and a one-line count.

No Textual here: the app feeds each status in and writes the notices it gets back.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent.protocol import McpServerInfo, McpStatus

#: the order of a count, and its words ("2 ready (9 tools), 1 failed")
STATE_ORDER = ("ready", "connecting", "failed", "untrusted", "disabled")


def display_path(path: str, cwd: Path | str | None = None) -> str:
    """``./.mcp.json`` for a file in the working directory, ``~/…`` under the home directory."""
    p = Path(path)
    if cwd is not None:
        try:
            return "./" + p.relative_to(Path(cwd)).as_posix()
        except ValueError:
            pass
    home = os.path.expanduser("~").rstrip("/")
    if home and path.startswith(home + "/"):
        return "~" + path[len(home):]
    return path


def first_line(text: str | None, fallback: str = "no reason given") -> str:
    line = (text or "").strip().partition("\n")[0].strip()
    return line or fallback


def count_servers(status: McpStatus) -> str:
    """"2 ready (9 tools), 1 failed"; "" when there are no servers."""
    counts: dict[str, int] = {}
    for server in status.servers:
        counts[server.state] = counts.get(server.state, 0) + 1
    tools = sum(len(s.tools) for s in status.servers if s.state == "ready")
    parts = []
    for state in STATE_ORDER:
        n = counts.get(state, 0)
        if not n:
            continue
        if state == "ready":
            parts.append(f"{n} ready ({tools} tool{'s' if tools != 1 else ''})")
        else:
            parts.append(f"{n} {state}")
    return ", ".join(parts)


def untrusted_servers(status: McpStatus) -> list[McpServerInfo]:
    return [s for s in status.servers if s.state == "untrusted"]


def trust_line(status: McpStatus, cwd: Path | str | None = None) -> str:
    """"./.mcp.json asks to run 2 servers: review them, T to trust"; "" when nothing waits."""
    if not status.untrusted_project:
        return ""
    n = len(untrusted_servers(status))
    return (f"{display_path(status.untrusted_project, cwd)} asks to run {n} server{'s' if n != 1 else ''}: "
            "review them, T to trust")


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class McpWatch:
    """The last status, and what was already said about it."""

    def __init__(self) -> None:
        self.status: McpStatus | None = None
        self._states: dict[str, str] = {}
        self._trust_asked: set[str] = set()

    def update(self, status: McpStatus, cwd: Path | str | None = None) -> list[tuple[str, str]]:
        """Keep ``status``; return the notices it calls for, as (kind, text)."""
        self.status = status
        notices: list[tuple[str, str]] = []
        project = status.untrusted_project
        if project and project not in self._trust_asked:
            self._trust_asked.add(project)
            waiting = untrusted_servers(status)
            names = "; ".join(f"{s.name} ({_short(s.target)})" for s in waiting) or "none listed"
            notices.append(("guard", (
                f"{display_path(project, cwd)} asks to run {len(waiting)} MCP server{'s' if len(waiting) != 1 else ''}: "
                f"{names}. They run only once you trust the file: /mcp to review them, then T.")))
        for server in status.servers:
            before = self._states.get(server.name)
            self._states[server.name] = server.state
            if server.state == "failed" and before != "failed" and server.origin != "default":
                notices.append(("error", f"MCP server {server.name} failed: {first_line(server.error)} "
                                         "— /mcp for details"))
        return notices

    def status_line(self, cwd: Path | str | None = None) -> str | None:
        """The /status line ("MCP: 2 ready (9 tools), 1 failed"); None with no servers."""
        status = self.status
        if status is None or not status.servers:
            return None
        line = f"MCP: {count_servers(status)}"
        if status.untrusted_project:
            line += f" · {display_path(status.untrusted_project, cwd)} waits for your trust (/mcp, then T)"
        return line
