"""The lean HTTP/1.1 client of the direct transport (agent/llm/lean_http.py), against raw
loopback servers that frame their answers byte by byte as a test asks: chunks split across
reads, trailers, sized and close-delimited bodies, gzip, kept-alive connections a server
drops, TLS with a certificate of its own, and a proxy in the environment (httpx then)."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import json
import ssl
from pathlib import Path

import pytest

from agent.llm import lean_http
from agent.llm.direct import DirectStreamer, ProviderConnectionError, ProviderError


def sse(*texts: str, done: bool = True) -> bytes:
    events = [b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": t}}]}).encode() + b"\n\n"
              for t in texts]
    if done:
        events.append(b"data: [DONE]\n\n")
    return b"".join(events)


def chunked(*pieces: bytes, trailers: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n" + trailers + b"\r\n"


class RawServer:
    """Answers each request on a connection with the next scripted answer: a list of byte
    strings written with a pause between them (so the client reads them apart)."""

    def __init__(self, answers: list[list[bytes]], *, close_after: bool = False, tls: ssl.SSLContext | None = None):
        self.answers = answers
        self.close_after = close_after
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://{'localhost' if self.tls else '127.0.0.1'}:{port}/v1"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")][0])
                self.requests.append(head + await reader.readexactly(length))
                for part in self.answers.pop(0):
                    writer.write(part)
                    await writer.drain()
                    await asyncio.sleep(0.01)
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


HEAD_SSE_CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


async def texts(streamer: DirectStreamer, url: str) -> list[str]:
    out = []
    async for chunk in streamer.stream(base_url=url, api_key="k", body={"model": "m", "messages": []}, timeout=5):
        out.append(chunk["choices"][0]["delta"]["content"])
    return out


async def test_chunks_split_anywhere_across_reads_and_trailers():
    body = chunked(sse("alpha", "beta", done=False), sse("gamma"), trailers=b"X-Checksum: 1\r\n")
    # the answer arrives in 7-byte pieces: sizes, data and the final chunk all cut mid-way
    parts = [HEAD_SSE_CHUNKED[:20], HEAD_SSE_CHUNKED[20:]] + [body[i:i + 7] for i in range(0, len(body), 7)]
    async with RawServer([parts, [HEAD_SSE_CHUNKED, chunked(sse("again"))]]) as server:
        streamer = DirectStreamer(pace_s=0)
        assert await texts(streamer, server.url) == ["alpha", "beta", "gamma"]
        assert await texts(streamer, server.url) == ["again"]
        await streamer.aclose()
    assert server.connections == 1  # the first answer was read to its end: its connection carried the second
    first = server.requests[0].decode()
    assert first.startswith("POST /v1/chat/completions HTTP/1.1\r\n") and "Authorization: Bearer k" in first


async def test_sized_close_delimited_and_gzipped_bodies():
    plain = sse("sized")
    zipped = gzip.compress(sse("zipped"))
    answers = [
        [b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(plain), plain],
        [b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
         b"Content-Length: %d\r\n\r\n" % len(zipped), zipped[:10], zipped[10:]],
    ]
    async with RawServer(answers) as server:
        streamer = DirectStreamer(pace_s=0)
        assert await texts(streamer, server.url) == ["sized"]
        assert await texts(streamer, server.url) == ["zipped"]
        await streamer.aclose()
    async with RawServer([[b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", sse("until", "close")]],
                         close_after=True) as server:
        streamer = DirectStreamer(pace_s=0)
        assert await texts(streamer, server.url) == ["until", "close"]
        await streamer.aclose()


async def test_a_kept_alive_connection_the_server_dropped_is_replaced_once():
    async with RawServer([[HEAD_SSE_CHUNKED, chunked(sse("one"))], [HEAD_SSE_CHUNKED, chunked(sse("two"))]],
                         close_after=True) as server:
        streamer = DirectStreamer(pace_s=0)
        assert await texts(streamer, server.url) == ["one"]
        await asyncio.sleep(0.05)  # the server has closed the idle connection by now
        assert await texts(streamer, server.url) == ["two"]
        await streamer.aclose()
    assert server.connections == 2


async def test_errors_carry_status_body_and_retry_after_and_broken_framing_is_a_connection_error():
    from agent.llm.errors import classify, retry_after_seconds

    error = json.dumps({"error": {"message": "slow down"}}).encode()
    answers = [[b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 7\r\n"
                b"Content-Length: %d\r\n\r\n" % len(error), error],
               [HEAD_SSE_CHUNKED, b"zz\r\nnot hex\r\n"]]
    async with RawServer(answers) as server:
        streamer = DirectStreamer(pace_s=0)
        with pytest.raises(ProviderError) as caught:
            await texts(streamer, server.url)
        assert caught.value.status_code == 429 and "slow down" in str(caught.value)
        assert retry_after_seconds(caught.value) == 7 and classify(caught.value).kind == "rate_limit"
        with pytest.raises(ProviderConnectionError, match="bad chunk size"):
            await texts(streamer, server.url)
        await streamer.aclose()
    async with RawServer([[b"SSH-2.0-OpenSSH\r\n\r\n"]]) as server:
        streamer = DirectStreamer(pace_s=0)
        with pytest.raises(ProviderConnectionError, match="not an HTTP answer"):
            await texts(streamer, server.url)
        await streamer.aclose()


async def test_a_closed_port_is_a_refused_connection():
    from agent.llm.errors import _refused

    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    streamer = DirectStreamer(pace_s=0)
    with pytest.raises(ProviderConnectionError) as caught:
        await texts(streamer, f"http://127.0.0.1:{port}/v1")
    assert _refused(caught.value)


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_tls_is_verified_against_the_configured_roots(tmp_path, monkeypatch):
    pytest.importorskip("cryptography")
    cert_file, key_file = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setattr(lean_http, "_ssl_context", None)
    async with RawServer([[HEAD_SSE_CHUNKED, chunked(sse("secure"))]], tls=tls) as server:
        streamer = DirectStreamer(pace_s=0)
        with pytest.raises(ProviderConnectionError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await texts(streamer, server.url)  # certifi's roots do not know this certificate
        monkeypatch.setattr(lean_http, "_ssl_context", None)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        assert await texts(streamer, server.url) == ["secure"]
        await streamer.aclose()
    monkeypatch.setattr(lean_http, "_ssl_context", None)


def test_a_proxy_in_the_environment_sends_requests_through_httpx(monkeypatch):
    for var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert lean_http.usable_for("https://router.huggingface.co/v1")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    assert not lean_http.usable_for("https://router.huggingface.co/v1")
    assert lean_http.usable_for("http://127.0.0.1:8000/v1")  # no http proxy set
    monkeypatch.setenv("NO_PROXY", "router.huggingface.co")
    assert lean_http.usable_for("https://router.huggingface.co/v1")
    assert not lean_http.usable_for("ftp://example.org/v1")
