"""The demo model as a litellm provider: registration, streaming and the environment knobs.

``register_demo_provider`` makes ``DEMO_MODEL_ID`` callable through litellm; each call asks
``agent.llm.demo.scenario`` for the next reply and streams it back like a real model would
(words, then tool-call arguments in pieces, then the finish with a rough token count).

Environment knobs, read when the provider is registered (tests use them to keep runs
short): ``MLINTERN_DEMO_DELAY`` (seconds between streamed chunks), ``MLINTERN_DEMO_STEPS``
(training steps), ``MLINTERN_DEMO_POLL_S`` (seconds between checks on the job) and
``MLINTERN_DEMO_MAX_POLLS`` (checks before handing the running job over).

This module does not import litellm at import time (it costs seconds); ``DemoLLM`` is built
on first access and ``register_demo_provider`` imports litellm when called.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from agent.llm.demo.conversation import offered_tools
from agent.llm.demo.prose import REAL_MODEL_HINT
from agent.llm.demo.scenario import DEFAULT_MAX_POLLS, DEFAULT_POLL_S, DemoSettings, Reply, next_reply
from agent.llm.demo.trainer import STEPS

log = logging.getLogger(__name__)

DEMO_PROVIDER = "mlintern_demo"
DEMO_MODEL_ID = f"{DEMO_PROVIDER}/ml-task"
DEMO_CONTEXT_WINDOW = 131_072  # one demo run uses ~10k tokens: room for many runs before compaction
DEMO_MAX_OUTPUT = 4_096
DEFAULT_CHUNK_DELAY = 0.01
_ARG_PIECE = 64  # tool arguments stream in pieces this long, like a real model's deltas


def _estimate_tokens(*parts: Any) -> int:
    """Roughly chars / 4: the demo has no tokenizer and needs none to look plausible."""
    chars = sum(len(p if isinstance(p, str) else json.dumps(p, default=str)) for p in parts)
    return max(1, chars // 4)


def _usage(messages: Any, tools: Any, reply: Reply) -> dict[str, int]:
    prompt = _estimate_tokens(messages or [], tools or [])
    completion = _estimate_tokens(reply.text, *(tc["function"]["arguments"] for tc in reply.tool_calls))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chunk(text: str = "", tool_use: dict[str, Any] | None = None, **final: Any) -> dict[str, Any]:
    return {"text": text, "tool_use": tool_use, "is_finished": bool(final), "index": 0,
            "finish_reason": final.get("finish_reason", ""), "usage": final.get("usage")}


def stream_chunks(reply: Reply, usage: dict[str, int]) -> Iterator[dict[str, Any]]:
    """``GenericStreamingChunk`` dicts: words, then tool calls in pieces, then the finish."""
    for piece in re.findall(r"\S+\s*|\s+", reply.text):
        yield _chunk(piece)
    for index, tc in enumerate(reply.tool_calls):
        args = tc["function"]["arguments"]
        for k in range(0, max(len(args), 1), _ARG_PIECE):
            first = k == 0
            yield _chunk(tool_use={
                "id": tc["id"] if first else None, "type": "function", "index": index,
                "function": {"name": tc["function"]["name"] if first else None,
                             "arguments": args[k:k + _ARG_PIECE]},
            })
    yield _chunk(finish_reason=reply.finish_reason, usage=usage)


def _env_number(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


class _DemoBehaviour:
    """The provider's logic, kept free of litellm so this module imports instantly."""

    def __init__(self, workspace: Path, chunk_delay: float = DEFAULT_CHUNK_DELAY, *, steps: int = STEPS,
                 poll_s: float = DEFAULT_POLL_S, max_polls: int = DEFAULT_MAX_POLLS) -> None:
        super().__init__()
        self.settings = DemoSettings(Path(workspace).expanduser().resolve(), max(1, int(steps)),
                                     max(0.1, float(poll_s)), max(0, int(max_polls)))
        self.chunk_delay = max(0.0, float(chunk_delay))

    @property
    def workspace(self) -> Path:
        return self.settings.workspace

    def _respond(self, messages: Any, optional_params: dict[str, Any] | None) -> tuple[Reply, dict[str, int]]:
        tools = (optional_params or {}).get("tools")
        try:
            reply = next_reply(list(messages or []), offered_tools(tools), self.settings)
        except Exception as exc:  # a demo must never take the session down with it
            log.exception("demo model could not decide its next step")
            reply = Reply(f"The demo model hit an internal error ({type(exc).__name__}: {exc}) and "
                          f"stopped. {REAL_MODEL_HINT}")
        return reply, _usage(messages, tools, reply)

    def _response(self, model: str, reply: Reply, usage: dict[str, int]) -> Any:
        from litellm import ModelResponse

        message = {"role": "assistant", "content": reply.text or None,
                   "tool_calls": reply.tool_calls or None}
        return ModelResponse(model=model, usage=usage, choices=[
            {"index": 0, "finish_reason": reply.finish_reason, "message": message}])

    async def astreaming(self, model: str, messages: list, *args: Any,
                         optional_params: dict | None = None, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        reply, usage = self._respond(messages, optional_params)
        for chunk in stream_chunks(reply, usage):
            yield chunk
            if not chunk["is_finished"]:
                await asyncio.sleep(self.chunk_delay)  # a cancellation point even at delay 0

    def streaming(self, model: str, messages: list, *args: Any,
                  optional_params: dict | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        reply, usage = self._respond(messages, optional_params)
        for chunk in stream_chunks(reply, usage):
            yield chunk
            if self.chunk_delay and not chunk["is_finished"]:
                time.sleep(self.chunk_delay)

    async def acompletion(self, model: str, messages: list, *args: Any,
                          optional_params: dict | None = None, **kwargs: Any) -> Any:
        return self._response(model, *self._respond(messages, optional_params))

    def completion(self, model: str, messages: list, *args: Any,
                   optional_params: dict | None = None, **kwargs: Any) -> Any:
        return self._response(model, *self._respond(messages, optional_params))


@functools.cache
def _demo_llm_class() -> type:
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    from litellm import CustomLLM

    cls = type("DemoLLM", (_DemoBehaviour, CustomLLM), {
        "__module__": "agent.llm.demo",  # its public home: agent.llm.demo.DemoLLM
        "__doc__": "The scripted demo model as a litellm ``CustomLLM``: "
                   "DemoLLM(workspace, chunk_delay=0.01, *, steps, poll_s, max_polls).",
    })
    return cls


def __getattr__(name: str) -> Any:
    if name == "DemoLLM":
        return _demo_llm_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_demo_provider(workspace: Path, chunk_delay: float | None = None, *, steps: int | None = None,
                           poll_s: float | None = None, max_polls: int | None = None) -> str:
    """Make ``DEMO_MODEL_ID`` callable through litellm; safe to call again (the handler is
    replaced, so new settings take effect). Settings left as None come from the
    ``MLINTERN_DEMO_*`` environment variables, else the defaults. Returns the litellm model id."""
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    import litellm

    def pick(value: float | None, env: str, default: float) -> float:
        return _env_number(env, default) if value is None else value

    handler = _demo_llm_class()(
        workspace, pick(chunk_delay, "MLINTERN_DEMO_DELAY", DEFAULT_CHUNK_DELAY),
        steps=int(pick(steps, "MLINTERN_DEMO_STEPS", STEPS)),
        poll_s=pick(poll_s, "MLINTERN_DEMO_POLL_S", DEFAULT_POLL_S),
        max_polls=int(pick(max_polls, "MLINTERN_DEMO_MAX_POLLS", DEFAULT_MAX_POLLS)),
    )
    providers = litellm.custom_provider_map
    providers[:] = [p for p in providers if p.get("provider") != DEMO_PROVIDER]
    providers.append({"provider": DEMO_PROVIDER, "custom_handler": handler})
    litellm.register_model({DEMO_MODEL_ID: {
        "litellm_provider": DEMO_PROVIDER,
        "mode": "chat",
        "max_tokens": DEMO_MAX_OUTPUT,
        "max_input_tokens": DEMO_CONTEXT_WINDOW,
        "max_output_tokens": DEMO_MAX_OUTPUT,
        "input_cost_per_token": 0.0,
        "output_cost_per_token": 0.0,
        # set explicitly: litellm warns about unset cache prices for unknown models
        "cache_creation_input_token_cost": 0.0,
        "cache_read_input_token_cost": 0.0,
        "supports_function_calling": True,
        "supports_tool_choice": True,
    }})
    return DEMO_MODEL_ID
