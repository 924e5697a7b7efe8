"""A scripted Anthropic Messages API server on 127.0.0.1 for tests.

litellm's ``anthropic/`` adapter speaks the Messages API (``POST /v1/messages``, its own
SSE event names, ``cache_control`` on blocks, ``thinking`` blocks with signatures), not
chat completions. This fake answers that format so tests exercise the adapter's real
request building and stream parsing. It shares the script queue and reply types of
``ScriptedLLMServer``::

    with ScriptedAnthropicServer() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)  # litellm appends /v1/messages
        server.script(
            Text("hello", usage=AnthropicUsage(100, 5, cache_read=80)),
            Thinking("let me see", "sig-1", ToolCalls([Call("toolu_1", "bash", '{"command": "ls"}')])),
            HTTPError(400, "messages.1.content.0: Invalid `signature` in `thinking` block"),
        )

* ``Text`` / ``ToolCalls``: a text block, then one ``tool_use`` block per call (the
  arguments streamed as ``input_json_delta`` fragments); ``finish_reason`` "stop" maps to
  ``end_turn``, "tool_calls" to ``tool_use``, "length" to ``max_tokens``.
* ``Thinking(thinking, signature, reply)``: a ``thinking`` block (thinking deltas, then a
  ``signature_delta``) before ``reply``'s blocks.
* ``HTTPError``: Anthropic's error body ``{"type": "error", "error": {"type", "message"}}``.
* Usage: ``AnthropicUsage(input_tokens, output_tokens, cache_read=0, cache_creation=0)``
  (the reply's ``usage``), else an estimate from the request size. ``input_tokens`` is the
  uncached part, as Anthropic reports it.
* Callables ``body -> reply`` work as in ``ScriptedLLMServer``.

Only streaming requests are answered in SSE; others get one ``message`` object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator, Union

from tests.fakes._loopback import StopAnswering, TrackingHTTPServer
from tests.fakes.openai_server import (
    HTTPError,
    ScriptedLLMServer,
    Text,
    ToolCalls,
    _estimate_tokens,
    _Handler,
    _pieces,
)


@dataclass(frozen=True)
class AnthropicUsage:
    input_tokens: int
    output_tokens: int
    cache_read: int = 0
    cache_creation: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation_input_tokens": self.cache_creation,
        }


@dataclass(frozen=True)
class Thinking:
    thinking: str
    signature: str
    reply: Union[Text, ToolCalls]


_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


def _error_body(reply: HTTPError) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
            529: "overloaded_error"}.get(reply.status, "api_error")
    return {"type": "error", "error": {"type": reply.type or kind, "message": reply.message}}


def _usage(body: dict, reply: Text | ToolCalls) -> AnthropicUsage:
    if isinstance(reply.usage, AnthropicUsage):
        return reply.usage
    text = json.dumps(body.get("system", "")) + json.dumps(body.get("messages", [])) + json.dumps(body.get("tools", []))
    out = reply.content + "".join(c.name + c.arguments for c in getattr(reply, "calls", ()))
    return AnthropicUsage(_estimate_tokens(text), _estimate_tokens(out))


def _unwrap(reply: Any) -> tuple[Thinking | None, Text | ToolCalls]:
    if isinstance(reply, Thinking):
        return reply, reply.reply
    return None, reply


def _blocks(reply: Any) -> list[dict[str, Any]]:
    thinking, answer = _unwrap(reply)
    blocks: list[dict[str, Any]] = []
    if thinking is not None:
        blocks.append({"type": "thinking", "thinking": thinking.thinking, "signature": thinking.signature})
    if answer.content:
        blocks.append({"type": "text", "text": answer.content})
    for call in getattr(answer, "calls", ()):
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": json.loads(call.arguments or "{}")})
    return blocks


def _events(body: dict, reply: Any, message_id: str) -> Iterator[tuple[str, dict]]:
    thinking, answer = _unwrap(reply)
    usage = _usage(body, answer)
    start_usage = {**usage.to_json(), "output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant", "model": body.get("model", ""),
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}}
    index = 0
    if thinking is not None:
        yield "content_block_start", {"type": "content_block_start", "index": index,
                                      "content_block": {"type": "thinking", "thinking": "", "signature": ""}}
        for piece in _pieces(thinking.thinking, 8):
            yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                          "delta": {"type": "thinking_delta", "thinking": piece}}
        yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                      "delta": {"type": "signature_delta", "signature": thinking.signature}}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
        index += 1
    if answer.content:
        yield "content_block_start", {"type": "content_block_start", "index": index,
                                      "content_block": {"type": "text", "text": ""}}
        size = answer.chunk_chars if isinstance(answer, Text) else 8
        for piece in _pieces(answer.content, size):
            yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                          "delta": {"type": "text_delta", "text": piece}}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
        index += 1
    for call in getattr(answer, "calls", ()):
        yield "content_block_start", {"type": "content_block_start", "index": index,
                                      "content_block": {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}}
        for fragment in _pieces(call.arguments, answer.fragment_chars):
            yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                          "delta": {"type": "input_json_delta", "partial_json": fragment}}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
        index += 1
    yield "message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": _STOP.get(answer.finish_reason, answer.finish_reason), "stop_sequence": None},
                            "usage": {"output_tokens": usage.output_tokens}}
    yield "message_stop", {"type": "message_stop"}


class _AnthropicHandler(_Handler):
    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?")[0].rstrip("/") != "/v1/messages":
            super().do_POST()  # chat completions still work on the same port
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            self._send_json(400, _error_body(HTTPError(400, f"request body is not JSON: {exc}")))
            return
        owner = self.server.owner
        with owner._lock:
            owner.headers.append(dict(self.headers))
        reply = owner._take_reply(body)
        try:
            if isinstance(reply, HTTPError):
                self._send_json(reply.status, _error_body(reply), reply.headers)
            elif not isinstance(_unwrap(reply)[1], (Text, ToolCalls)):
                self._send_json(500, _error_body(HTTPError(500, f"not an Anthropic reply: {reply!r}")))
            elif body.get("stream"):
                self._stream_events(body, reply)
            else:
                thinking, answer = _unwrap(reply)
                self._send_json(200, {
                    "id": owner._completion_id(), "type": "message", "role": "assistant",
                    "model": body.get("model", ""), "content": _blocks(reply),
                    "stop_reason": _STOP.get(answer.finish_reason, answer.finish_reason), "stop_sequence": None,
                    "usage": _usage(body, answer).to_json(),
                })
        except (BrokenPipeError, ConnectionResetError, StopAnswering):
            self.close_connection = True

    def _stream_events(self, body: dict, reply: Any) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for name, data in _events(body, reply, self.server.owner._completion_id()):
            self._write_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self._write_chunk(b"")


class _AnthropicHTTPServer(TrackingHTTPServer):
    def __init__(self, owner: Any) -> None:
        super().__init__(owner, _AnthropicHandler)


class ScriptedAnthropicServer(ScriptedLLMServer):
    """``ScriptedLLMServer`` that also answers ``POST /v1/messages`` in Anthropic's format.
    ``headers`` holds the request headers of each Messages call (for ``anthropic-beta``)."""

    _thread_name = "scripted-anthropic"

    def __init__(self, model_name: str = "claude-fake") -> None:
        super().__init__(model_name)
        self.headers: list[dict[str, str]] = []

    def _new_httpd(self) -> _AnthropicHTTPServer:
        return _AnthropicHTTPServer(self)

    @property
    def base_url(self) -> str:
        """The root URL: litellm's Anthropic adapter appends ``/v1/messages`` itself."""
        return f"http://127.0.0.1:{self.port}"
