"""MCP server entries: the user config's ``mcpServers``, a project's ``.mcp.json`` (used only
once the user trusted that file as it is), ``--mcp-config`` files, and the Hugging Face
server every user with a token gets by default.

An entry is the shape other agents use::

    "name": {"command": "uvx", "args": ["some-server"], "env": {...}, "cwd": "..."}    # stdio
    "name": {"url": "https://host/mcp", "transport": "http", "headers": {...}}         # remote

plus our keys: ``enabled`` (default true), ``timeout`` (seconds per call, default 60),
``approval`` (``ask`` | ``auto``), ``allow`` / ``deny`` (tool names; ``allow`` keeps only
those). ``${VAR}`` and ``${VAR:-default}`` are substituted per entry, so one entry naming an
unset variable is one broken server, said as such, not a broken config.

Nothing here imports fastmcp.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from agent.config import ConfigError, substitute_env

PROJECT_FILE = ".mcp.json"
TRUST_FILE = "trusted_mcp.json"
DEFAULT_NAME = "hf"
DEFAULT_TIMEOUT_S = 60.0
Origin = Literal["user", "project", "default", "cli"]
_KNOWN_KEYS = frozenset({"command", "args", "env", "cwd", "url", "transport", "headers", "enabled", "timeout",
                         "approval", "allow", "deny", "type", "description"})


@dataclass
class ServerEntry:
    name: str
    origin: Origin
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    transport: str = "stdio"  # stdio | http | sse
    headers: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S
    approval: Literal["ask", "auto"] = "ask"
    allow: list[str] | None = None
    deny: list[str] = field(default_factory=list)
    #: why this entry cannot be used (the server shows as failed with it); None: usable
    error: str | None = None
    #: where it was written, for messages ("~/.config/mlintern/config.json", "./.mcp.json")
    source: str = ""

    @property
    def target(self) -> str:
        """The command line or URL, in words."""
        if self.url:
            return self.url
        return " ".join([self.command or "?", *self.args])

    @property
    def is_hf(self) -> bool:
        return self.origin == "default"


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings")
    return list(value)


def _mapping(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, (str, int, float, bool))
                                              for k, v in value.items()):
        raise ValueError(f"{what} must be an object of strings")
    return {k: str(v) for k, v in value.items()}


def parse_entry(name: str, raw: Any, origin: Origin, source: str = "",
                env: Mapping[str, str] | None = None) -> ServerEntry:
    """One entry; a problem is kept in ``error`` (and the entry disabled), never raised."""
    entry = ServerEntry(name=name, origin=origin, source=source)
    try:
        if not name or any(c.isspace() for c in name) or "__" in name:
            raise ValueError("a server name must be non-empty, without spaces or '__'")
        if not isinstance(raw, dict):
            raise ValueError(f"expected an object, got {type(raw).__name__}")
        raw = substitute_env(raw, dict(os.environ if env is None else env))
        unknown = sorted(set(raw) - _KNOWN_KEYS)
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}")
        entry.enabled = raw.get("enabled", True) is not False
        if "timeout" in raw:
            timeout = raw["timeout"]
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
                raise ValueError("timeout must be a positive number of seconds")
            entry.timeout_s = float(timeout)
        if "approval" in raw:
            if raw["approval"] not in ("ask", "auto"):
                raise ValueError("approval must be 'ask' or 'auto'")
            entry.approval = raw["approval"]
        if "allow" in raw:
            entry.allow = _strings(raw["allow"], "allow")
        if "deny" in raw:
            entry.deny = _strings(raw["deny"], "deny")
        transport = str(raw.get("transport") or raw.get("type") or "").lower()
        if raw.get("url") is not None:
            url = raw["url"]
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError("url must be an http(s) URL")
            transport = transport or "http"
            if transport in ("http", "streamable-http", "streamable_http", "streamablehttp"):
                transport = "http"
            elif transport != "sse":
                raise ValueError(f"transport {transport!r} is not one of http, streamable-http, sse for a url")
            entry.url, entry.transport = url, transport
            entry.headers = _mapping(raw.get("headers") or {}, "headers")
            if raw.get("command"):
                raise ValueError("give either command (stdio) or url, not both")
        elif raw.get("command") is not None:
            if transport not in ("", "stdio"):
                raise ValueError(f"transport {transport!r} needs a url; a command runs over stdio")
            if not isinstance(raw["command"], str) or not raw["command"].strip():
                raise ValueError("command must be a non-empty string")
            entry.command = raw["command"]
            entry.args = _strings(raw.get("args") or [], "args")
            entry.env = _mapping(raw.get("env") or {}, "env")
            if raw.get("cwd") is not None:
                if not isinstance(raw["cwd"], str):
                    raise ValueError("cwd must be a string")
                entry.cwd = raw["cwd"]
        else:
            raise ValueError("needs a command (stdio) or a url (http/sse)")
    except (ValueError, ConfigError) as exc:
        entry.error = f"{source + ': ' if source else ''}server {name!r}: {exc}"
        entry.enabled = False
    return entry


def parse_servers(raw: Any, origin: Origin, source: str = "", env: Mapping[str, str] | None = None) -> list[ServerEntry]:
    """The entries of an ``mcpServers`` object (a non-object is one broken pseudo-entry)."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [ServerEntry(name="mcpServers", origin=origin, source=source, enabled=False,
                            error=f"{source + ': ' if source else ''}mcpServers must be an object of servers")]
    return [parse_entry(str(name), value, origin, source, env) for name, value in raw.items()]


def read_servers_file(path: Path, origin: Origin) -> tuple[list[ServerEntry], str | None]:
    """(entries, error) of a ``.mcp.json``-shaped file: ``{"mcpServers": {...}}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], None
    except (OSError, ValueError) as exc:
        return [], f"{path} cannot be read as JSON: {exc}"
    if not isinstance(data, dict):
        return [], f"{path} must hold a JSON object with mcpServers"
    return parse_servers(data.get("mcpServers", {}), origin, str(path)), None


def default_hf_entry(hub: str, token: str | None) -> ServerEntry:
    """Hugging Face's own MCP server, at the configured Hub (``<hub>/mcp``). Read-only tools
    run on their own (``approval`` auto applies to those only; see ``McpTool``)."""
    entry = ServerEntry(name=DEFAULT_NAME, origin="default", url=hub.rstrip("/") + "/mcp", transport="http",
                        approval="auto", source="built in")
    if not token:
        entry.enabled = False
        entry.error = "no Hugging Face token (set HF_TOKEN or run `hf auth login`)"
    return entry


# --------------------------------------------------------------------------- project trust


def file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class ProjectTrust:
    """Project ``.mcp.json`` files the user agreed to run, by path and content hash: a file
    that changed since is asked about again (a pulled commit could add a server)."""

    def __init__(self, path: Path):
        self.path = path

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
            return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def trusted(self, project_file: Path) -> bool:
        digest = file_digest(project_file)
        return digest is not None and self._load().get(str(project_file.resolve())) == digest

    def trust(self, project_file: Path) -> None:
        digest = file_digest(project_file)
        if digest is None:
            return
        data = self._load()
        data[str(project_file.resolve())] = digest
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".trusted_mcp.")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, self.path)
