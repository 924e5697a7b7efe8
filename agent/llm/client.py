"""One streamed model request with retries, usage, cost and an ``llm_call`` event.

Retries cover 429, 5xx, timeouts and connection errors (also when the stream breaks half
way), with exponential back-off plus jitter, honouring ``Retry-After``. Everything here is
cancellable: an interrupt cancels the awaiting task, whether it is waiting for the first
byte, reading the stream or sleeping between attempts.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from agent.config import LLMSettings
from agent.llm.errors import LLMError, LLMErrorInfo, classify
from agent.llm.models import ResolvedModel
from agent.llm.pricing import cost_of, find_price, normalise_usage
from agent.llm.runtime import get_litellm
from agent.protocol import Event, LLMCall, LLMCallKind, ToolLog, Usage


@dataclass
class AssembledToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class LLMResult:
    content: str
    tool_calls: list[AssembledToolCall]
    finish_reason: str | None
    usage: Usage
    cost_usd: float | None
    cost_source: str
    model: str
    latency_ms: int
    attempts: int = 1


@dataclass
class _StreamState:
    text: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    slot_of: dict[int, int] = field(default_factory=dict)
    started: bool = False
    finish_reason: str | None = None
    usage: Any = None

    def add_tool_delta(self, delta: Any, fallback_index: int) -> None:
        index = _get(delta, "index")
        index = fallback_index if index is None else index
        fn = _get(delta, "function") or {}
        call_id = _get(delta, "id")
        name = _get(fn, "name")
        args = _get(fn, "arguments")
        slot_key = self.slot_of.get(index, index)
        slot = self.calls.get(slot_key)
        # some providers reuse index 0 for every call and tell them apart only by id: a new
        # id on a used index opens a new slot, and later fragments on that index go there
        if slot is not None and call_id and slot["id"] and call_id != slot["id"] and slot["name"]:
            slot_key = max(self.calls) + 1
            self.slot_of[index] = slot_key
            slot = None
        if slot is None:
            slot = self.calls[slot_key] = {"id": "", "name": "", "arguments": ""}
        if call_id:
            slot["id"] = call_id
        if name:
            slot["name"] = slot["name"] + name if slot["name"] and not name.startswith(slot["name"]) else name
        if args:
            slot["arguments"] += args

    def tool_calls(self) -> list[AssembledToolCall]:
        out = []
        for n, index in enumerate(sorted(self.calls)):
            slot = self.calls[index]
            out.append(AssembledToolCall(slot["id"] or f"call_{int(time.time()*1000)}_{n}", slot["name"], slot["arguments"]))
        return out


_LITELLM_ONLY = frozenset({"model", "messages", "stream", "stream_options", "timeout", "num_retries",
                           "max_retries", "api_base", "api_key"})


def _wire_message(message: dict[str, Any]) -> dict[str, Any]:
    """Only the fields of the OpenAI message schema (strict servers reject extras)."""
    if message.get("role") == "tool":
        return {"role": "tool", "tool_call_id": message.get("tool_call_id"), "content": message.get("content") or ""}
    return message


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


TextSink = Callable[[str], None]
Emit = Callable[[Event], None]


class LLMClient:
    def __init__(
        self,
        settings: LLMSettings,
        emit: Emit,
        *,
        price_overrides: dict[str, dict] | None = None,
        demo_workspace: Path | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.settings = settings
        self.emit = emit
        self.price_overrides = price_overrides or {}
        self.demo_workspace = demo_workspace
        self._sleep = sleep
        self._rng = random.Random()
        self._direct = None

    def uses_direct_stream(self, model: ResolvedModel) -> bool:
        transport = self.settings.transport
        if transport == "litellm":
            return False
        if transport == "direct":
            return model.route in ("openai_compatible", "local", "hf_router")
        return model.route in ("local", "hf_router")

    async def _open(self, model: ResolvedModel, litellm: Any, kwargs: dict[str, Any]):
        if not self.uses_direct_stream(model):
            return await litellm.acompletion(**kwargs)
        if self._direct is None:
            from agent.llm.direct import DirectStreamer

            self._direct = DirectStreamer()
        body: dict[str, Any] = {
            "model": model.litellm_model.split("/", 1)[1] if model.litellm_model.startswith("openai/") else model.litellm_model,
            "messages": [_wire_message(m) for m in kwargs["messages"]],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        for key in ("tools", "tool_choice", "max_tokens"):
            if key in kwargs:
                body[key] = kwargs[key]
        if "reasoning_effort" in kwargs and model.route == "hf_router":
            # the router takes low|medium|high only (reference §7.2)
            body["reasoning_effort"] = {"minimal": "low", "xhigh": "high", "max": "high"}.get(
                kwargs["reasoning_effort"], kwargs["reasoning_effort"])
        for key, value in kwargs.items():  # caller extras (e.g. prompt_cache_key) go on the wire as-is
            if key not in _LITELLM_ONLY and key not in body and key != "reasoning_effort":
                body[key] = value
        return self._direct.stream(base_url=model.api_base or "", api_key=model.api_key, body=body,
                                   timeout=self.settings.request_timeout_s)

    def _prepare(self, model: ResolvedModel) -> Any:
        litellm = get_litellm()
        if model.is_demo:
            from agent.llm.demo import register_demo_provider

            workspace = self.demo_workspace or Path.cwd()
            workspace.mkdir(parents=True, exist_ok=True)
            register_demo_provider(workspace)
        return litellm

    def backoff_delay(self, attempt: int, info: LLMErrorInfo) -> float:
        """Seconds to wait before attempt ``attempt + 1``: full-jitter exponential, at
        least the server's Retry-After (capped so a hostile header cannot park us)."""
        s = self.settings
        expo = min(s.backoff_max_s, s.backoff_base_s * (2 ** (attempt - 1)))
        delay = expo / 2 + self._rng.uniform(0, expo / 2)
        if info.retry_after is not None:
            delay = max(delay, min(info.retry_after, s.max_retry_after_s))
        return delay

    async def stream(
        self,
        model: ResolvedModel,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        kind: LLMCallKind = "main",
        on_text: TextSink | None = None,
        on_reset: Callable[[], None] | None = None,
        reasoning_effort: str | None = None,
        max_tokens: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> LLMResult:
        missing = model.missing_credentials()
        if missing:
            raise LLMError(LLMErrorInfo("auth", False, missing))
        litellm = self._prepare(model)
        price, price_source = find_price(model, self.price_overrides)
        attempts = self.settings.max_attempts
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            state = _StreamState()
            emitted_text = False
            try:
                kwargs: dict[str, Any] = dict(
                    model=model.litellm_model,
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                    timeout=self.settings.request_timeout_s,
                    num_retries=0,
                    max_retries=0,
                )
                if tools:
                    kwargs["tools"] = tools
                    kwargs["tool_choice"] = "auto"
                if model.api_base:
                    kwargs["api_base"] = model.api_base
                if model.api_key:
                    kwargs["api_key"] = model.api_key
                if reasoning_effort and model.route not in ("demo", "local"):
                    kwargs["reasoning_effort"] = reasoning_effort
                if max_tokens:
                    kwargs["max_tokens"] = max_tokens
                if extra:
                    kwargs.update(extra)
                response = await self._open(model, litellm, kwargs)
                async for chunk in response:
                    state.started = True
                    usage = _get(chunk, "usage")
                    if usage:
                        state.usage = usage
                    for choice in _get(chunk, "choices") or []:
                        delta = _get(choice, "delta")
                        piece = _get(delta, "content")
                        if piece:
                            state.text.append(piece)
                            emitted_text = True
                            if on_text:
                                on_text(piece)
                        for i, tc in enumerate(_get(delta, "tool_calls") or []):
                            state.add_tool_delta(tc, i)
                        reason = _get(choice, "finish_reason")
                        if reason:
                            state.finish_reason = reason
            except asyncio.CancelledError:
                self._record(model, kind, started, state, price, price_source, attempt, error="interrupted")
                raise
            except Exception as exc:  # classified below; anything unknown is not retried
                info = classify(exc, model)
                self._record(model, kind, started, state, price, price_source, attempt, error=f"{info.kind}: {info.detail}")
                if not info.retryable or attempt >= attempts:
                    if info.retryable:
                        info.message += f" Gave up after {attempt} attempts."
                    raise LLMError(info, attempt) from exc
                delay = self.backoff_delay(attempt, info)
                if emitted_text and on_reset:
                    on_reset()
                self.emit(ToolLog(
                    tool="system",
                    log=f"{info.message} Retrying in {delay:.1f} s (attempt {attempt + 1} of {attempts}).",
                ))
                await self._sleep(delay)
                continue
            usage = normalise_usage(state.usage)
            cost = cost_of(price, usage)
            latency = self._record(model, kind, started, state, price, price_source, attempt, usage=usage, cost=cost)
            return LLMResult(
                content="".join(state.text),
                tool_calls=state.tool_calls(),
                finish_reason=state.finish_reason,
                usage=usage,
                cost_usd=cost,
                cost_source=price_source if cost is not None else "unknown",
                model=model.id,
                latency_ms=latency,
                attempts=attempt,
            )

    def _record(self, model, kind, started, state, price, price_source, attempt, *, usage=None, cost=None, error=None) -> int:
        latency = int((time.monotonic() - started) * 1000)
        if usage is None:
            usage = normalise_usage(state.usage)
            if state.usage:
                cost = cost_of(price, usage)
            elif not state.started:
                cost = 0.0  # refused before any output: providers do not bill that
            else:
                cost = None  # output was generated but never reported: billed, amount unknown
        self.emit(LLMCall(
            model=model.id,
            kind=kind,
            latency_ms=latency,
            usage=usage,
            cost_usd=cost,
            cost_source=price_source if cost is not None else "unknown",
            finish_reason=state.finish_reason,
            attempt=attempt,
            error=error,
        ))
        return latency
