"""The start/stop life cycle shared by the loopback fakes (a ThreadingHTTPServer in a
daemon thread on 127.0.0.1, stopped promptly even with streams open)."""

from __future__ import annotations

import abc
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackLifecycle(abc.ABC):
    """Subclasses set ``_stopping`` (a threading.Event), ``_httpd = None``, ``_thread = None``
    in ``__init__`` and implement ``_new_httpd()``, returning a server that has
    ``drop_open_connections()``."""

    _thread_name = "loopback-fake"
    _httpd: Any
    _thread: threading.Thread | None
    _stopping: threading.Event

    @abc.abstractmethod
    def _new_httpd(self) -> Any:
        """The server to run (a ``TrackingHTTPServer`` with the fake's handler)."""

    def start(self):
        if self._httpd is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        self._stopping.clear()
        self._httpd = self._new_httpd()
        # stop() waits for serve_forever to notice the shutdown at its next poll: half a poll on
        # average, paid by every test that uses a fake (0.05 s cost ~25 ms in ~500 teardowns)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01},
            name=f"{self._thread_name}-{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.drop_open_connections()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._httpd = None
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        return self._httpd.server_address[1]


class TrackingHTTPServer(ThreadingHTTPServer):
    """A loopback ThreadingHTTPServer that remembers its open connections, so ``stop()``
    can cut streams that are mid-wait (clients pool keep-alive connections; without this a
    stopped fake would leave handler threads blocked until the test process exits)."""

    daemon_threads = True
    block_on_close = False  # handlers may be mid-stream; never wait for them

    def __init__(self, owner: Any, handler: type) -> None:
        self.owner = owner
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-stream is what the drop and interrupt tests do

    def drop_open_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Fail(Exception):
    """Raised by a route handler: answer ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass(frozen=True)
class RawResponse:
    """A non-JSON answer (an HTML or Markdown page, a file's bytes, a redirect)."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class StopAnswering(Exception):
    """The fake is stopping mid-answer; end this response without a word."""


class LoopbackHandler(BaseHTTPRequestHandler):
    """What every loopback fake's request handler shares: HTTP/1.1 keep-alive, no Nagle
    delay, no request logging, chunked writes that stop when the fake stops, a cut
    connection that looks like a network failure, and JSON answers."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # small SSE writes + Nagle + delayed ACK would add ~40 ms per event
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the default logs every request to stderr, which garbles test output

    def _write_chunk(self, payload: bytes) -> None:
        if self.server.owner._stopping.is_set():
            raise StopAnswering
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    def _drop_connection(self) -> None:
        # No terminating zero-length chunk: the client sees a body that ended early,
        # which is what a crashed server or a cut network looks like.
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":  # a body after a HEAD answer is read as the next answer
            self.wfile.write(data)
        self.wfile.flush()

    def _send_raw(self, response: RawResponse) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()
