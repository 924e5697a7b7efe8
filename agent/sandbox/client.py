"""An async client for the sandbox control server (``agent.sandbox.server``).

Two credentials travel with every request: ``Authorization: Bearer <HF token>`` opens the
private Space's edge, ``X-Sandbox-Authorization: Bearer <sandbox token>`` opens our server.
Every failure becomes a ``SandboxError`` whose message says what happened and what to do.
"""

from __future__ import annotations

import asyncio
import posixpath
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

AUTH_HEADER = "X-Sandbox-Authorization"
SERVER_HEADER = "X-Sandbox-Server"
#: extra seconds over a command's own timeout before the HTTP call gives up
BASH_MARGIN_S = 30.0
DEFAULT_WORKDIR = "/app"


class SandboxError(Exception):
    """A sandbox failure with a message meant for people (and the model).

    ``code`` is the server's word for refusals (``not_found``, ``stale``, ``unread`` ...),
    or ``unauthorized`` / ``unreachable`` / ``timeout`` / ``http`` for transport problems.
    """

    def __init__(self, message: str, code: str = "error", status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.status = code, status


@dataclass(frozen=True)
class FileState:
    """What a file looked like when the agent last saw it."""

    mtime_ns: int
    size: int

    def as_json(self) -> dict[str, int]:
        return {"mtime_ns": self.mtime_ns, "size": self.size}


@dataclass(frozen=True)
class BashOutput:
    output: str
    exit_code: int | None
    timed_out: bool
    killed: bool
    truncated: bool
    spill_path: str | None
    duration_s: float


@dataclass(frozen=True)
class FileText:
    path: str
    content: str
    first_line: int
    last_line: int
    total_lines: int
    state: FileState


@dataclass(frozen=True)
class FileChange:
    path: str
    state: FileState
    created: bool = False
    lines: int = 0
    bytes: int = 0
    replacements: int = 0
    first_line: int = 0
    snippet: str = ""
    warnings: tuple[str, ...] = ()


def _state(data: dict[str, Any]) -> FileState:
    return FileState(int(data["mtime_ns"]), int(data["size"]))


class SandboxClient:
    def __init__(
        self,
        base_url: str,
        sandbox_token: str,
        hf_token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {AUTH_HEADER: f"Bearer {sandbox_token}"}
        if hf_token:
            headers["Authorization"] = f"Bearer {hf_token}"
        self.timeout = timeout
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout,
                                       transport=transport, follow_redirects=False)
        self.workdir: str | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, route: str, body: dict | None = None,
                       timeout: float | None = None) -> dict[str, Any]:
        url = f"{self.base_url}/api/{route}"
        wait = timeout or self.timeout
        try:
            response = await self._http.request(method, f"/api/{route}", json=body, timeout=wait)
        except httpx.ConnectError as exc:
            raise SandboxError(
                f"Cannot connect to the sandbox at {self.base_url} ({_reason(exc)}). The Space may be asleep, "
                "restarting or deleted; check it on the Hub or create a new sandbox.", "unreachable") from exc
        except httpx.TimeoutException as exc:
            raise SandboxError(
                f"The sandbox at {self.base_url} did not answer {route} within {wait:.0f}s; it may be overloaded "
                "or restarting. Try again, or check the Space's logs on the Hub.", "timeout") from exc
        except httpx.HTTPError as exc:
            raise SandboxError(f"Request to the sandbox at {url} failed: {_reason(exc)}.", "unreachable") from exc
        ours = response.headers.get(SERVER_HEADER) == "1"
        try:
            data = response.json() if ours else None
        except ValueError:
            data = None
        if response.status_code == 200 and isinstance(data, dict):
            return data
        status = response.status_code
        if status == 401 and ours:
            raise SandboxError(
                "The sandbox rejected its control token (401). It was probably restarted with a different "
                "SANDBOX_API_TOKEN; create a new sandbox.", "unauthorized", status)
        if status in (401, 403) and not ours:
            raise SandboxError(
                f"The Space in front of the sandbox refused the Hugging Face token ({status}) for {self.base_url}. "
                "Check that HF_TOKEN can read private Spaces of this namespace.", "unauthorized", status)
        if isinstance(data, dict) and data.get("error"):
            raise SandboxError(str(data["error"]), str(data.get("code") or "error"), status)
        hint = " (the Space is probably building, restarting or asleep)" if status in (502, 503, 504) else ""
        raise SandboxError(f"The sandbox at {url} answered HTTP {status}{hint}.", "http", status)

    # ---- routes

    async def health(self, timeout: float | None = None) -> dict[str, Any]:
        data = await self._request("GET", "health", timeout=timeout)
        self.workdir = str(data.get("workdir") or DEFAULT_WORKDIR)
        return data

    async def resolve(self, path: str) -> str:
        """The absolute remote path the server will use for ``path`` (symlinks aside)."""
        if self.workdir is None:
            await self.health()
        return posixpath.normpath(posixpath.join(self.workdir or DEFAULT_WORKDIR, path))

    async def bash(self, command: str, *, timeout: int = 240, cwd: str | None = None) -> BashOutput:
        """Run a command; if this call is cancelled, the remote command is killed too."""
        call_id = uuid.uuid4().hex
        body = {"command": command, "timeout": timeout, "cwd": cwd, "id": call_id}
        try:
            data = await self._request("POST", "bash", body, timeout=timeout + BASH_MARGIN_S)
        except asyncio.CancelledError:
            # an interrupted turn must not leave a training run going in the sandbox
            killer = asyncio.ensure_future(self._kill_quietly(call_id))
            _BACKGROUND.add(killer)
            killer.add_done_callback(_BACKGROUND.discard)
            raise
        return BashOutput(
            output=str(data.get("output", "")), exit_code=data.get("exit_code"),
            timed_out=bool(data.get("timed_out")), killed=bool(data.get("killed")),
            truncated=bool(data.get("truncated")), spill_path=data.get("spill_path"),
            duration_s=float(data.get("duration_s") or 0.0),
        )

    async def _kill_quietly(self, call_id: str) -> None:
        try:
            await self.kill(call_id)
        except SandboxError:
            pass

    async def kill(self, call_id: str | None = None) -> int:
        """Stop the running command ``call_id``, or every running command; returns how many."""
        data = await self._request("POST", "kill", {"id": call_id} if call_id else {})
        return int(data.get("killed", 0))

    async def read(self, path: str, offset: int = 1, limit: int = 2000) -> FileText:
        data = await self._request("POST", "read", {"path": path, "offset": offset, "limit": limit})
        return FileText(str(data["path"]), str(data["content"]), int(data["first_line"]), int(data["last_line"]),
                        int(data["total_lines"]), _state(data))

    async def write(self, path: str, content: str, *, expect: FileState | None = None,
                    create_only: bool = False) -> FileChange:
        body: dict[str, Any] = {"path": path, "content": content, "create_only": create_only}
        if expect is not None:
            body["expect"] = expect.as_json()
        data = await self._request("POST", "write", body)
        return FileChange(str(data["path"]), _state(data), created=bool(data.get("created")),
                          lines=int(data.get("lines", 0)), bytes=int(data.get("bytes", 0)),
                          warnings=tuple(data.get("warnings") or ()))

    async def edit(self, path: str, old_str: str, new_str: str, *, replace_all: bool = False,
                   expect: FileState | None = None) -> FileChange:
        body: dict[str, Any] = {"path": path, "old_str": old_str, "new_str": new_str, "replace_all": replace_all}
        if expect is not None:
            body["expect"] = expect.as_json()
        data = await self._request("POST", "edit", body)
        return FileChange(str(data["path"]), _state(data), replacements=int(data.get("replacements", 1)),
                          first_line=int(data.get("first_line", 0)), snippet=str(data.get("snippet", "")),
                          warnings=tuple(data.get("warnings") or ()))


#: kill requests sent after a cancelled bash call, kept referenced until they finish
_BACKGROUND: set[asyncio.Future] = set()


def _reason(exc: BaseException) -> str:
    """The most telling cause: httpx wraps a refused connection in two generic errors."""
    cause: BaseException | None = exc
    seen = 0
    while cause is not None and seen < 10:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return str(exc).strip() or type(exc).__name__
