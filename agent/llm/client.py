"""One streamed model request with retries, usage, cost and an ``llm_call`` event.

Retries cover 429, 5xx, timeouts and connection errors (also when the stream breaks half
way), with exponential back-off plus jitter, honouring ``Retry-After``. Everything here is
cancellable: an interrupt cancels the awaiting task, whether it is waiting for the first
byte, reading the stream or sleeping between attempts.

A rejection of the reasoning settings is healed without using up a retry: a refused effort
is lowered step by step down the whole cascade (each refusal remembered in the effort cache,
so the next call and the next session start where it works), a model without thinking gets
none, and thinking blocks the provider calls invalid are removed from the conversation. Each
heal is announced with a system ``tool_log`` line.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from agent.config import LLMSettings
from agent.llm import prompt_cache
from agent.llm.effort import EffortCache, effective_effort, step_down
from agent.llm.errors import HEALABLE_KINDS, LLMError, LLMErrorInfo, classify, local_server_down
from agent.llm.models import ResolvedModel, needs_litellm, uses_direct_stream
from agent.llm.round_memo import RoundMemo
from agent.llm.pricing import WindowInfo, context_window, cost_of, find_price, normalise_usage
from agent.protocol import Event, LLMCall, LLMCallKind, ToolLog, Usage

if TYPE_CHECKING:
    from agent.llm.router_catalog import RouterCatalog


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
    #: Anthropic thinking blocks (with signatures) to keep on the assistant message: within
    #: a tool loop Anthropic wants them back
    thinking_blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _StreamState:
    text: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    slot_of: dict[int, int] = field(default_factory=dict)
    started: bool = False
    finish_reason: str | None = None
    usage: Any = None
    thinking: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: the model named in the answer (its ``model`` field)
    served: str | None = None

    def add_thinking(self, blocks: Any) -> None:
        for block in blocks or []:
            kind = _get(block, "type") or "thinking"
            index = _get(block, "index")
            if index is None:  # no index: pieces continue the newest block of their type
                last = max(self.thinking, default=None)
                same = last is not None and self.thinking[last]["type"] == kind and "signature" not in self.thinking[last]
                index = last if same else (last + 1 if last is not None else 0)
            slot = self.thinking.setdefault(index, {"type": kind})
            if kind == "redacted_thinking":
                slot["data"] = slot.get("data", "") + (_get(block, "data") or "")
                continue
            slot["thinking"] = slot.get("thinking", "") + (_get(block, "thinking") or "")
            if _get(block, "signature"):
                slot["signature"] = _get(block, "signature")

    def thinking_blocks(self) -> list[dict[str, Any]]:
        # an unsigned thinking block is refused when sent back, so it is not kept
        return [dict(self.thinking[i]) for i in sorted(self.thinking)
                if self.thinking[i].get("signature") or self.thinking[i].get("data")]

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


def _answer_model(obj: Any) -> str | None:
    """The model an answer names: litellm keeps the provider's own name in its hidden params
    (its ``model`` field repeats the name asked for); a raw chunk carries it as ``model``."""
    hidden = getattr(obj, "_hidden_params", None)
    name = hidden.get("provider_response_model") if isinstance(hidden, dict) else None
    return name or _get(obj, "model") or None


TextSink = Callable[[str], None]


MAX_HEALS = 6


class IncompleteStream(Exception):
    """The stream closed without a finish reason: the answer was cut short (``empty``: not one
    chunk came). Retried like a dropped connection."""

    def __init__(self, *, empty: bool, tools_offered: bool):
        self.empty = empty
        self.tools_offered = tools_offered
        super().__init__("the stream ended without a finish reason" + (" (it was empty)" if empty else ""))


class StreamStalled(TimeoutError):
    """No data came for ``stall_timeout_s`` in the middle of an answer: retried like a timeout."""

    def __init__(self, seconds: float):
        super().__init__(f"the stream stalled: no data for {seconds:g} s")


class _Watchdog:
    """Cancels the task reading a stream when no chunk came for ``seconds`` (``fired`` then
    tells the reader it was a stall, not the user). One timer for the stream, not one per chunk."""

    def __init__(self, seconds: float):
        self.loop = asyncio.get_running_loop()
        self.seconds = seconds
        self.last = self.loop.time()
        self.fired = False
        self._task = asyncio.current_task()
        self._handle = self.loop.call_later(seconds, self._check)

    def _check(self) -> None:
        idle = self.loop.time() - self.last
        if idle >= self.seconds:
            self.fired = True
            if self._task is not None:
                self._task.cancel()
            return
        self._handle = self.loop.call_later(self.seconds - idle, self._check)

    def stop(self) -> None:
        self._handle.cancel()


class _NoStream:
    """Stands for the stream of a request made without streaming (its answer is already in)."""

    def __aiter__(self):
        return self

    async def __anext__(self):
        raise StopAsyncIteration


_NO_STREAM = _NoStream()
Emit = Callable[[Event], None]


def _tagged(emit: Emit, parent_call_id: str) -> Emit:
    """Events of a sub-agent's request carry the call they belong to (its research card)."""

    def tag(event: Event) -> None:
        if hasattr(event, "parent_call_id"):
            event.parent_call_id = parent_call_id  # type: ignore[union-attr]
        emit(event)

    return tag


