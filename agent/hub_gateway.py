"""The Hub gateway: a loopback HTTP proxy between the processes the agent starts and the Hub.

Those processes get ``HF_ENDPOINT=gateway.url`` and ``HF_TOKEN=gateway.stand_in``, a random
session-scoped token that is worth nothing outside this gateway. The gateway forwards each
request to the real endpoint with the real token, so the token never enters their
environment, and it asks the policy (``decide``) before any request that spends money or
writes (agent/hub_gateway_routes.py names them). Reads stream through: neither bodies nor
answers are buffered, so a 200 MB download costs a chunk of memory, and range requests and
redirects pass as the Hub sent them (a redirect back to the Hub itself is pointed at the
gateway, so the client never needs the real token to follow it).

aiohttp is imported in ``start()``: a session that never starts a process never pays for it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import json
import logging
import re
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from agent.hub_gateway_routes import RouteKind, classify, refine, repo_from_body, repo_of

log = logging.getLogger(__name__)

CONTROL_BODY_LIMIT = 1 << 20  # gated requests other than commits are small JSON; refuse bigger
_CHUNK = 1 << 18
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "host",
})
# aiohttp would otherwise add its own; the client's (or their absence) must reach the Hub
_SKIP_AUTO = ("Accept-Encoding", "User-Agent", "Content-Type", "Accept")


@dataclass(frozen=True)
class CommitFile:
    """One operation of a commit, without its content."""

    path: str
    operation: str  # add | lfs | delete | delete_folder
    size: int | None = None  # bytes after decoding; None for deletions


@dataclass(frozen=True)
class GatewayRequest:
    """A gated request, as the policy sees it."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    kind: RouteKind
    repo_type: str | None = None
    repo_id: str | None = None
    body: Any = None  # the parsed JSON body of a control request (None for commits)
    commit_header: Mapping[str, Any] | None = None  # summary, description, parentCommit
    files: tuple[CommitFile, ...] = ()
    caller: str | None = None  # the label given to the stand-in the request carried


@dataclass(frozen=True)
class GatewayVerdict:
    allowed: bool
    reason: str = ""


Decide = Callable[[GatewayRequest], Awaitable[GatewayVerdict]]
#: called once per allowed job launch: with the Hub's answer (a dict) when it accepted the
#: job, with None when it refused or could not be reached (so a reservation is released)
OnJob = Callable[[dict | None, GatewayRequest], Any]


class GatewayRefusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class _Body:
    """What to send upstream: the client's stream, bytes already read, or a spool file."""

    data: bytes | None = None
    spool: IO[bytes] | None = None
    stream: bool = False
    length: int | None = None


