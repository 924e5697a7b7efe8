"""``RoutedEmulator``: the base of the loopback HTTP emulators (web, dataset viewer, GitHub,
arXiv/ar5iv, Semantic Scholar).

A subclass sets ``ROUTES``, a table of (method, path regex, handler name); a handler gets a
``Call`` (method, path, query, headers, body (``.json`` decodes it), the regex's named
groups, the base URL the client used) and returns a JSON payload, ``(status, payload)``,
``(status, payload, headers)``, a ``RawResponse`` or a ``Streamed`` answer, or raises
``Fail``. A GET route answers HEAD too. Every request is recorded (``requests``, ``requests_to``) with its
headers, lowercased, so tests can assert which token went where; ``fail_next`` scripts
error answers for matching paths. A ``Streamed`` answer is written a chunk at a time and
logged (``streams``: the bytes actually written), so a test can tell a client that read a
body from one that hung up after the headers.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes._loopback import Fail, LoopbackHandler, LoopbackLifecycle, RawResponse, StopAnswering, TrackingHTTPServer


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lowercased
    body: bytes = b""

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def form(self) -> dict[str, list[str]]:
        """The fields of a URL-encoded body ({} for any other body)."""
        if not self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return {}
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    @property
    def json(self) -> Any:
        """The decoded JSON body (None for an empty or non-JSON body)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def token(self) -> str | None:
        auth = self.authorization or ""
        for prefix in ("Bearer ", "token "):
            if auth.startswith(prefix):
                return auth[len(prefix):]
        return None


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str]
    base: str  # scheme://host:port the client used

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def json(self) -> Any:
        """The decoded JSON body (None when empty); a malformed body is a 400, as live APIs answer."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise Fail(400, "request body is not valid JSON") from None

    @property
    def token(self) -> str | None:
        auth = self.headers.get("authorization") or ""
        for prefix in ("Bearer ", "token "):
            if auth.startswith(prefix):
                return auth[len(prefix):]
        return None


@dataclass(frozen=True)
class Streamed:
    """An answer of ``length`` bytes (``chunk`` repeated), its Content-Length sent up front,
    then written one chunk every ``pace_s`` seconds until done or the client hangs up."""

    status: int
    content_type: str
    length: int
    chunk: bytes = b"\x00" * 65536
    pace_s: float = 0.02
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamLog:
    """What became of one ``Streamed`` answer: the bytes written before it ended."""

    path: str
    length: int
    written: int = 0
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Scripted:
    pattern: re.Pattern[str]
    status: int
    payload: Any
    headers: dict[str, str]
    times: int


class RoutedEmulator(LoopbackLifecycle):
    """A loopback server with a route table; subclasses set ``ROUTES`` and handlers."""

    ROUTES: list[tuple[str, str, str]] = []
    _thread_name = "routed-fake"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._httpd = None
        self._thread = None
        self._requests: list[Recorded] = []
        self._scripted: list[_Scripted] = []
        self._streams: list[StreamLog] = []
        self._routes = [(m, re.compile(p), h) for m, p, h in self.ROUTES]

    def _new_httpd(self) -> TrackingHTTPServer:
        return TrackingHTTPServer(self, _RoutedHandler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def streams(self) -> list[StreamLog]:
        with self._lock:
            return list(self._streams)

    def requests_to(self, path_pattern: str) -> list[Recorded]:
        pattern = re.compile(path_pattern)
        return [r for r in self.requests if pattern.search(r.path)]

    def fail_next(self, path_pattern: str, status: int, payload: Any = None, headers: dict[str, str] | None = None,
                  times: int = 1) -> None:
        """Answer the next ``times`` requests whose path matches with ``status`` and ``payload``
        (JSON, or a ``RawResponse``)."""
        with self._lock:
            self._scripted.append(_Scripted(re.compile(path_pattern), status, payload, dict(headers or {}), times))

    def _fail_payload(self, failure: Fail) -> Any:
        return {"error": failure.message}

    def _handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Any:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        base = f"http://{headers.get('host', f'127.0.0.1:{self.port}')}"
        with self._lock:
            self._requests.append(Recorded(method, parts.path, query, headers, body))
            for scripted in self._scripted:
                if scripted.times > 0 and scripted.pattern.search(parts.path):
                    scripted.times -= 1
                    if isinstance(scripted.payload, RawResponse):
                        return scripted.payload
                    return scripted.status, scripted.payload, scripted.headers
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(parts.path)
            if match and (route_method == method or (route_method == "GET" and method == "HEAD")):
                call = Call(method, parts.path, query, headers, body, match.groupdict(), base)
                try:
                    with self._lock:
                        result = getattr(self, handler)(call)
                except Fail as failure:
                    return failure.status, self._fail_payload(failure), failure.headers
                except Exception as exc:  # an emulator bug: answer loudly, never hang the client
                    return 500, {"error": f"emulator crashed on {method} {parts.path}: {type(exc).__name__}: {exc}"}, {}
                if isinstance(result, (RawResponse, Streamed)):
                    return result
                if isinstance(result, tuple) and len(result) == 3:
                    return result
                status, payload = result if isinstance(result, tuple) else (200, result)
                return status, payload, {}
        return 404, self._fail_payload(Fail(404, f"no route {method} {parts.path}")), {}


class _RoutedHandler(LoopbackHandler):
    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def _dispatch(self, method: str) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            result = self.server.owner._handle(method, self.path, headers, raw)
            if isinstance(result, RawResponse):
                self._send_raw(result)
            elif isinstance(result, Streamed):
                self._send_streamed(result)
            else:
                self._send_json(*result)
        except (BrokenPipeError, ConnectionResetError, StopAnswering):
            self.close_connection = True

    def _send_streamed(self, answer: Streamed) -> None:
        owner = self.server.owner
        log = StreamLog(self.path.split("?", 1)[0], answer.length)
        with owner._lock:
            owner._streams.append(log)
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(answer.length))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.flush()
            if self.command == "HEAD":
                return
            while log.written < answer.length:
                if owner._stopping.is_set():
                    raise StopAnswering
                piece = answer.chunk[: answer.length - log.written]
                self.wfile.write(piece)
                self.wfile.flush()
                log.written += len(piece)
                time.sleep(answer.pace_s)
        finally:
            log.done.set()


__all__ = ["Call", "Fail", "RawResponse", "Recorded", "RoutedEmulator", "StreamLog", "Streamed"]