def served_name(model: ResolvedModel, served: str | None) -> str | None:
    """The name a server gave its answer, when it is not just the id we asked for (in any case,
    with or without the router's ``:provider`` tag or litellm's ``provider/`` prefix)."""
    if not served or model.is_demo:
        return None
    asked = {model.id, model.litellm_model, model.litellm_model.partition("/")[2], model.pricing_key}
    asked |= {name.split(":")[0] for name in asked}
    lowered = {name.lower() for name in asked if name}
    return None if served.lower() in lowered or served.lower().partition("/")[2] in lowered else served


class LLMClient:
    def __init__(
        self,
        settings: LLMSettings,
        emit: Emit,
        *,
        price_overrides: dict[str, dict] | None = None,
        demo_workspace: Path | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        efforts: EffortCache | None = None,
        session_key: Callable[[], str | None] | None = None,
        no_stream_file: Path | None = None,
    ):
        self.settings = settings
        self.emit = emit
        self.price_overrides = price_overrides or {}
        self.demo_workspace = demo_workspace
        self._sleep = sleep
        self._rng = random.Random()
        self._direct = None
        self._demo = None
        #: the wire form of each message (a tool result without its extra fields), per message
        self._wire_messages: RoundMemo[dict[str, Any]] = RoundMemo(_wire_message)
        #: whether each message holds thinking blocks (stripped for most models), per message
        self._thinking: RoundMemo[bool] = RoundMemo(prompt_cache.message_has_thinking)
        #: (model id, base URL) of servers that answer an empty stream when offered tools (llama.cpp's
        #: server does): their requests with tools go out without streaming from then on
        from agent.llm.learned_windows import NoStreamServers

        self._no_stream_with_tools = NoStreamServers(no_stream_file)
        #: what each model accepts as reasoning effort (None: send the preference as given)
        self.efforts = efforts
        #: the prompt_cache_key for OpenAI models: stable per session
        self.session_key = session_key or (lambda: None)
        #: the Hugging Face router's catalog (prices and windows of router models): made on first
        #: use from ``catalog_at`` (the data dir its file is in, its URL); None when neither is set
        self._catalog: RouterCatalog | None = None
        self.catalog_at: tuple[Path, str] | None = None
        #: the name each model's server answered with, when it is not the id asked for
        self.served: dict[str, str] = {}
        self.on_served: Callable[[ResolvedModel, str], None] = lambda model, name: None
        #: called after a heal changed what a model is known to accept
        self.on_effort_change: Callable[[ResolvedModel], None] = lambda model: None

    @property
    def catalog(self) -> RouterCatalog | None:
        if self._catalog is None and self.catalog_at is not None:
            from agent.llm.router_catalog import FILE, RouterCatalog

            data_dir, url = self.catalog_at
            self._catalog = RouterCatalog(data_dir / FILE, url)
        return self._catalog

    @catalog.setter
    def catalog(self, value: RouterCatalog | None) -> None:
        self._catalog = value

    def _catalog_for(self, model: ResolvedModel) -> RouterCatalog | None:
        """The catalog where it can say something: only router models are in it (a session on
        another model does not load it on the way to its first frame)."""
        return self.catalog if model.route == "hf_router" else None

    def price_known(self, model: ResolvedModel) -> bool:
        """Whether this model's calls can be costed (the config, litellm's map, our table)."""
        return find_price(model, self.price_overrides, self._catalog_for(model))[0] is not None

    def window(self, model: ResolvedModel, overrides: dict[str, int] | None = None) -> WindowInfo:
        """The model's context window: the config's, the router's, litellm's, ours."""
        return context_window(model, overrides, self._catalog_for(model))

    def effective_effort(self, model: ResolvedModel, preference: str | None) -> str | None:
        """The level a request for ``preference`` sends to ``model`` (None: none)."""
        return effective_effort(model, preference, self.efforts)

    def uses_direct_stream(self, model: ResolvedModel) -> bool:
        return uses_direct_stream(model, self.settings.transport)

    def needs_litellm(self, model: ResolvedModel) -> bool:
        """Whether requests to ``model`` go through litellm (agent/llm/models.py)."""
        return needs_litellm(model, self.settings.transport)

    def _streamer(self):
        if self._direct is None:
            from agent.llm.direct import DirectStreamer

            self._direct = DirectStreamer()
        return self._direct

    def _direct_body(self, model: ResolvedModel, kwargs: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model.litellm_model.split("/", 1)[1] if model.litellm_model.startswith("openai/") else model.litellm_model,
            "messages": self._wire_messages.derive(kwargs["messages"]),
            "stream": kwargs.get("stream", True),
        }
        if body["stream"]:
            body["stream_options"] = {"include_usage": True}
        for key in ("tools", "tool_choice", "max_tokens"):
            if key in kwargs:
                body[key] = kwargs[key]
        if "reasoning_effort" in kwargs and model.route == "hf_router":
            # the router takes low|medium|high only (reference §7.2)
            body["reasoning_effort"] = {"minimal": "low", "xhigh": "high", "max": "high"}.get(
                kwargs["reasoning_effort"], kwargs["reasoning_effort"])
        elif "reasoning_effort" in kwargs:
            body["reasoning_effort"] = kwargs["reasoning_effort"]
        for key, value in kwargs.items():  # caller extras (e.g. prompt_cache_key) go on the wire as-is
            if key not in _LITELLM_ONLY and key not in body and key != "reasoning_effort":
                body[key] = value
        return body

    def _demo_model(self):
        if self._demo is None:
            from agent.llm.demo import DemoModel

            workspace = self.demo_workspace or Path.cwd()
            workspace.mkdir(parents=True, exist_ok=True)
            self._demo = DemoModel.from_environment(workspace)
        return self._demo

    async def _open(self, model: ResolvedModel, litellm: Any, kwargs: dict[str, Any]):
        if model.is_demo:
            return self._demo_model().stream(kwargs["messages"], kwargs.get("tools"))
        if not self.uses_direct_stream(model):
            return await litellm.acompletion(**kwargs)
        return self._streamer().stream(base_url=model.api_base or "", api_key=model.api_key,
                                       body=self._direct_body(model, kwargs),
                                       timeout=self.settings.request_timeout_s)

    async def _prepare(self, model: ResolvedModel) -> Any:
        """litellm for a model that needs it (imported in a thread the first time: seconds of
        CPU that must not freeze the screen), None for the others."""
        if not self.needs_litellm(model):
            return None
        from agent.llm.runtime import get_litellm, is_loaded

        return get_litellm() if is_loaded() else await asyncio.to_thread(get_litellm)

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
        strict_effort: bool = False,
        max_attempts: int | None = None,
        timeout_s: float | None = None,
        parent_call_id: str | None = None,
    ) -> LLMResult:
        """One model call. ``reasoning_effort`` is the user's preference, resolved through
        the effort cache; ``strict_effort`` sends it exactly and never heals (the effort
        probe asks "does this level work?", so a rejection must come back as an error)."""
        emit = self.emit if parent_call_id is None else _tagged(self.emit, parent_call_id)
        missing = model.missing_credentials()
        if missing:
            raise LLMError(LLMErrorInfo("auth", False, missing))
        litellm = await self._prepare(model)
        attempts = max_attempts or self.settings.max_attempts
        effort = reasoning_effort if strict_effort else self.effective_effort(model, reasoning_effort)
        heals = 0  # the cascade has six levels: more heals than that would be a loop
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            state = _StreamState()
            emitted_text = False
            try:
                request_messages, request_tools, cache_fields = prompt_cache.prepare(
                    model, messages, tools, effort=effort, session_key=self.session_key(),
                    thinking=any(self._thinking.derive(messages)))
                kwargs: dict[str, Any] = dict(
                    model=model.litellm_model,
                    messages=request_messages,
                    stream=True,
                    stream_options={"include_usage": True},
                    timeout=timeout_s or self.settings.request_timeout_s,
                    num_retries=0,
                    max_retries=0,
                    **cache_fields,
                )
                if request_tools:
                    kwargs["tools"] = request_tools
                    kwargs["tool_choice"] = "auto"
                if model.api_base:
                    kwargs["api_base"] = model.api_base
                if model.api_key:
                    kwargs["api_key"] = model.api_key
                if effort and not model.is_demo:
                    kwargs["reasoning_effort"] = effort
                if max_tokens:
                    kwargs["max_tokens"] = max_tokens
                if extra:
                    kwargs.update(extra)
                if request_tools and (model.id, model.api_base) in self._no_stream_with_tools:
                    await self._complete_once(model, litellm, kwargs, state, on_text)
                    emitted_text = bool(state.text)
                    response = _NO_STREAM
                else:
                    response = await self._open(model, litellm, kwargs)
                watchdog = _Watchdog(self.settings.stall_timeout_s) if response is not _NO_STREAM else None
                try:
                    async for chunk in response:
                        if watchdog is not None:
                            watchdog.last = watchdog.loop.time()  # the only per-chunk cost of the watchdog
                        self._take_chunk(chunk, state, on_text)
                        if state.text and not emitted_text:
                            emitted_text = True
                except asyncio.CancelledError:
                    if watchdog is None or not watchdog.fired:
                        raise
                    task = asyncio.current_task()
                    if task is not None:
                        task.uncancel()
                    raise StreamStalled(self.settings.stall_timeout_s) from None
                finally:
                    if watchdog is not None:
                        watchdog.stop()
                empty = not state.text and not state.calls and not state.thinking
                if (state.finish_reason is None or (empty and response is not _NO_STREAM)) and not model.is_demo:
                    # a stream that stops without saying why is cut short, never a finished answer; nor is
                    # a stream with nothing in it (litellm reports "stop" for one that was empty)
                    raise IncompleteStream(empty=empty, tools_offered=bool(request_tools))
            except asyncio.CancelledError:
                self._record(emit, model, kind, started, state, attempt, error="interrupted")
                raise
            except Exception as exc:  # classified below; anything unknown is not retried
                info = local_server_down(exc, model) or classify(exc, model)
                self._record(emit, model, kind, started, state, attempt, error=f"{info.kind}: {info.detail}")
                server = (model.id, model.api_base)
                if isinstance(exc, IncompleteStream) and exc.empty and exc.tools_offered \
                        and server not in self._no_stream_with_tools:
                    self._no_stream_with_tools.add(server)
                    attempts += 1  # not the model failing: the same request, asked the way it answers
                    emit(ToolLog(tool="system", log=(
                        f"{model.label} at {model.api_base or 'its server'} sent an empty stream when offered "
                        "tools; asking again without streaming (and from now on for this model and server).")))
                    continue
                if info.kind in HEALABLE_KINDS and heals < MAX_HEALS and not strict_effort:
                    heal = self._heal(model, info, effort, reasoning_effort, messages)
                    if heal is not None:
                        heals += 1
                        attempts += 1  # a heal is not a retry: it does not use one up
                        effort, note = heal
                        if emitted_text and on_reset:
                            on_reset()
                        emit(ToolLog(tool="system", log=note))
                        continue
                if not info.retryable or attempt >= attempts:
                    if info.retryable:
                        info.message += f" Gave up after {attempt} attempts."
                    raise LLMError(info, attempt) from exc
                delay = self.backoff_delay(attempt, info)
                if emitted_text and on_reset:
                    on_reset()
                emit(ToolLog(
                    tool="system",
                    log=f"{info.message} Retrying in {delay:.1f} s (attempt {attempt + 1} of {attempts}).",
                ))
                await self._sleep(delay)
                continue
            # priced when the answer is in: the router's catalog may have arrived while it streamed
            price, price_source = find_price(model, self.price_overrides, self._catalog_for(model))
            usage = normalise_usage(state.usage)
            cost = cost_of(price, usage)
            latency = self._record(emit, model, kind, started, state, attempt, usage=usage, cost=cost,
                                   priced=(price, price_source))
            served = served_name(model, state.served)
            if served and self.served.get(model.id) != served:
                self.served[model.id] = served
                self.on_served(model, served)
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
                thinking_blocks=state.thinking_blocks(),
            )

    @staticmethod
    def _take_chunk(chunk: Any, state: _StreamState, on_text: TextSink | None) -> None:
        state.started = True
        if state.served is None:
            state.served = _answer_model(chunk)
        usage = _get(chunk, "usage")
        if usage:
            state.usage = usage
        for choice in _get(chunk, "choices") or []:
            delta = _get(choice, "delta")
            piece = _get(delta, "content")
            if piece:
                state.text.append(piece)
                if on_text:
                    on_text(piece)
            for i, tc in enumerate(_get(delta, "tool_calls") or []):
                state.add_tool_delta(tc, i)
            state.add_thinking(_get(delta, "thinking_blocks"))
            reason = _get(choice, "finish_reason")
            if reason:
                state.finish_reason = reason

    async def _complete_once(self, model: ResolvedModel, litellm: Any, kwargs: dict[str, Any],
                             state: _StreamState, on_text: TextSink | None) -> None:
        """The request without streaming (through litellm or straight to the server): the
        answer is put into ``state`` as if it had streamed in one piece."""
        request = {k: v for k, v in kwargs.items() if k != "stream_options"}
        request["stream"] = False
        if model.is_demo:
            response = self._demo_model().complete(request["messages"], request.get("tools"))
        elif litellm is None:
            response = await self._streamer().complete(
                base_url=model.api_base or "", api_key=model.api_key, body=self._direct_body(model, request),
                timeout=self.settings.request_timeout_s)
        else:
            response = await litellm.acompletion(**request)
        # the whole answer, read as the one chunk of a stream (its message stands for the delta)
        choices = (_get(response, "choices") or [])[:1]
        message = _get(choices[0], "message") if choices else None
        reason = _get(choices[0], "finish_reason") if choices else None
        self._take_chunk({"model": _answer_model(response), "usage": _get(response, "usage"),
                          "choices": [{"delta": message, "finish_reason": reason}] if choices else []},
                         state, on_text)
        if state.finish_reason is None:
            state.finish_reason = "tool_calls" if state.calls else "stop"

    def _heal(self, model: ResolvedModel, info: LLMErrorInfo, effort: str | None, preference: str | None,
              messages: list[dict[str, Any]]) -> tuple[str | None, str] | None:
        """(effort for the retry, what was adjusted) for a rejected reasoning setting, or
        None when there is nothing to adjust (the error then stands)."""
        who = model.label
        if info.kind == "thinking_blocks":
            _, removed = prompt_cache.strip_thinking(messages, in_place=True)
            if not removed:
                return None
            # those messages changed in place: what was made from them for the last request is stale
            self._wire_messages.forget()
            self._thinking.forget()
            if self._direct is not None:
                self._direct.forget_encoded()
            return effort, (f"{who} rejected thinking blocks from earlier in the conversation ({info.detail[:120]}); "
                            f"removed {removed} and retrying.")
        if effort is None:
            return None
        if info.kind == "thinking_required":
            # the history lacks the thinking of earlier steps (e.g. they came from another
            # model): this one request goes without thinking; nothing is cached
            return None, f"{who} needs thinking blocks this conversation does not have; retrying this request without extended thinking."
        if info.kind in ("effort_unsupported", "thinking_unsupported"):
            if self.efforts is not None:
                self.efforts.record(model, no_effort=True)
                self.on_effort_change(model)
            what = "extended thinking" if info.kind == "thinking_unsupported" else "a reasoning effort setting"
            return None, f"{who} does not support {what}; retrying without reasoning effort."
        if self.efforts is not None:
            self.efforts.record(model, rejected=effort)
            lower = self.effective_effort(model, preference)
            self.on_effort_change(model)
        else:
            lower = step_down(effort)
        if lower == effort:
            lower = None
        then = f"retrying with '{lower}'" if lower else "retrying without reasoning effort"
        return lower, f"{who} does not accept reasoning effort '{effort}'; {then}."

    def _record(self, emit, model, kind, started, state, attempt, *, usage=None, cost=None, error=None,
                priced=None) -> int:
        latency = int((time.monotonic() - started) * 1000)
        price, price_source = priced or find_price(model, self.price_overrides, self._catalog_for(model))
        if usage is None:
            usage = normalise_usage(state.usage)
            if state.usage:
                cost = cost_of(price, usage)
            elif not state.started:
                cost = 0.0  # refused before any output: providers do not bill that
            else:
                cost = None  # output was generated but never reported: billed, amount unknown
        emit(LLMCall(
            model=model.id,
            kind=kind,
            latency_ms=latency,
            usage=usage,
            cost_usd=cost,
            cost_source=price_source if cost is not None else "unknown",
            finish_reason=state.finish_reason,
            attempt=attempt,
            error=error,
            served_model=served_name(model, state.served),
        ))
        return latency