@dataclass
class HubGateway:
    upstream: str
    real_token: Callable[[], str | None]
    decide: Decide
    on_job: OnJob | None = None
    _stand_ins: dict[str, str | None] = field(default_factory=dict, init=False, repr=False)
    _runner: Any = field(default=None, init=False, repr=False)
    _client: Any = field(default=None, init=False, repr=False)
    _url: str | None = field(default=None, init=False)
    _start_lock: asyncio.Lock | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.upstream = self.upstream.rstrip("/")
        parts = urlsplit(self.upstream)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"The Hub endpoint {self.upstream!r} is not an http(s) URL.")
        self._origin = f"{parts.scheme}://{parts.netloc}".lower()
        self.stand_in = self.issue_stand_in(None)

    # ---- tokens ----

    def issue_stand_in(self, caller: str | None) -> str:
        """A new stand-in token whose requests are labelled ``caller`` (e.g. "bash: python
        train.py"), so a card can name the process that asked."""
        token = f"hf_gateway_{secrets.token_hex(16)}"
        self._stand_ins[token] = caller
        return token

    # ---- life cycle ----

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("The Hub gateway is not running; await start() first.")
        return self._url

    @property
    def running(self) -> bool:
        return self._url is not None

    async def start(self) -> str:
        """Start serving on 127.0.0.1 (a no-op when already running); returns the URL."""
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._url is not None:
                return self._url
            from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # port 0: ask the socket which one
            self._client = ClientSession(
                connector=TCPConnector(limit=64),
                timeout=ClientTimeout(total=None, sock_connect=30),
                auto_decompress=False,  # pass compressed bodies through as they are
                skip_auto_headers=_SKIP_AUTO,
                read_bufsize=1 << 20,
                cookie_jar=_no_cookies(),
            )
            self._runner = runner
            self._url = f"http://127.0.0.1:{port}"
            return self._url

    async def stop(self) -> None:
        if self._runner is None:
            return
        runner, client = self._runner, self._client
        self._runner = self._client = self._url = None
        await runner.cleanup()
        await client.close()

    # ---- serving ----

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        try:
            caller, token = self._authorize(request.headers.get("Authorization"))
            target = self._target(request.raw_path)
            kind = classify(request.method, request.path)
            gated: GatewayRequest | None = None
            body = _Body(stream=request.body_exists, length=request.content_length)
            if kind.gated:
                gated, body = await self._gated(request, kind, caller)
                verdict = await self._decide(gated)
                if not verdict.allowed:
                    raise GatewayRefusal(403, verdict.reason or "The agent's policy refused this Hub request.")
            return await self._forward(request, target, token, body, gated)
        except GatewayRefusal as refusal:
            return web.json_response({"error": refusal.message}, status=refusal.status)

    def _authorize(self, header: str | None) -> tuple[str | None, str | None]:
        """(caller label, the real Authorization header to send or None)."""
        if not header:
            return None, None  # anonymous: forwarded without any token
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":  # git over HTTPS: user:token
            try:
                user, _, value = base64.b64decode(value).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, value = "", ""
            if value in self._stand_ins:
                real = self.real_token()
                auth = f"Basic {base64.b64encode(f'{user}:{real}'.encode()).decode()}" if real else None
                return self._stand_ins[value], auth
        elif scheme.lower() in ("bearer", "token") and value in self._stand_ins:
            real = self.real_token()
            return self._stand_ins[value], f"Bearer {real}" if real else None
        raise GatewayRefusal(401, "This token is not the one the agent gave this process; use the HF_TOKEN "
                                  "from its environment.")

    def _target(self, raw_path: str) -> str:
        # An absolute-form or protocol-relative target must not steer the real token elsewhere.
        if not raw_path.startswith("/") or raw_path.startswith("//"):
            raise GatewayRefusal(400, "The Hub gateway only forwards paths on the Hub.")
        return self.upstream + raw_path

    async def _gated(self, request: Any, kind: RouteKind, caller: str | None) -> tuple[GatewayRequest, _Body]:
        query = parse_qs(request.query_string, keep_blank_values=True)
        repo = repo_of(request.path)
        if kind is RouteKind.COMMIT:
            spool = await _spool(request.content)
            length = spool.seek(0, 2)
            header, files = await asyncio.to_thread(_commit_summary, spool)
            gated = GatewayRequest(request.method, request.path, query, kind, *(repo or (None, None)),
                                   commit_header=header, files=files, caller=caller)
            return gated, _Body(spool=spool, length=length)
        data = await _read_capped(request.content, CONTROL_BODY_LIMIT) if request.body_exists else b""
        parsed = _json_or_none(data)
        kind = refine(kind, parsed)
        repo = repo or repo_from_body(kind, parsed)
        gated = GatewayRequest(request.method, request.path, query, kind, *(repo or (None, None)),
                               body=parsed, caller=caller)
        return gated, _Body(data=data if request.body_exists else None, length=len(data))

    async def _decide(self, gated: GatewayRequest) -> GatewayVerdict:
        try:
            return await self.decide(gated)
        except Exception as exc:  # a broken policy must refuse, never let the request through
            log.exception("hub gateway: decide failed for %s %s", gated.method, gated.path)
            return GatewayVerdict(False, f"The agent could not check this Hub request ({type(exc).__name__}), "
                                         "so it was refused.")

    async def _forward(self, request: Any, target: str, auth: str | None, body: _Body,
                       gated: GatewayRequest | None) -> Any:
        import aiohttp
        from aiohttp import web

        headers = [(k, v) for k, v in request.headers.items()
                   if k.lower() not in _HOP_BY_HOP and k.lower() not in ("authorization", "content-length")]
        if auth:
            headers.append(("Authorization", auth))
        data: Any = None
        if body.spool is not None:
            data = _iter_file(body.spool)
        elif body.data is not None:
            data = body.data
        elif body.stream:
            data = request.content.iter_chunked(_CHUNK)
        if body.length is not None and data is not None:
            headers.append(("Content-Length", str(body.length)))
        try:
            upstream = await self._client.request(
                request.method, target, headers=headers, data=data, allow_redirects=False)
        except aiohttp.ClientError as exc:
            if gated is not None and gated.kind is RouteKind.JOB_CREATE:
                await self._report_job(None, gated)
            raise GatewayRefusal(502, f"The Hub at {self.upstream} could not be reached ({exc}).") from exc
        finally:
            if body.spool is not None:
                body.spool.close()
        try:
            if gated is not None and gated.kind is RouteKind.JOB_CREATE:
                return await self._answer_job(upstream, gated)
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            self._copy_headers(upstream, response)
            await response.prepare(request)
            if request.method != "HEAD":
                # each piece as it arrived, unjoined (iter_any would copy them into one): a log
                # line must not wait for more, and a download pays one copy less per byte
                async for piece, _ in upstream.content.iter_chunks():
                    await response.write(piece)
            await response.write_eof()
            return response
        finally:
            upstream.release()

    def _copy_headers(self, upstream: Any, response: Any) -> None:
        for name, value in upstream.headers.items():
            lower = name.lower()
            if lower in _HOP_BY_HOP:
                continue
            if lower == "location":
                value = self._relocate(value)
            response.headers.add(name, value)

    def _relocate(self, location: str) -> str:
        """A redirect to the Hub itself comes back through the gateway; any other is unchanged."""
        parts = urlsplit(location)
        if parts.scheme and f"{parts.scheme}://{parts.netloc}".lower() == self._origin:
            rest = location[len(parts.scheme) + 3 + len(parts.netloc):]
            base = urlsplit(self.upstream).path  # an endpoint with a path prefix keeps it out
            if base and rest.startswith(base):
                rest = rest[len(base):]
            return self.url + rest
        return location

    async def _answer_job(self, upstream: Any, gated: GatewayRequest) -> Any:
        from aiohttp import web

        data = await _read_capped(upstream.content, 8 * CONTROL_BODY_LIMIT)
        response = web.Response(status=upstream.status, reason=upstream.reason, body=data)
        for name, value in upstream.headers.items():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                response.headers.add(name, value)
        job = _json_or_none(data)
        await self._report_job(job if 200 <= upstream.status < 300 and isinstance(job, dict) else None, gated)
        return response

    async def _report_job(self, job: dict | None, gated: GatewayRequest) -> None:
        if self.on_job is None:
            return
        try:
            result = self.on_job(job, gated)
            if inspect.isawaitable(result):
                await result
        except Exception:  # the job runs whatever the monitor thinks; the client gets its answer
            log.exception("hub gateway: on_job failed for %s", (job or {}).get("id", "a refused launch"))


