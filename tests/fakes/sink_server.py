"""A loopback web host that records every request with all its headers and answers what a
test scripted for a path (default: a small HTML page). It stands for "somewhere that is not
the Hub and not GitHub": token-hygiene tests point tools at it and check what arrived.

    with SinkServer() as sink:
        sink.route("/moved", RawResponse(302, headers={"Location": other_url}))
        sink.route("/busy", RawResponse(429, b"{}", "application/json", {"Retry-After": "120"}))
        ... sink.url("/page") ...
        sink.requests  # [SinkRequest(method, path, headers, body)]
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from tests.fakes._loopback import LoopbackHandler, LoopbackLifecycle, RawResponse, StopAnswering, TrackingHTTPServer

DEFAULT_PAGE = RawResponse(200, b"<html><head><title>Sink</title></head><body><main><h1>Sink page</h1>"
                                b"<p>Nothing to see.</p></main></body></html>", "text/html; charset=utf-8")


@dataclass(frozen=True)
class SinkRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class SinkServer(LoopbackLifecycle):
    _thread_name = "sink"

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._httpd = None
        self._thread = None
        self._lock = threading.Lock()
        self._routes: dict[str, RawResponse | Callable[[SinkRequest], RawResponse]] = {}
        self._requests: list[SinkRequest] = []

    def _new_httpd(self):
        return TrackingHTTPServer(self, _Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def route(self, path: str, answer: RawResponse | Callable[[SinkRequest], RawResponse]) -> None:
        with self._lock:
            self._routes[path] = answer

    @property
    def requests(self) -> list[SinkRequest]:
        with self._lock:
            return list(self._requests)

    def answer(self, request: SinkRequest) -> RawResponse:
        with self._lock:
            self._requests.append(request)
            route = self._routes.get(request.path.split("?", 1)[0], DEFAULT_PAGE)
        return route(request) if callable(route) else route


class _Handler(LoopbackHandler):
    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = SinkRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        try:
            self._send_raw(self.server.owner.answer(request))
        except (BrokenPipeError, ConnectionResetError, StopAnswering):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any  # noqa: N815
