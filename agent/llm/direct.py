"""Direct streaming for servers that speak the OpenAI chat-completions wire format.

Local servers (ollama, vLLM, LM Studio, llama.cpp) and the Hugging Face router all answer
the same SSE stream. litellm spends ~0.4 ms of CPU on every streamed event (measured: 8.8 s
for a 23k-event answer, on the same asyncio loop as the UI), which starves the screen while
a model streams fast. Here one ``httpx`` client per base URL keeps its connection alive and
each event costs a ``json.loads``. Errors are raised as ``ProviderError`` carrying status,
body and headers, which ``agent.llm.errors.classify`` understands like litellm's own.
litellm still does everything else: provider ids, token counting, prices, the demo model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, AsyncIterator

import httpx

from agent.llm import lean_http
from agent.llm.round_memo import RoundMemo


class ProviderError(Exception):
    """An HTTP error answer from the server (``status_code`` set), or a transport failure."""

    def __init__(self, message: str, status_code: int | None = None, body: Any = None,
                 response: httpx.Response | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.response = response


class ProviderConnectionError(ProviderError):
    """Could not connect, or the stream broke half way (retryable)."""


class BadAnswer(ProviderConnectionError):
    """A 200 whose body is no answer: an HTML page, JSON without choices, a malformed event
    (retryable: proxies and overloaded servers send these now and then)."""


#: pause between socket reads while a stream flows. Tokens reach the screen in 50 ms batches
#: anyway; without the pause a fast local model costs one read (and one event through the
#: app) per token, 18,000 for a 20,000-token answer
READ_PACE_S = 0.008


class DirectStreamer:
    def __init__(self, pace_s: float = READ_PACE_S) -> None:
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._lean = lean_http.LeanPool()
        self.pace_s = pace_s
        #: each message's JSON, for the messages the last request sent
        self._message_json: RoundMemo[str] = RoundMemo(json.dumps)

    def forget_encoded(self) -> None:
        self._message_json.forget()

    def encode(self, body: dict[str, Any]) -> bytes:
        """The request body as JSON, each history message encoded once (``RoundMemo``); the
        messages come last (servers read JSON objects in any key order)."""
        messages = body.get("messages")
        if not isinstance(messages, list):
            return json.dumps(body).encode()
        head = json.dumps({k: v for k, v in body.items() if k != "messages"})
        parts = ", ".join(self._message_json.derive(messages))
        return f'{head[:-1]}{", " if len(head) > 2 else ""}"messages": [{parts}]}}'.encode()

    def _client(self, base_url: str, timeout: float) -> httpx.AsyncClient:
        client = self._clients.get(base_url)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                base_url=base_url.rstrip("/") + "/",
                timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
                limits=httpx.Limits(max_keepalive_connections=4),
            )
            self._clients[base_url] = client
        return client

    async def aclose(self) -> None:
        await self._lean.aclose()
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def stream(
        self,
        *,
        base_url: str,
        api_key: str | None,
        body: dict[str, Any],
        timeout: float,
        headers: dict[str, str] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield each streamed chunk as a dict, in the OpenAI chunk shape."""
        request_headers = _request_headers("text/event-stream", api_key, headers)
        if lean_http.usable_for(base_url):
            async for chunk in self._stream_lean(base_url, request_headers, body, timeout):
                yield chunk
            return
        client = self._client(base_url, timeout)
        try:
            async with client.stream("POST", "chat/completions", content=self.encode(body),
                                     headers={"Content-Type": "application/json", **request_headers}) as response:
                if response.status_code >= 400:
                    raw = await response.aread()
                    raise _http_error(response, raw)
                if not _is_event_stream(response):
                    # a server that ignores "stream": one JSON answer, read as one chunk; an HTML
                    # page (a proxy's login or error page) is an error, never an empty answer
                    yield _as_chunk(_whole_answer(response, await _read_capped(response)))
                    return
                async for chunk in _sse(response.aiter_bytes(), self.pace_s):
                    yield chunk
        except httpx.TimeoutException as exc:
            raise ProviderConnectionError(f"Request timed out: {type(exc).__name__}") from exc
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise ProviderConnectionError(f"Connection error: {type(exc).__name__}: {exc}") from exc

    async def _stream_lean(self, base_url: str, headers: dict[str, str], body: dict[str, Any],
                           timeout: float) -> AsyncIterator[dict[str, Any]]:
        async with self._lean_answer(base_url, headers, body, timeout) as response:
            if response.status_code >= 400:
                raise _http_error(response, await response.read(MAX_BODY))
            if not _is_event_stream(response):
                yield _as_chunk(_whole_answer(response, await response.read(MAX_BODY)))
                return
            pieces = response.body()
            async for chunk in _sse(pieces, self.pace_s):
                yield chunk
            # after [DONE] only the chunked framing's end is left: read it, so the connection
            # can carry the next request
            try:
                async with asyncio.timeout(1.0):
                    async for _ in pieces:
                        pass
            except (TimeoutError, lean_http.LeanHTTPError, OSError):
                pass

    @contextlib.asynccontextmanager
    async def _lean_answer(self, base_url: str, headers: dict[str, str], body: dict[str, Any], timeout: float):
        """The answer to one POST through the lean client, its failures as ``ProviderConnectionError``."""
        url = base_url.rstrip("/") + "/chat/completions"
        payload = self.encode(body)
        response = None
        try:
            response = await self._lean.post(url, payload, {"Content-Type": "application/json", **headers},
                                              timeout=timeout, connect_timeout=min(timeout, 30.0))
            yield response
        except TimeoutError as exc:
            raise ProviderConnectionError(f"Request timed out: {type(exc).__name__}") from exc
        except (OSError, lean_http.LeanHTTPError, asyncio.IncompleteReadError) as exc:
            raise ProviderConnectionError(f"Connection error: {type(exc).__name__}: {exc}") from exc
        finally:
            if response is not None:
                response.close()

    async def complete(
        self,
        *,
        base_url: str,
        api_key: str | None,
        body: dict[str, Any],
        timeout: float,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One request without streaming: the answer as a dict in the OpenAI completion shape."""
        request_headers = _request_headers("application/json", api_key, headers)
        if lean_http.usable_for(base_url):
            async with self._lean_answer(base_url, request_headers, body, timeout) as response:
                raw = await response.read(MAX_BODY)
                if response.status_code >= 400:
                    raise _http_error(response, raw)
                return _whole_answer(response, raw)
        client = self._client(base_url, timeout)
        try:
            async with client.stream("POST", "chat/completions", content=self.encode(body),
                                     headers={"Content-Type": "application/json", **request_headers}) as response:
                raw = await _read_capped(response)
                if response.status_code >= 400:
                    raise _http_error(response, raw)
                return _whole_answer(response, raw)
        except httpx.TimeoutException as exc:
            raise ProviderConnectionError(f"Request timed out: {type(exc).__name__}") from exc
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise ProviderConnectionError(f"Connection error: {type(exc).__name__}: {exc}") from exc


#: the most of a non-streamed answer kept in memory (a runaway body is cut, not buffered)
MAX_BODY = 32 * 1024 * 1024


async def _read_capped(response: httpx.Response) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for data in response.aiter_bytes():
        parts.append(data)
        size += len(data)
        if size > MAX_BODY:
            raise ProviderConnectionError(f"the server's answer passed {MAX_BODY // (1024 * 1024)} MB; not read further")
    return b"".join(parts)


def _is_event_stream(response: httpx.Response) -> bool:
    kind = response.headers.get("content-type", "").lower()
    # no content type at all: read it as a stream (the SSE parser copes with anything)
    return not kind or "event-stream" in kind


def _whole_answer(response: httpx.Response, raw: bytes) -> dict[str, Any]:
    """A 200 body that must be a completion: anything else (HTML, JSON without choices) is a
    retryable error naming what came, never an empty answer."""
    kind = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        excerpt = " ".join(text.split())[:160]
        raise BadAnswer(
            f"the server answered {response.status_code} with {kind}, not a completion: {excerpt!r}") from None
    if isinstance(body, dict) and "error" in body and not body.get("choices"):
        err = body["error"]
        message = err.get("message") if isinstance(err, dict) else str(err)
        raise ProviderError(f"error in answer: {message}", None, body)
    if not isinstance(body, dict) or not body.get("choices"):
        shape = "no choices" if isinstance(body, dict) else f"a JSON {type(body).__name__}"
        raise BadAnswer(f"the server answered {response.status_code} with {shape}, not a completion")
    return body


def _as_chunk(answer: dict[str, Any]) -> dict[str, Any]:
    """A whole answer in the shape of one stream chunk (its message stands for the delta)."""
    choice = answer["choices"][0] if isinstance(answer["choices"][0], dict) else {}
    message = choice.get("message") or {}
    reason = choice.get("finish_reason") or ("tool_calls" if message.get("tool_calls") else "stop")
    return {"model": answer.get("model"), "usage": answer.get("usage"),
            "choices": [{"delta": message, "finish_reason": reason}]}


def _request_headers(accept: str, api_key: str | None, extra: dict[str, str] | None) -> dict[str, str]:
    headers = {"Accept": accept, **(extra or {})}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


async def _sse(pieces: AsyncIterator[bytes], pace_s: float) -> AsyncIterator[dict[str, Any]]:
    """The chunks of an event stream's body, read in ``pieces``; ends at ``[DONE]``."""
    pending = b""
    pacer = _ReadPacer(pace_s)
    async for data in pieces:
        await pacer.pause_if_waited()
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            chunk = _event(line)
            if chunk is _DONE:
                return
            if chunk is not None:
                yield chunk
        pacer.mark()
    chunk = _event(pending)
    if chunk is not None and chunk is not _DONE:
        yield chunk


class _ReadPacer:
    """Sleeps ``pace_s`` after each piece of the body that had to be waited for, so that the
    events sent meanwhile are read and handled together.

    httpx yields one piece per HTTP chunk (servers send one SSE event per chunk), parsed
    from a buffer when several arrived in one read. Pausing after every piece would pace
    the events themselves; pausing after a real wait paces the reads: one wake-up per
    ``pace_s`` however fast the server sends. "Had to wait" is seen as: the event loop ran
    a callback scheduled after the previous piece (a piece taken from the buffer comes
    back without the loop running)."""

    #: pieces read before pacing starts: short answers (a tool call, a one-liner) are not
    #: worth a pause, and an agent loop makes hundreds of them (+8 ms each, measured)
    WARMUP = 64

    def __init__(self, pace_s: float):
        self.pace_s = pace_s
        self.waited = False
        self.slept = False
        self.pieces = 0
        self._probe_pending = False

    def mark(self) -> None:
        self.pieces += 1
        if self.pace_s and self.pieces >= self.WARMUP:
            self.waited = False
            # a probe still pending from an earlier piece has not run either, so it tells
            # the same thing about this one: one callback per loop pass, not one per piece
            if not self._probe_pending:
                self._probe_pending = True
                asyncio.get_running_loop().call_soon(self._ran)

    def _ran(self) -> None:
        self._probe_pending = False
        self.waited = True

    async def pause_if_waited(self) -> None:
        if not self.waited:
            return
        if self.slept:  # the first piece after our own sleep: the loop ran because we slept
            self.slept = False
            return
        self.slept = True
        await asyncio.sleep(self.pace_s)


_DONE: Any = object()


def _event(line: bytes) -> Any:
    """One SSE line: a chunk dict, ``_DONE``, or None for anything that is not data."""
    if not line.startswith(b"data:"):
        return None  # comments (": keep-alive"), event names, blank separators
    data = line[5:].strip()
    if data == b"[DONE]":
        return _DONE
    if not data:
        return None
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as exc:
        text = data[:200].decode("utf-8", "replace")
        raise BadAnswer(f"malformed stream event from the server: {text}") from exc
    if isinstance(chunk, dict) and "error" in chunk and not chunk.get("choices"):
        err = chunk["error"]
        message = err.get("message") if isinstance(err, dict) else str(err)
        raise ProviderError(f"error in stream: {message}", None, chunk)
    return chunk


def _http_error(response: httpx.Response, raw: bytes) -> ProviderError:
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        body = None
    message = text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            message = str(err["message"])
        elif isinstance(err, str):
            message = err
    return ProviderError(f"{response.status_code} {message}", response.status_code, body, response)
