"""The session's side of MCP: which servers it has (the user config's, Hugging Face's own,
a trusted project's ``.mcp.json``, ``--mcp-config`` files), starting them after "ready",
applying their tools to the router between turns, and the ``mcp_action`` op. Mixed into
``Session``; fastmcp is imported only when there is a server to connect.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from agent.protocol import ErrorEvent, McpStatus, ToolLog


class McpSessionMixin:
    # set by Session.__init__
    config: Any
    cwd: Path
    data_dir: Path
    router: Any
    engine: Any
    mcp: Any = None
    #: extra server files for this run (``--mcp-config``)
    mcp_files: tuple[Path, ...] = ()
    #: the FastMCP objects to serve in-process under an entry's name (tests, embedded servers)
    mcp_in_memory: dict[str, Any] | None = None
    _mcp_tools_stale: bool = False
    _mcp_project_file: Path | None = None

    def _mcp_entries(self) -> tuple[list, list[str]]:
        """(entries, notes): every server this session knows, and what the user must hear."""
        from agent.config import config_path
        from agent.llm.models import hf_token
        from agent.mcp.config import (DEFAULT_NAME, PROJECT_FILE, TRUST_FILE, ProjectTrust, default_hf_entry,
                                      parse_servers, read_servers_file)

        notes: list[str] = []
        entries = parse_servers(self.config.mcp_servers, "user", str(config_path()))
        names = {e.name for e in entries}
        for path in self.mcp_files:
            extra, error = read_servers_file(Path(path), "cli")
            if error:
                notes.append(f"--mcp-config: {error}")
            for e in extra:
                if e.name in names:
                    notes.append(f"--mcp-config {path}: server {e.name!r} replaces the one in your config for this run")
                    entries = [x for x in entries if x.name != e.name]
                entries.append(e)
                names.add(e.name)
        project = self.cwd / PROJECT_FILE
        self._mcp_project_file = None
        if project.is_file():
            found, error = read_servers_file(project, "project")
            if error:
                notes.append(f"project MCP servers: {error}")
            trusted = ProjectTrust(self.data_dir / TRUST_FILE).trusted(project)
            for e in found:
                if e.name in names:
                    notes.append(f"{project}: server {e.name!r} has the name of one of yours; yours is used")
                    continue
                if not trusted:
                    e.enabled = False
                    self._mcp_project_file = project
                entries.append(e)
                names.add(e.name)
        if DEFAULT_NAME not in names:
            entry = default_hf_entry(self._mcp_hub(), hf_token())
            if os.environ.get("MLINTERN_MCP_DEFAULT") == "0":
                entry.enabled, entry.error = False, None
            entries.append(entry)
        return entries, notes

    def _mcp_hub(self) -> str:
        from agent.endpoints import Endpoints

        return Endpoints.resolve(dict(getattr(self.config, "endpoints", None) or {})).hub

    def _start_mcp(self) -> None:
        """After "ready": connect every server in the background (the first prompt never waits)."""
        entries, notes = self._mcp_entries()
        for note in notes:
            self.engine.emit(ToolLog(tool="system", log=f"MCP: {note}"))
        # the manager is cheap; fastmcp is imported by the first connection, so a session with no
        # enabled server never loads it
        from agent.mcp.manager import McpManager

        self.mcp = McpManager(
            entries, builtin_names=set(self.router.names), log_dir=self.data_dir / "mcp", cwd=self.cwd,
            hub=self._mcp_hub(), hf_token=_token, emit=self._mcp_event,
            on_tools_changed=self._mcp_tools_changed, in_memory=self.mcp_in_memory,
            untrusted_project=self._mcp_project_file,
        )
        self.mcp.start()

    def _mcp_event(self, status: McpStatus) -> None:
        self.engine.emit(status)

    def _mcp_tools_changed(self) -> None:
        self._mcp_tools_stale = True
        if not self.busy:
            self._apply_mcp_tools()

    def _apply_mcp_tools(self) -> None:
        """Between turns only: a turn keeps the tool list it started with."""
        if not self._mcp_tools_stale or self.mcp is None:
            return
        self._mcp_tools_stale = False
        self.router.set_extra(self.mcp.tools())
        self._render_system_prompt()

    async def _mcp_action(self, action: str, server: str) -> None:
        if self.mcp is None:
            if action == "status":
                self.engine.emit(McpStatus(servers=[]))
                return
            self.emit(ErrorEvent(message="No MCP servers are configured (mcpServers in the config, or .mcp.json).",
                                 kind="mcp"))
            return
        if action == "status":
            self.engine.emit(self.mcp.status())
            return
        if action == "trust_project":
            error = await self.mcp.trust_project(self.data_dir)
        else:
            error = await self.mcp.act(server, action)
        if error:
            self.emit(ErrorEvent(message=f"MCP: {error}", kind="mcp"))

    async def _wait_for_mcp(self, timeout_s: float) -> None:
        """Headless: servers get a bounded wait before the first model call; who is late is said."""
        if self.mcp is None or timeout_s <= 0:
            return
        settled = await self.mcp.wait_settled(timeout_s)
        if not settled:
            late = [s.entry.name for s in self.mcp.servers.values() if s.state == "connecting"]
            self.engine.emit(ToolLog(tool="system", log=(
                f"MCP: {', '.join(late)} still connecting after {timeout_s:g} s; going on without "
                f"{'it' if len(late) == 1 else 'them'} for now.")))
        self._apply_mcp_tools()

    async def _close_mcp(self) -> None:
        if self.mcp is not None:
            try:
                await asyncio.shield(self.mcp.close())
            except Exception:
                pass


def _token() -> str | None:
    from agent.llm.models import hf_token

    return hf_token()
