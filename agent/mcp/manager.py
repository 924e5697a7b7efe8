"""Every MCP server of the session: connected concurrently in the background, each with a
state the user can see (``mcp_status``), its tools offered to the model under their own
names (or ``server__tool`` when a name is taken; built-in tools keep theirs), reconnected on
the next call after it died, enabled, disabled or reconnected on request.

The session applies the tool list to its router between turns (``on_tools_changed``), so a
turn never sees a tool vanish half way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from agent.mcp.config import ServerEntry
from agent.mcp.connection import Connection, describe_error, flatten, stderr_tail
from agent.mcp.tools import McpTool, safe_name
from agent.protocol import McpServerInfo, McpStatus
from agent.tools.base import ToolContext, ToolResult

log = logging.getLogger(__name__)


@dataclass
class Server:
    entry: ServerEntry
    state: str = "disabled"  # connecting | ready | failed | disabled
    error: str | None = None
    tools: list[Any] = field(default_factory=list)  # MCP tool definitions
    connection: Connection | None = None
    task: asyncio.Task | None = None
    connected_at: float | None = None
    #: it was ready and stopped by itself: its tools stay offered and the next call restarts it
    lost: bool = False


class McpManager:
    def __init__(self, entries: list[ServerEntry], *, builtin_names: set[str], log_dir: Path, cwd: Path,
                 hub: str, hf_token: Callable[[], str | None], emit: Callable[[Any], None],
                 on_tools_changed: Callable[[], None] = lambda: None, in_memory: dict[str, Any] | None = None,
                 untrusted_project: Path | None = None):
        self.builtin = set(builtin_names)
        self.log_dir = log_dir
        self.cwd = cwd
        self.hub = hub
        self.hf_token = hf_token
        self.emit = emit
        self.on_tools_changed = on_tools_changed
        #: server name -> FastMCP object served in-process instead of its transport (tests)
        self.in_memory = in_memory or {}
        #: a project's .mcp.json the user has not trusted yet: its servers wait ("untrusted")
        self.untrusted_project = untrusted_project
        self.servers: dict[str, Server] = {}
        for entry in entries:
            server = Server(entry)
            if entry.error:
                server.state, server.error = ("disabled" if entry.origin == "default" else "failed"), entry.error
            elif entry.origin == "project" and untrusted_project is not None:
                server.state = "untrusted"
                server.error = f"from {untrusted_project}, which you have not trusted yet"
            self.servers[entry.name] = server
        self._tools: list[McpTool] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect every enabled server concurrently; returns at once."""
        for server in self.servers.values():
            if server.entry.enabled and not server.entry.error:
                self._connect_soon(server)
        self._publish()

    def _connect_soon(self, server: Server) -> None:
        if server.task is not None and not server.task.done():
            return
        server.state, server.error = "connecting", None
        server.task = asyncio.create_task(self._connect(server), name=f"mcp-connect-{server.entry.name}")

    async def _connect(self, server: Server) -> bool:
        entry = server.entry
        if server.connection is None:
            server.connection = Connection(entry, log_dir=self.log_dir, cwd=self.cwd, hub=self.hub,
                                           hf_token=self.hf_token, in_memory=self.in_memory.get(entry.name))
            server.connection.on_lost = lambda reason, server=server: self._lost(server, reason)
        try:
            tools = await server.connection.connect()
        except asyncio.CancelledError:
            server.state = "disabled" if not entry.enabled else "failed"
            server.error = server.error or "connection cancelled"
            raise
        except BaseException as exc:  # a server that will not start is a state, never a crash
            server.state, server.tools, server.lost = "failed", [], False
            server.error = describe_error(exc)
            tail = stderr_tail(server.connection.log_path)
            if tail:
                server.error += f"\nlast lines of its stderr ({server.connection.log_path}):\n{tail}"
            self._publish()
            return False
        server.state, server.error, server.tools, server.connected_at = "ready", None, tools, time.time()
        server.lost = False
        self._publish()
        return True

    def _lost(self, server: Server, reason: str) -> None:
        if server.state != "ready":
            return
        # its tools stay offered: the next call starts it again
        server.state, server.lost = "failed", True
        server.error = f"the server stopped ({reason}); it is restarted on the next call or with reconnect"
        tail = stderr_tail(server.connection.log_path if server.connection else None)
        if tail:
            server.error += f"\nlast lines of its stderr:\n{tail}"
        self._publish()

    async def wait_settled(self, timeout_s: float) -> bool:
        """Wait until no server is still connecting (at most ``timeout_s``); True if none is."""
        tasks = [s.task for s in self.servers.values() if s.task is not None and not s.task.done()]
        if not tasks:
            return True
        done, pending = await asyncio.wait(tasks, timeout=timeout_s)
        return not pending

    async def close(self) -> None:
        for server in self.servers.values():
            if server.task is not None and not server.task.done():
                server.task.cancel()
        for server in self.servers.values():
            if server.task is not None:
                try:
                    await server.task
                except BaseException:
                    pass
            if server.connection is not None:
                await server.connection.close()

    # ------------------------------------------------------------------ user actions

    async def act(self, name: str, action: str) -> str | None:
        """reconnect | enable | disable a server; returns an error sentence or None."""
        server = self.servers.get(name)
        if server is None:
            return f"no MCP server named {name!r} (known: {', '.join(self.servers) or 'none'})"
        if server.entry.error and action != "disable":
            return f"{name} cannot start: {server.entry.error}"
        if server.state == "untrusted" and action != "disable":
            return f"{name} comes from {self.untrusted_project}: trust that file first"
        if action == "disable":
            server.entry.enabled = False
            if server.task is not None and not server.task.done():
                server.task.cancel()
            if server.connection is not None:
                await server.connection.close()
            server.state, server.tools, server.error, server.lost = "disabled", [], None, False
            self._publish()
            return None
        if action in ("enable", "reconnect"):
            server.entry.enabled = True
            if server.task is not None and not server.task.done():
                server.task.cancel()
                try:
                    await server.task
                except BaseException:
                    pass
            self._connect_soon(server)
            self._publish()
            return None
        return f"unknown MCP action {action!r}: use reconnect, enable or disable"

    async def trust_project(self, data_dir: Path) -> str | None:
        """The user trusts the project's .mcp.json as it is now: remembered, and its servers start."""
        from agent.mcp.config import TRUST_FILE, ProjectTrust

        project = self.untrusted_project
        if project is None:
            return "there is no project .mcp.json waiting for your trust"
        try:
            ProjectTrust(data_dir / TRUST_FILE).trust(project)
        except OSError as exc:
            return f"could not remember that you trust {project}: {exc}"
        self.untrusted_project = None
        for server in self.servers.values():
            if server.state == "untrusted":
                server.entry.enabled = True
                self._connect_soon(server)
        self._publish()
        return None

    def entry(self, name: str) -> ServerEntry | None:
        server = self.servers.get(name)
        return server.entry if server else None

    # ------------------------------------------------------------------ tools

    def tools(self) -> list[McpTool]:
        return list(self._tools)

    def _rebuild_tools(self) -> bool:
        """The tool objects for every ready server; True when the set of names changed."""
        taken = set(self.builtin)
        counts: dict[str, int] = {}
        ready = [s for s in self.servers.values() if s.state == "ready" or (s.lost and s.entry.enabled)]
        for server in ready:
            for definition in self._offered(server):
                counts[safe_name(definition.name)] = counts.get(safe_name(definition.name), 0) + 1
        tools: list[McpTool] = []
        for server in ready:
            for definition in self._offered(server):
                plain = safe_name(definition.name)
                name = plain if plain not in taken and counts[plain] == 1 else safe_name(f"{server.entry.name}__{definition.name}")
                if name in taken:
                    log.warning("MCP tool %s of %s skipped: the name %s is taken", definition.name, server.entry.name, name)
                    continue
                taken.add(name)
                tools.append(McpTool(self, server.entry.name, definition, name))
        before = [(t.name, t.server, t.remote_name) for t in self._tools]
        self._tools = tools
        return before != [(t.name, t.server, t.remote_name) for t in tools]

    @staticmethod
    def _offered(server: Server) -> list[Any]:
        entry = server.entry
        out = []
        for definition in server.tools:
            if entry.allow is not None and definition.name not in entry.allow:
                continue
            if definition.name in entry.deny:
                continue
            out.append(definition)
        return out

    async def call(self, server_name: str, tool: str, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        server = self.servers.get(server_name)
        if server is None or not server.entry.enabled:
            return ToolResult(f"ERROR: the MCP server {server_name} is disabled; {tool} was NOT run.", success=False)
        connection = server.connection
        if connection is None or not connection.alive or server.state != "ready":
            # it died (or failed before): start it again for this call
            ctx.log(f"restarting MCP server {server_name}…")
            if server.task is not None and not server.task.done():
                await asyncio.wait([server.task])
            else:
                self._connect_soon(server)
                await asyncio.wait([server.task])
            if server.state != "ready":
                return ToolResult(f"ERROR: the MCP server {server_name} is not running ({server.error}); "
                                  f"{tool} was NOT run.", success=False)
            connection = server.connection
        timeout = server.entry.timeout_s
        try:
            result = await connection.call(tool, args, timeout)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            reason = describe_error(exc)
            if reason == "timed out":
                return ToolResult(f"ERROR: {tool} on MCP server {server_name} timed out after {timeout:g} s "
                                  "(its `timeout` in the config); the server may still be working on it.",
                                  success=False)
            if not connection.alive or "connection closed" in reason.lower():
                await asyncio.sleep(0.2)  # let its stderr reach the log before the tail is read
                server.state, server.lost = "failed", True
                server.error = f"the server stopped: {reason}"
                tail = stderr_tail(connection.log_path)
                if tail:
                    server.error += f"\nlast lines of its stderr:\n{tail}"
                self._publish()
                return ToolResult(f"ERROR: the MCP server {server_name} stopped during {tool} ({reason}); "
                                  "it is restarted on the next call.", success=False)
            return ToolResult(f"ERROR: {tool} on MCP server {server_name} failed: {reason}", success=False)
        text, is_error = flatten(result)
        if is_error:
            return ToolResult(f"ERROR from {tool} (MCP server {server_name}): {text or 'no details'}", success=False)
        return ToolResult(text or "(no output)")

    # ------------------------------------------------------------------ status

    def status(self) -> McpStatus:
        infos = []
        by_server: dict[str, list[str]] = {}
        for tool in self._tools:
            by_server.setdefault(tool.server, []).append(tool.name)
        for name, server in self.servers.items():
            e = server.entry
            infos.append(McpServerInfo(
                name=name, state=server.state, origin=e.origin, transport=e.transport, target=e.target,
                approval=e.approval, tools=by_server.get(name, []),
                hidden_tools=len(server.tools) - len(self._offered(server)) if server.tools else 0,
                error=server.error, log_path=str(server.connection.log_path) if server.connection and
                server.connection.log_path else None, source=e.source,
            ))
        return McpStatus(servers=infos, untrusted_project=str(self.untrusted_project) if self.untrusted_project else None)

    def _publish(self) -> None:
        changed = self._rebuild_tools()
        self.emit(self.status())
        if changed:
            self.on_tools_changed()