# ---- helpers ----


def _no_cookies() -> Any:
    from aiohttp import DummyCookieJar

    return DummyCookieJar()


async def _read_capped(stream: Any, limit: int) -> bytes:
    chunks, size = [], 0
    async for piece in stream.iter_any():
        size += len(piece)
        if size > limit:
            raise GatewayRefusal(413, f"This Hub request's body is over {limit // (1 << 20)} MB, more than the "
                                      "gateway reads for a request that needs approval.")
        chunks.append(piece)
    return b"".join(chunks)


async def _spool(stream: Any) -> IO[bytes]:
    spool = tempfile.SpooledTemporaryFile(max_size=CONTROL_BODY_LIMIT)  # noqa: SIM115  (closed after forwarding)
    async for piece in stream.iter_chunked(_CHUNK):
        spool.write(piece)
    return spool


async def _iter_file(spool: IO[bytes]) -> AsyncIterator[bytes]:
    spool.seek(0)
    while piece := spool.read(_CHUNK):
        yield piece


def _json_or_none(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


_LINE_LIMIT = 1 << 20
_EDGE = 4096
_PATH_RE = re.compile(rb'"path"\s*:\s*"((?:[^"\\]|\\.)*)"')
_KEY_RE = re.compile(rb'"key"\s*:\s*"(\w+)"')
_CONTENT_RE = re.compile(rb'"content"\s*:\s*"')
_OPERATIONS = {"file": "add", "lfsFile": "lfs", "deletedFile": "delete", "deletedFolder": "delete_folder"}


def _commit_summary(spool: IO[bytes]) -> tuple[dict | None, tuple[CommitFile, ...]]:
    """The header and the file list of an NDJSON commit body, reading it a line at a time;
    an inline file bigger than ``_LINE_LIMIT`` is measured, never held whole."""
    spool.seek(0)
    header: dict | None = None
    files: list[CommitFile] = []
    while line := spool.readline(_LINE_LIMIT):
        if line.endswith(b"\n") or len(line) < _LINE_LIMIT:
            item = _json_or_none(line)
            if not isinstance(item, dict):
                continue
            value = item.get("value") if isinstance(item.get("value"), dict) else {}
            if item.get("key") == "header":
                header = value
            elif item.get("key") in _OPERATIONS:
                files.append(_commit_file(item["key"], value))
            continue
        head, tail, length = line[:_EDGE], line[-_EDGE:], len(line)
        while not line.endswith(b"\n") and (line := spool.readline(_LINE_LIMIT)):
            tail, length = (tail + line)[-_EDGE:], length + len(line)
        files.append(_big_inline_file(head, tail, length))
    return header, tuple(files)


def _commit_file(key: str, value: dict) -> CommitFile:
    path = str(value.get("path", ""))
    if key == "file":
        content = str(value.get("content", ""))
        return CommitFile(path, "add", len(content) * 3 // 4 - content[-2:].count("="))
    if key == "lfsFile":
        size = value.get("size")
        return CommitFile(path, "lfs", size if isinstance(size, int) else None)
    return CommitFile(path, _OPERATIONS[key])


def _big_inline_file(head: bytes, tail: bytes, length: int) -> CommitFile:
    path_match = _PATH_RE.search(tail) or _PATH_RE.search(head)
    path = json.loads(b'"' + path_match.group(1) + b'"') if path_match else "?"
    start = _CONTENT_RE.search(head)
    size = None
    if start is not None and b'"' in tail:
        # base64 has no quotes: the content runs from after its opening quote in the head to
        # the first quote in the tail
        end_in_line = length - len(tail) + tail.index(b'"')
        encoded = end_in_line - start.end()
        size = encoded * 3 // 4 - tail[: tail.index(b'"')][-2:].count(b"=")
    return CommitFile(path, "add", size)


__all__ = ["CommitFile", "GatewayRefusal", "GatewayRequest", "GatewayVerdict", "HubGateway", "RouteKind", "classify"]
