"""A lean HTTP/1.1 client for one thing: POSTing a chat request and reading its event stream.

httpx hands a streamed body over one HTTP chunk at a time through six nested async
generators and h11's parser; servers send one SSE event per chunk, so a 20,000-token answer
cost ~0.45 s of CPU on the app's event loop in HTTP plumbing alone. Here a socket read takes
whatever has arrived (many events at once), the chunked framing is cut with ``bytes.find``,
and the body goes to the SSE parser in one piece per read.

Used for ``http``/``https`` servers reached without a proxy; anything this client does not
speak (a proxy from the environment, a transfer coding other than chunked) goes through
httpx as before. A kept-alive connection is reused for the next request; one that the server
closed while idle is replaced once, before anything was sent twice.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import urllib.request
import zlib
from dataclasses import dataclass, field
from typing import AsyncIterator
from urllib.parse import urlsplit

#: the most of a status line and headers read before giving up on a server
MAX_HEAD = 64 * 1024
READ_SIZE = 256 * 1024


class LeanHTTPError(Exception):
    """The server broke HTTP/1.1 framing, or the connection failed (``ConnectionError`` and
    ``TimeoutError`` come through unchanged)."""


def usable_for(url: str) -> bool:
    """Whether this client may carry requests to ``url``: http(s), and no proxy applies."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    proxies = urllib.request.getproxies()
    if not proxies:
        return True
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return True
    return bool(urllib.request.proxy_bypass(parts.hostname))


_ssl_context: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    """Verified TLS with the same roots httpx uses (``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, else certifi's)."""
    global _ssl_context
    if _ssl_context is None:
        cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
        if not cafile and not capath:
            try:
                import certifi

                cafile = certifi.where()
            except ImportError:
                cafile = None
        _ssl_context = ssl.create_default_context(cafile=cafile, capath=capath)
    return _ssl_context


@dataclass
class Head:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names; repeats joined by ", "

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.buffer = b""

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:
            pass

    async def read_some(self, timeout: float) -> bytes:
        async with asyncio.timeout(timeout):
            data = await self.reader.read(READ_SIZE)
        return data


