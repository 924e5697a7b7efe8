"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

The engine talks to models through litellm; this server sits at the network edge so
tests drive litellm's real HTTP path (openai SDK, httpx, SSE parsing, error mapping)
instead of patching anything of ours. Standard library only: a ThreadingHTTPServer in
a daemon thread, usable from sync and async tests alike.

Usage::

    server = ScriptedLLMServer().start()        # or: with ScriptedLLMServer() as server:
    server.script(
        Text("hello **world**"),
        ToolCalls([Call("call_1", "bash", '{"command": "ls"}')]),
        HTTPError(429, "rate limited", headers={"Retry-After": "1"}),
        lambda body: Text(f"you sent {len(body['messages'])} messages"),
    )
    await litellm.acompletion(model="openai/fake", api_base=server.base_url,
                              api_key="sk-test", num_retries=0, messages=[...], stream=True)
    server.requests              # JSON bodies received, in order
    server.remaining             # replies not consumed yet
    server.wait_for_request(1)   # blocks until request #1 arrived, returns its body
    server.stop()                # prompt even while a Hang is in progress

Each POST /v1/chat/completions consumes the next reply:

* ``Text(content, chunk_chars=8, delay=0.0, finish_reason="stop", usage=None)``:
  content deltas of ``chunk_chars`` characters, ``delay`` seconds apart.
* ``ToolCalls([Call(id, name, arguments), ...], content="", finish_reason="tool_calls",
  usage=None, fragment_chars=7, delay=0.0)``: optional content first, then per call a
  header delta (index, id, type, name, empty arguments) followed by argument fragments
  of ``fragment_chars``, split the way real providers split them.
* ``HTTPError(status, message, code=None, type=None, headers={})``: an OpenAI-style
  ``{"error": {"message", "type", "param", "code"}}`` body with the given headers.
* ``Hang(after_text="", seconds=30)``: sends ``after_text`` then stalls (interrupt
  tests); the connection is dropped after ``seconds`` or at once on ``stop()``.
* ``Disconnect(after_text="")``: sends ``after_text`` then drops the connection in the
  middle of the chunked body, like a provider dying mid-stream.
* any callable ``body -> reply``, resolved when the request arrives; if it raises,
  the request is answered 500 with the exception text.

Streaming (``"stream": true``) answers ``text/event-stream``: ``data: {chunk}`` events
then ``data: [DONE]``. The first delta carries ``role: assistant`` and empty content;
the last choice chunk carries ``finish_reason`` with an empty delta. With
``stream_options.include_usage`` every chunk has ``"usage": null`` and one more chunk
with ``"choices": []`` carries the usage, as OpenAI does. Without ``stream`` the answer
is a ``chat.completion`` object.

Usage defaults to an estimate (prompt = chars/4 of the request's messages and tools,
completion = chars/4 of the reply) so token counts and costs are never zero; pass
``Usage(prompt_tokens, completion_tokens, cached_tokens=None)`` to pin it.

An exhausted script answers 500 "script exhausted: request #N ..." so an unexpected
extra model call fails loudly. ``GET /v1/models`` lists ``model_name``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from tests.fakes._loopback import LoopbackHandler, LoopbackLifecycle, RawResponse, StopAnswering, TrackingHTTPServer
from typing import Any, Union


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if self.cached_tokens is not None:
            data["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return data


@dataclass(frozen=True)
class Text:
    content: str
    chunk_chars: int = 8
    delay: float = 0.0
    finish_reason: str = "stop"
    usage: Usage | None = None


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True)
class ToolCalls:
    calls: list[Call] | tuple[Call, ...]
    content: str = ""
    finish_reason: str = "tool_calls"
    usage: Usage | None = None
    fragment_chars: int = 7
    delay: float = 0.0


@dataclass(frozen=True)
class HTTPError:
    status: int
    message: str = "error"
    code: str | None = None
    type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        default_type = "server_error" if self.status >= 500 else "invalid_request_error"
        return {
            "error": {
                "message": self.message,
                "type": self.type or default_type,
                "param": None,
                "code": self.code,
            }
        }


@dataclass(frozen=True)
class Hang:
    after_text: str = ""
    seconds: float = 30.0


@dataclass(frozen=True)
class Disconnect:
    after_text: str = ""


@dataclass(frozen=True)
class EmptyStream:
    """A streamed request answered ``200`` with an event stream that holds nothing: no chunk,
    no ``[DONE]`` (llama-cpp-python's server does this when tools are offered with
    ``stream: true``). Only for streamed requests."""


