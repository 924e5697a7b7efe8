"""The demo model: its streaming, its answers and the environment knobs.

``DemoModel`` answers like an OpenAI-compatible server would, in the same chunk and completion
shapes the client reads from a real one: each call asks ``agent.llm.demo.scenario`` for the
next reply and streams it back (words, then tool-call arguments in pieces, then the finish with
a rough token count). It needs no litellm and no server: the client calls it in-process.

Environment knobs, read by ``DemoModel.from_environment`` (tests use them to keep runs
short): ``MLINTERN_DEMO_DELAY`` (seconds between streamed chunks), ``MLINTERN_DEMO_STEPS``
(training steps), ``MLINTERN_DEMO_POLL_S`` (seconds between checks on the job) and
``MLINTERN_DEMO_MAX_POLLS`` (checks before handing the running job over).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
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


def _chunk(delta: dict[str, Any], finish_reason: str | None = None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {"model": DEMO_MODEL_ID,
                             "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def stream_chunks(reply: Reply, usage: dict[str, int]) -> Iterator[dict[str, Any]]:
    """OpenAI stream chunks: words, then tool calls in pieces, then the finish with the usage."""
    for piece in re.findall(r"\S+\s*|\s+", reply.text):
        yield _chunk({"content": piece})
    for index, tc in enumerate(reply.tool_calls):
        args = tc["function"]["arguments"]
        for k in range(0, max(len(args), 1), _ARG_PIECE):
            first = k == 0
            piece: dict[str, Any] = {"index": index, "function": {"arguments": args[k:k + _ARG_PIECE]}}
            if first:
                piece.update(id=tc["id"], type="function")
                piece["function"]["name"] = tc["function"]["name"]
            yield _chunk({"tool_calls": [piece]})
    yield _chunk({}, finish_reason=reply.finish_reason, usage=usage)


def _env_number(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


class DemoModel:
    """The scripted model, answering in-process in the OpenAI wire shapes."""

    def __init__(self, workspace: Path, chunk_delay: float = DEFAULT_CHUNK_DELAY, *, steps: int = STEPS,
                 poll_s: float = DEFAULT_POLL_S, max_polls: int = DEFAULT_MAX_POLLS) -> None:
        self.settings = DemoSettings(Path(workspace).expanduser().resolve(), max(1, int(steps)),
                                     max(0.1, float(poll_s)), max(0, int(max_polls)))
        self.chunk_delay = max(0.0, float(chunk_delay))

    @classmethod
    def from_environment(cls, workspace: Path) -> DemoModel:
        """Settings from the ``MLINTERN_DEMO_*`` variables, else the defaults."""
        return cls(workspace, _env_number("MLINTERN_DEMO_DELAY", DEFAULT_CHUNK_DELAY),
                   steps=int(_env_number("MLINTERN_DEMO_STEPS", STEPS)),
                   poll_s=_env_number("MLINTERN_DEMO_POLL_S", DEFAULT_POLL_S),
                   max_polls=int(_env_number("MLINTERN_DEMO_MAX_POLLS", DEFAULT_MAX_POLLS)))

    @property
    def workspace(self) -> Path:
        return self.settings.workspace

    def respond(self, messages: Any, tools: Any = None) -> tuple[Reply, dict[str, int]]:
        try:
            reply = next_reply(list(messages or []), offered_tools(tools), self.settings)
        except Exception as exc:  # a demo must never take the session down with it
            log.exception("demo model could not decide its next step")
            reply = Reply(f"The demo model hit an internal error ({type(exc).__name__}: {exc}) and "
                          f"stopped. {REAL_MODEL_HINT}")
        return reply, _usage(messages, tools, reply)

    def complete(self, messages: Any, tools: Any = None) -> dict[str, Any]:
        """The whole answer, in the shape of a non-streamed completion."""
        reply, usage = self.respond(messages, tools)
        message = {"role": "assistant", "content": reply.text or None, "tool_calls": reply.tool_calls or None}
        return {"model": DEMO_MODEL_ID, "usage": usage,
                "choices": [{"index": 0, "finish_reason": reply.finish_reason, "message": message}]}

    async def stream(self, messages: Any, tools: Any = None) -> AsyncIterator[dict[str, Any]]:
        """The answer as stream chunks, ``chunk_delay`` apart (each pause a cancellation point)."""
        reply, usage = self.respond(messages, tools)
        for chunk in stream_chunks(reply, usage):
            yield chunk
            if chunk["choices"][0]["finish_reason"] is None:
                await asyncio.sleep(self.chunk_delay)  # a cancellation point even at delay 0
