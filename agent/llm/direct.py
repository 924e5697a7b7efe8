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

import json
from typing import Any, AsyncIterator

import httpx


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


class DirectStreamer:
    def __init__(self) -> None:
        self._clients: dict[str, httpx.AsyncClient] = {}

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
        client = self._client(base_url, timeout)
        request_headers = {"Accept": "text/event-stream", **(headers or {})}
        if api_key:
            request_headers["Authorization"] = f"Bearer {api_key}"
        try:
            async with client.stream("POST", "chat/completions", json=body, headers=request_headers) as response:
                if response.status_code >= 400:
                    raw = await response.aread()
                    raise _http_error(response, raw)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # comments (": keep-alive"), event names, blank separators
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    if not data:
                        continue
                    try:
                        chunk = json.loads(data)
                    except json.JSONDecodeError as exc:
                        raise ProviderConnectionError(f"malformed stream event from the server: {data[:200]}") from exc
                    if isinstance(chunk, dict) and "error" in chunk and not chunk.get("choices"):
                        err = chunk["error"]
                        message = err.get("message") if isinstance(err, dict) else str(err)
                        raise ProviderError(f"error in stream: {message}", None, chunk)
                    yield chunk
        except httpx.TimeoutException as exc:
            raise ProviderConnectionError(f"Request timed out: {type(exc).__name__}") from exc
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise ProviderConnectionError(f"Connection error: {type(exc).__name__}: {exc}") from exc


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