Reply = Union[Text, ToolCalls, HTTPError, Hang, Disconnect, EmptyStream, RawResponse, Callable[[dict], Any]]
_ANSWERS = (Text, ToolCalls, Hang, Disconnect, EmptyStream)


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _usage_for(body: dict, reply: Text | ToolCalls) -> Usage:
    if reply.usage is not None:
        return reply.usage
    reply_text = reply.content
    if isinstance(reply, ToolCalls):
        reply_text += "".join(call.name + call.arguments for call in reply.calls)
    prompt_text = json.dumps(body.get("messages", [])) + json.dumps(body.get("tools", []))
    return Usage(_estimate_tokens(prompt_text), _estimate_tokens(reply_text))


def _pieces(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _completion(body: dict, reply: Text | ToolCalls, completion_id: str, served: str | None = None) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None, "refusal": None}
    if isinstance(reply, ToolCalls):
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.calls
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": served or body.get("model", ""),
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
        "usage": _usage_for(body, reply).to_json(),
    }


def _stream_chunks(body: dict, reply: Text | ToolCalls | Hang | Disconnect, completion_id: str,
                  served: str | None = None) -> Iterator[dict]:
    """The SSE chunk objects for ``reply``; for Hang/Disconnect only the part sent before the cut."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": served or body.get("model", ""),
        "system_fingerprint": None,
    }

    def chunk(delta: dict, finish_reason: str | None = None) -> dict:
        data = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if include_usage:
            data["usage"] = None
        return data

    yield chunk({"role": "assistant", "content": ""})
    if isinstance(reply, (Hang, Disconnect)):
        for piece in _pieces(reply.after_text, 8):
            yield chunk({"content": piece})
        return
    size = reply.chunk_chars if isinstance(reply, Text) else 8
    for piece in _pieces(reply.content, size):
        yield chunk({"content": piece})
    if isinstance(reply, ToolCalls):
        for index, call in enumerate(reply.calls):
            function = {"name": call.name, "arguments": ""}
            yield chunk({"tool_calls": [{"index": index, "id": call.id, "type": "function", "function": function}]})
            for fragment in _pieces(call.arguments, reply.fragment_chars):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
    yield chunk({}, reply.finish_reason)
    if include_usage:
        yield {**base, "choices": [], "usage": _usage_for(body, reply).to_json()}



class _Handler(LoopbackHandler):

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") not in ("/v1/models", "/models"):
            self._send_json(404, HTTPError(404, f"no route GET {self.path}").body())
            return
        owner = self.server.owner
        owner.catalog_requests += 1
        if owner.catalog is not None:  # the Hugging Face router's shape: models with their providers
            if isinstance(owner.catalog, HTTPError):
                self._send_json(owner.catalog.status, owner.catalog.body())
                return
            self._send_json(200, {"object": "list", "data": owner.catalog})
            return
        model = {"id": owner.model_name, "object": "model", "created": 0, "owned_by": "tests"}
        self._send_json(200, {"object": "list", "data": [model]})

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send_json(404, HTTPError(404, f"no route POST {self.path}").body())
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            self._send_json(400, HTTPError(400, f"request body is not JSON: {exc}").body())
            return
        reply = self.server.owner._take_reply(body)
        try:
            self._answer(body, reply)
        except (BrokenPipeError, ConnectionResetError, StopAnswering):
            self.close_connection = True

    def _answer(self, body: dict, reply: Any) -> None:
        owner = self.server.owner
        if isinstance(reply, HTTPError):
            self._send_json(reply.status, reply.body(), reply.headers)
        elif isinstance(reply, RawResponse):  # whatever the request asked for: an HTML page, a bare JSON body
            self._send_raw(reply)
        elif not isinstance(reply, _ANSWERS):
            self._send_json(500, HTTPError(500, f"scripted reply is not a reply: {reply!r}").body())
        elif isinstance(reply, EmptyStream):
            if not body.get("stream"):
                self._send_json(500, HTTPError(500, "EmptyStream was scripted for a request without streaming").body())
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._write_chunk(b"")
        elif body.get("stream"):
            self._stream(body, reply)
        elif isinstance(reply, Disconnect):
            self._drop_connection()
        elif isinstance(reply, Hang):
            if owner._stopping.wait(reply.seconds):
                raise StopAnswering
            self._send_json(200, _completion(body, Text(reply.after_text), owner._completion_id(), owner.served_model))
        else:
            self._send_json(200, _completion(body, reply, owner._completion_id(), owner.served_model))

    def _stream(self, body: dict, reply: Text | ToolCalls | Hang | Disconnect) -> None:
        owner = self.server.owner
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        delay = getattr(reply, "delay", 0.0)
        for number, data in enumerate(_stream_chunks(body, reply, owner._completion_id(), owner.served_model)):
            if delay and number and owner._stopping.wait(delay):
                raise StopAnswering
            self._write_chunk(b"data: " + json.dumps(data).encode() + b"\n\n")
        if isinstance(reply, Hang):
            owner._stopping.wait(reply.seconds)
        if isinstance(reply, (Hang, Disconnect)):
            # A stalled or crashed provider never finishes its answer.
            self._drop_connection()
            return
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")


class _HTTPServer(TrackingHTTPServer):
    def __init__(self, owner: Any) -> None:
        super().__init__(owner, _Handler)


#: how the app's session-title request starts (agent/persistence.py TITLE_SYSTEM)
TITLE_PROMPT_START = "You name chat sessions."


class ScriptedLLMServer(LoopbackLifecycle):
    """Serves scripted chat-completion replies on a random loopback port."""

    def __init__(self, model_name: str = "fake-model") -> None:
        self.model_name = model_name
        #: served at GET /v1/models instead of the one-model list (a list of router entries, or an HTTPError)
        self.catalog: list[dict] | HTTPError | None = None
        self.catalog_requests = 0
        #: the ``model`` its answers name (None: the one asked for, as most servers do)
        self.served_model: str | None = None
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._replies: deque[Reply] = deque()
        self._requests: list[dict] = []
        self._titles: deque[Reply] = deque()
        self._title_requests: list[dict] = []
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._answered = 0

    _thread_name = "scripted-llm"

    def _new_httpd(self) -> _HTTPServer:
        return _HTTPServer(self)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply) -> ScriptedLLMServer:
        """Queue replies; each chat-completions request consumes the next one."""
        with self._lock:
            self._replies.extend(replies)
        return self

    @property
    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._requests)

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._replies)

    def wait_for_request(self, count: int = 1, timeout: float = 5.0) -> dict:
        """Block until ``count`` requests have arrived; return the ``count``-th body.

        Blocking on purpose (the server lives in threads); from async code use
        ``await asyncio.to_thread(server.wait_for_request, n)``.
        """
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"expected request #{count} within {timeout}s, got {len(self._requests)}")
            return self._requests[count - 1]

    def script_titles(self, *replies: Reply) -> ScriptedLLMServer:
        """Replies for the session-title requests (see ``_title_reply``), in order."""
        with self._lock:
            self._titles.extend(replies)
        return self

    @property
    def title_requests(self) -> list[dict]:
        with self._lock:
            return list(self._title_requests)

    def _title_reply(self, body: dict) -> Any:
        """The app asks for a session title after a session's first turn, at a moment of its own
        choosing: answered here, apart from the script (and from ``requests``), so a test's
        scripted replies stay the turns' replies. A title scripted with ``script_titles`` wins;
        otherwise the first words of the user's message."""
        with self._lock:
            self._title_requests.append(body)
            reply = self._titles.popleft() if self._titles else None
        if reply is None:
            words = str(body["messages"][-1].get("content", "")).split()[:4]
            return Text(" ".join(words).title() or "Untitled")
        return reply(body) if callable(reply) else reply

    def _take_reply(self, body: dict) -> Any:
        messages = body.get("messages") or []
        first = messages[0].get("content") if messages and isinstance(messages[0], dict) else None
        if isinstance(first, str) and first.startswith(TITLE_PROMPT_START):
            return self._title_reply(body)
        with self._lock:
            self._requests.append(body)
            self._arrived.notify_all()
            number = len(self._requests)
            reply = self._replies.popleft() if self._replies else None
        if reply is None:
            return HTTPError(
                500,
                f"script exhausted: request #{number} arrived but no scripted reply was left",
                code="script_exhausted",
            )
        if callable(reply):
            try:
                return reply(body)
            except Exception as exc:  # the test's own bug, surfaced as a loud 500
                return HTTPError(500, f"scripted reply callable raised {type(exc).__name__}: {exc}")
        return reply

    def _completion_id(self) -> str:
        with self._lock:
            self._answered += 1
            return f"chatcmpl-scripted-{self._answered}"
