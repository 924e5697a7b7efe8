"""One MCP server's connection through fastmcp: made in the background, watched, remade on
the next call after the server died.

A stdio server runs with the MCP SDK's minimal environment (PATH, HOME, …) plus the entry's
own ``env``: the user's keys are not handed to every server. Its stderr goes to
``<data dir>/mcp/<name>.log`` (the last lines are shown when it fails), never to the terminal.
The Hugging Face token is added only to requests for the Hub's own MCP endpoint
(``<hub>/mcp``), and only where the entry did not set its own Authorization header.

fastmcp is imported here, and this module is imported only when a server is configured.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from agent.mcp.config import ServerEntry

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30.0
STDERR_TAIL_LINES = 12


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def is_hub_mcp(url: str, hub: str) -> bool:
    """``url`` is the Hub's own MCP endpoint (same origin as the Hub, path ``/mcp``)."""
    return _origin(url) == _origin(hub) and urlsplit(url).path.rstrip("/") == "/mcp"


def headers_for(entry: ServerEntry, hub: str, hf_token: str | None) -> dict[str, str]:
    headers = dict(entry.headers)
    if hf_token and entry.url and is_hub_mcp(entry.url, hub) \
            and not any(k.lower() == "authorization" for k in headers):
        headers["Authorization"] = f"Bearer {hf_token}"
    return headers


def stderr_tail(path: Path | None, lines: int = STDERR_TAIL_LINES) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 8192))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def describe_error(exc: BaseException) -> str:
    """A failure in words; nested exception groups are unwrapped to their first cause."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip()
    name = type(exc).__name__
    if isinstance(exc, asyncio.TimeoutError) or name in ("TimeoutError", "McpTimeoutError") \
            or (name == "MCPError" and text.endswith("timed out")):
        return "timed out"
    return f"{name}: {text}" if text else name


def flatten(result: Any) -> tuple[str, bool]:
    """(text, is_error) of a fastmcp ``CallToolResult``: text blocks as they are, images, audio
    and binary resources as placeholders with their type and size, structured content as JSON
    when there is no text."""
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            size = len(base64.b64decode(block.data or "", validate=False)) if block.data else 0
            parts.append(f"[{kind}: {block.mime_type or 'unknown type'}, {size:,} bytes]")
        elif kind == "resource":
            res = block.resource
            text = getattr(res, "text", None)
            if text is not None:
                parts.append(f"[resource {res.uri}]\n{text}")
            else:
                blob = getattr(res, "blob", "") or ""
                size = len(base64.b64decode(blob, validate=False)) if blob else 0
                parts.append(f"[resource {res.uri}: {res.mime_type or 'binary'}, {size:,} bytes]")
        elif kind == "resource_link":
            size = f", {block.size:,} bytes" if getattr(block, "size", None) else ""
            parts.append(f"[resource link {block.uri}: {block.mime_type or 'unknown type'}{size}]")
        else:
            parts.append(f"[{kind or 'unknown'} content]")
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False, indent=1))
    return "\n".join(parts), bool(getattr(result, "is_error", False))


class Connection:
    """The client of one server. ``tools`` are its MCP tool definitions once ready."""

    def __init__(self, entry: ServerEntry, *, log_dir: Path, cwd: Path, hub: str,
                 hf_token: Callable[[], str | None], in_memory: Any = None):
        self.entry = entry
        self.log_dir = log_dir
        self.cwd = cwd
        self.hub = hub
        self.hf_token = hf_token
        #: a FastMCP server object to talk to in-process (tests and embedded servers)
        self.in_memory = in_memory
        self.tools: list[Any] = []
        #: called when the connection ends without being asked to (the server exited)
        self.on_lost: Callable[[str], None] = lambda reason: None
        self._client: Any = None
        self._owner: asyncio.Task | None = None
        self._stop: asyncio.Event | None = None
        self.log_path: Path | None = None

    def _transport(self) -> Any:
        e = self.entry
        if self.in_memory is not None:
            return self.in_memory
        if e.url:
            headers = headers_for(e, self.hub, self.hf_token())
            if e.transport == "sse":
                from fastmcp.client.transports import SSETransport

                return SSETransport(e.url, headers=headers)
            from fastmcp.client.transports import StreamableHttpTransport

            return StreamableHttpTransport(e.url, headers=headers)
        from fastmcp.client.transports import StdioTransport

        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / f"{e.name}.log"
        cwd = Path(e.cwd).expanduser() if e.cwd else self.cwd
        if not cwd.is_absolute():
            cwd = self.cwd / cwd
        return StdioTransport(e.command or "", list(e.args), env=dict(e.env) or None, cwd=str(cwd),
                              keep_alive=False, log_file=self.log_path)

    @property
    def alive(self) -> bool:
        client = self._client
        return bool(self._owner is not None and not self._owner.done() and client is not None
                    and client.is_connected())

    async def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> list[Any]:
        """Connect and list the tools; raises with the reason on failure."""
        await self.close()
        from fastmcp import Client

        client = Client(self._transport(), timeout=self.entry.timeout_s, init_timeout=timeout_s)
        ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self._stop = stop = asyncio.Event()
        self._client = client
        self._owner = asyncio.create_task(self._own(client, ready, stop), name=f"mcp-{self.entry.name}")
        try:
            self.tools = await asyncio.wait_for(asyncio.shield(ready), timeout_s)
        except BaseException:
            await self.close()
            raise
        return self.tools

    async def _own(self, client: Any, ready: asyncio.Future, stop: asyncio.Event) -> None:
        """Holds the client's context for the connection's life (entered and left in this task)."""
        try:
            async with client:
                tools = await client.list_tools()
                if not ready.done():
                    ready.set_result(list(tools))
                # until asked to stop, or until the session ends under us (the server exited)
                session = getattr(getattr(client, "_session_state", None), "session_task", None)
                waiter = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait([waiter, session] if session is not None else [waiter],
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                if not stop.is_set():
                    reason = "the server closed the connection"
                    if session is not None and session.done() and not session.cancelled() and session.exception():
                        reason = describe_error(session.exception())
                    self.on_lost(reason)
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(describe_error(exc)))
            else:
                log.info("MCP server %s: connection ended: %s", self.entry.name, describe_error(exc))

    async def call(self, tool: str, arguments: dict[str, Any], timeout_s: float) -> Any:
        client = self._client
        if client is None:
            raise RuntimeError("not connected")
        return await client.call_tool(tool, arguments, timeout=timeout_s, raise_on_error=False)

    async def close(self) -> None:
        owner, self._owner = self._owner, None
        if self._stop is not None:
            self._stop.set()
        if owner is not None and not owner.done():
            try:
                await asyncio.wait_for(asyncio.shield(owner), 3.0)
            except (asyncio.TimeoutError, Exception):
                owner.cancel()
                try:
                    await owner
                except BaseException:
                    pass
        self._client = None