class Response:
    """One answer: its head, then its body in pieces as they arrive (``body()``)."""

    def __init__(self, pool: LeanPool, key: tuple, conn: _Conn, head: Head, timeout: float):
        self._pool, self._key, self._conn = pool, key, conn
        self.head = head
        self.status_code = head.status
        self.reason_phrase = head.reason
        self.headers = head.headers
        self._timeout = timeout
        self._done = False
        coding = head.headers.get("content-encoding", "identity").lower()
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if coding == "gzip" else (
            zlib.decompressobj() if coding == "deflate" else None)
        if coding not in ("identity", "gzip", "deflate", ""):
            raise LeanHTTPError(f"unsupported content encoding {coding!r}")

    async def body(self) -> AsyncIterator[bytes]:
        """The body's bytes, each piece all that one socket read brought (never empty)."""
        head, conn = self.head, self._conn
        chunked = "chunked" in head.headers.get("transfer-encoding", "").lower()
        length = head.headers.get("content-length")
        if chunked:
            pieces = self._chunked()
        elif length is not None:
            pieces = self._sized(int(length))
        else:
            pieces = self._until_close()
        async for piece in pieces:
            if self._inflate is not None:
                piece = self._inflate.decompress(piece)
            if piece:
                yield piece
        self._done = True
        keep = head.headers.get("connection", "").lower() != "close" and (chunked or length is not None)
        self._pool._release(self._key, conn if keep and not conn.buffer else None)
        self._conn = None  # type: ignore[assignment]

    async def read(self, limit: int) -> bytes:
        parts, size = [], 0
        async for piece in self.body():
            parts.append(piece)
            size += len(piece)
            if size > limit:
                self.close()
                raise LeanHTTPError(f"the answer passed {limit // (1024 * 1024)} MB; not read further")
        return b"".join(parts)

    def close(self) -> None:
        """Drop the connection if the body was not read to its end (it cannot be reused)."""
        if self._conn is not None and not self._done:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    async def _fill(self) -> bool:
        data = await self._conn.read_some(self._timeout)
        if not data:
            return False
        self._conn.buffer += data
        return True

    async def _sized(self, length: int) -> AsyncIterator[bytes]:
        conn = self._conn
        left = length
        while left > 0:
            if not conn.buffer and not await self._fill():
                raise LeanHTTPError(f"the connection closed {left} bytes before the end of the answer")
            piece, conn.buffer = conn.buffer[:left], conn.buffer[left:]
            left -= len(piece)
            yield piece

    async def _until_close(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            if conn.buffer:
                piece, conn.buffer = conn.buffer, b""
                yield piece
            if not await self._fill():
                return

    async def _chunked(self) -> AsyncIterator[bytes]:
        """Every complete chunk in the buffer, joined: one piece per read, not per chunk."""
        conn = self._conn
        out: list[bytes] = []
        while True:
            buf = conn.buffer
            pos = 0
            finished = False
            while True:
                line_end = buf.find(b"\r\n", pos)
                if line_end < 0:
                    break
                size_text = buf[pos:line_end].split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise LeanHTTPError(f"bad chunk size {size_text[:20]!r} in the answer") from None
                if size == 0:  # the last chunk: then trailers (rarely any) and a blank line
                    after = line_end + 2
                    if buf[after:after + 2] == b"\r\n":
                        pos = after + 2
                    else:
                        trailers_end = buf.find(b"\r\n\r\n", line_end)
                        if trailers_end < 0:
                            break  # not all here yet
                        pos = trailers_end + 4
                    finished = True
                    break
                start = line_end + 2
                if len(buf) < start + size + 2:
                    break
                out.append(buf[start:start + size])
                pos = start + size + 2
            conn.buffer = buf[pos:]
            if out:
                yield b"".join(out) if len(out) > 1 else out[0]
                out = []
            if finished:
                return
            if not await self._fill():
                raise LeanHTTPError("the connection closed in the middle of the answer")


class LeanPool:
    """Kept-alive connections per (scheme, host, port): one idle connection each."""

    def __init__(self) -> None:
        self._idle: dict[tuple, _Conn] = {}

    def _release(self, key: tuple, conn: _Conn | None) -> None:
        if conn is None:
            return
        old = self._idle.pop(key, None)
        if old is not None:
            old.close()
        self._idle[key] = conn

    async def aclose(self) -> None:
        for conn in self._idle.values():
            conn.close()
        self._idle.clear()

    async def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float,
                   connect_timeout: float) -> Response:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if https else 80)
        key = (parts.scheme, host, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = host if parts.port is None else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" if parts.port is None else f"[{host}]:{port}"
        lines = [f"POST {target} HTTP/1.1", f"Host: {host_header}", "User-Agent: mlintern",
                 "Accept-Encoding: gzip, deflate", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for attempt in (1, 2):
            conn = self._idle.pop(key, None)
            reused = conn is not None
            if conn is None:
                async with asyncio.timeout(connect_timeout):
                    reader, writer = await asyncio.open_connection(
                        host, port, ssl=_tls() if https else None, server_hostname=host if https else None,
                        limit=MAX_HEAD * 4)
                conn = _Conn(reader, writer)
            try:
                conn.writer.write(request)
                await conn.writer.drain()
                head = await self._read_head(conn, timeout)
            except (ConnectionError, LeanHTTPError, asyncio.IncompleteReadError) as exc:
                conn.close()
                # a kept-alive connection the server closed while idle: once more on a new one
                if reused and attempt == 1 and (isinstance(exc, ConnectionError) or "before" in str(exc)):
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            return Response(self, key, conn, head, timeout)
        raise LeanHTTPError("could not send the request")  # not reached

    @staticmethod
    async def _read_head(conn: _Conn, timeout: float) -> Head:
        while True:
            end = conn.buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(conn.buffer) > MAX_HEAD:
                raise LeanHTTPError("the server's answer has no end of headers within 64 KB")
            data = await conn.read_some(timeout)
            if not data:
                raise LeanHTTPError("the server closed the connection before it answered")
            conn.buffer += data
        raw, conn.buffer = conn.buffer[:end].decode("latin-1"), conn.buffer[end + 4:]
        status_line, *header_lines = raw.split("\r\n")
        words = status_line.split(" ", 2)
        if len(words) < 2 or not words[0].startswith("HTTP/") or not words[1].isdigit():
            raise LeanHTTPError(f"not an HTTP answer: {status_line[:80]!r}")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if not sep:
                continue
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        head = Head(int(words[1]), words[2] if len(words) > 2 else "", headers)
        if 100 <= head.status < 200:  # an interim answer (100 Continue): the real one follows
            return await LeanPool._read_head(conn, timeout)
        return head
