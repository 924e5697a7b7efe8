"""The built-in demo model: a scripted litellm provider that drives the real tools.

With no credentials the app starts on this model, so a fresh offline install works end to
end. It is registered with litellm as a custom provider and walks through a small, real ML
task (inspect the machine, write a pure-Python training script, train, evaluate, report);
the engine executes its tool calls for real, and the report quotes the parsed output.

The next step is decided from the conversation alone (the calls after the last real user
message and their results), never from state kept in the provider: one provider instance
serves every session, and resuming or undoing needs nothing special. Content (prose, the
training script, output parsers) lives in ``agent.llm.demo_script``.

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
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.llm import demo_script as script

log = logging.getLogger(__name__)

DEMO_PROVIDER = "mlintern_demo"
DEMO_MODEL_ID = f"{DEMO_PROVIDER}/ml-task"
DEMO_CONTEXT_WINDOW = 32_768
DEMO_MAX_OUTPUT = 4_096
CALL_ID_PREFIX = "call_demo_"
DEFAULT_CHUNK_DELAY = 0.01
_ARG_PIECE = 64  # tool arguments stream in pieces this long, like a real model's deltas
_RERUN = re.compile(
    r"\b(again|re-?run|retrain|retry|restart|train(ing)?|one more time|start over|continue|resume)\b",
    re.I,
)
# How the engine, the router and the tools word a call that did not do its job. A rejection
# is only recognised in the first few words: a path such as .../test_rejected/ must not count.
_REJECTED = re.compile(
    r"^\W*(?:[\w'-]+\s+){0,6}?(?:cancell?ed by (?:the )?user|rejected|declined|denied)\b", re.I
)
_FAILED = re.compile(
    r"\bnot executed\b|\bnot run\b|\btimed out\b|\bkilled by signal\b"
    r"|Traceback \(most recent call last\)|\bexit (?:code|status)[:= ]*-?[1-9]",
    re.I,
)

# --------------------------------------------------------------------------- reading messages


def _field(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p if isinstance(p, str) else _field(p, "text") for p in content]
        return "\n".join(p for p in parts if isinstance(p, str))
    return str(content)


def _is_request(message: Any) -> bool:
    """A message a person typed; guards inject user-role ``[SYSTEM: ...]`` notes."""
    if _field(message, "role") != "user":
        return False
    text = _text(_field(message, "content")).strip()
    return bool(text) and not text.startswith("[SYSTEM")


@dataclass
class Call:
    id: str
    name: str
    args: dict[str, Any]
    result: str | None = None  # None: no tool message answered this call

    @property
    def kind(self) -> str:
        if self.name == "bash":
            return "run" if "--steps" in str(self.args.get("command", "")) else "env"
        if self.name == "read":
            return "metrics" if str(self.args.get("path", "")).endswith(".json") else "read_script"
        return self.name

    @property
    def rejected(self) -> bool:
        return self.result is not None and bool(_REJECTED.match(self.result))

    @property
    def failed(self) -> bool:
        if self.result is None or self.rejected:
            return True
        head = self.result.lstrip()[:20].lower()
        return head.startswith(("error", "failed")) or bool(_FAILED.search(self.result))


def _calls(messages: list[Any], results: dict[str, str]) -> list[Call]:
    out = []
    for m in messages:
        if _field(m, "role") != "assistant":
            continue
        for tc in _field(m, "tool_calls") or []:
            fn = _field(tc, "function") or {}
            call_id = str(_field(tc, "id") or "")
            try:
                args = json.loads(_field(fn, "arguments") or "{}")
            except (TypeError, ValueError):
                args = {}
            out.append(Call(call_id, str(_field(fn, "name") or ""),
                            args if isinstance(args, dict) else {}, results.get(call_id)))
    return out


@dataclass
class Conversation:
    request: str | None  # the last real user message
    first_request: str
    turn: list[Call]  # tool calls after the request, with their results
    answered: bool  # a text-only assistant answer already followed the request
    earlier_demo_run: bool
    earlier_calls: list[Call]
    demo_call_count: int

    @classmethod
    def read(cls, messages: list[Any]) -> Conversation:
        msgs = [m for m in messages if m is not None]
        anchors = [i for i, m in enumerate(msgs) if _is_request(m)]
        anchor = anchors[-1] if anchors else None
        results = {
            str(_field(m, "tool_call_id") or ""): _text(_field(m, "content"))
            for m in msgs if _field(m, "role") == "tool"
        }
        before = msgs[:anchor] if anchor is not None else []
        after = msgs[anchor + 1:] if anchor is not None else []
        earlier, turn = _calls(before, results), _calls(after, results)
        earlier_demo = any(c.id.startswith(CALL_ID_PREFIX) for c in earlier) or any(
            _field(m, "role") == "assistant" and script.DEMO_MARK in _text(_field(m, "content"))
            for m in before
        )
        return cls(
            request=_text(_field(msgs[anchor], "content")).strip() if anchor is not None else None,
            first_request=_text(_field(msgs[anchors[0]], "content")).strip() if anchors else "",
            turn=turn,
            answered=any(_field(m, "role") == "assistant" and not _field(m, "tool_calls") for m in after),
            earlier_demo_run=earlier_demo,
            earlier_calls=earlier,
            demo_call_count=sum(c.id.startswith(CALL_ID_PREFIX) for c in earlier + turn),
        )

    def last(self, kind: str) -> Call | None:
        return next((c for c in reversed(self.turn) if c.kind == kind), None)


# --------------------------------------------------------------------------- deciding the step


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"


class _Builder:
    def __init__(self, calls_so_far: int):
        self._n = calls_so_far

    def reply(self, text: str, *calls: tuple[str, dict[str, Any]]) -> Reply:
        out = []
        for name, args in calls:
            self._n += 1
            out.append({
                "id": f"{CALL_ID_PREFIX}{self._n}_{uuid.uuid4().hex[:8]}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            })
        return Reply(text, out)


def offered_tools(tools: Any) -> set[str]:
    names = set()
    for spec in tools or []:
        name = _field(_field(spec, "function") or {}, "name") or _field(spec, "name")
        if isinstance(name, str):
            names.add(name)
    return names


def next_reply(messages: list[Any], offered: set[str], workspace: Path) -> Reply:
    """What the demo says and calls next, given everything so far."""
    convo = Conversation.read(list(messages))
    b = _Builder(convo.demo_call_count)
    if convo.request is None:
        return b.reply(script.GREETING)
    if convo.answered and not any(c.failed for c in convo.turn):
        return b.reply(script.ALREADY_DONE)  # (after a failure, a nudge gets the honest failure again)
    rerun = convo.earlier_demo_run and bool(_RERUN.search(convo.request))
    if not convo.turn and convo.earlier_demo_run and not rerun:
        runs = [c for c in convo.earlier_calls if c.kind == "run"]
        return b.reply(script.follow_up_text(script.parse_training_log(runs[-1].result) if runs else None))
    missing = sorted({"bash", "write"} - offered)
    if missing:
        return b.reply(script.no_tools_text(missing, offered))
    run = convo.last("run")
    log_so_far = script.parse_training_log(run.result) if run and not run.failed else None
    for call in convo.turn:
        if call.failed:
            how = ("never returned a result (it was interrupted or not executed)" if call.result is None
                   else "was rejected" if call.rejected else "failed")
            what = script.STEP_NAMES.get(call.kind, f"the `{call.name}` call")
            return b.reply(script.failure_text(what, call.name, call.result, how, log_so_far))
    return _scenario_step(convo, b, offered, workspace, rerun)


def _scenario_step(
    convo: Conversation, b: _Builder, offered: set[str], workspace: Path, rerun: bool
) -> Reply:
    has_plan = "plan_tool" in offered

    def plan(done: int) -> list[tuple[str, dict[str, Any]]]:
        return [script.plan_call(done)] if has_plan else []

    env_call = ("bash", {"command": script.ENV_COMMAND, "description": "Check Python, CPU cores and disk",
                         "work_dir": str(workspace), "timeout": 60})
    env = convo.last("env")
    if env is None:
        intro = script.intro_text(convo.request or "", rerun)
        if not convo.turn:
            return b.reply(intro, *(plan(0) if has_plan else [env_call]))
        return b.reply("First, a quick look at the machine this will run on.", env_call)

    write, read_script = convo.last("write"), convo.last("read_script")
    if write is None:
        if read_script is not None:
            path = Path(str(read_script.args.get("path")))
            return b.reply("Replacing it with a fresh copy of the training script.",
                           ("write", {"path": str(path), "content": script.TRAIN_SCRIPT}))
        path = script.script_path(workspace, convo.first_request)
        if path.exists() and "read" in offered:
            return b.reply(
                f"`{path.name}` is already there from an earlier run; reading it before I replace it.",
                *plan(1), ("read", {"path": str(path)}),
            )
        while path.exists():  # without `read` the write tool would refuse, so pick a new name
            path = path.with_name(f"{path.stem}_{uuid.uuid4().hex[:4]}.py")
        return b.reply(script.script_text(env.result), *plan(1),
                       ("write", {"path": str(path), "content": script.TRAIN_SCRIPT}))

    train_script = Path(str(write.args.get("path")))
    run = convo.last("run")
    if run is None:
        return b.reply(
            f"Script written. Training for {script.STEPS} steps, logging every 10:", *plan(2),
            ("bash", {"command": script.run_command(train_script), "description": "Train the tiny MLP",
                      "work_dir": str(workspace), "timeout": 300}),
        )
    log_ = script.parse_training_log(run.result)
    if log_ is None:
        return b.reply(script.failure_text(
            script.STEP_NAMES["run"], "bash", run.result, "finished without printing an eval accuracy", None))
    metrics = convo.last("metrics")
    if metrics is None and "read" in offered:
        return b.reply(
            f"Training finished: loss {log_.losses[0][1]} → {log_.losses[-1][1]} over {log_.steps} "
            f"steps, eval accuracy {log_.eval_accuracy:.2%}. Checking the metrics file it saved.",
            *plan(3), ("read", {"path": str(script.output_dir(train_script) / "metrics.json")}),
        )
    note = script.metrics_note(log_, metrics.result) if metrics else ""
    plan_done = any(
        c.name == "plan_tool" and all(_field(t, "status") == "completed" for t in c.args.get("todos") or [{}])
        for c in convo.turn
    )
    if has_plan and not plan_done:
        return b.reply(f"{note or 'Evaluation done.'} Marking the plan complete.",
                       script.plan_call(len(script.PLAN_ITEMS)))
    return b.reply(script.final_answer(log_, train_script, env.result, note))


# --------------------------------------------------------------------------- the litellm provider


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


def _delay_from_env() -> float:
    try:
        return max(0.0, float(os.environ.get("MLINTERN_DEMO_DELAY", DEFAULT_CHUNK_DELAY)))
    except ValueError:
        return DEFAULT_CHUNK_DELAY


class _DemoBehaviour:
    """The provider's logic, kept free of litellm so this module imports instantly."""

    def __init__(self, workspace: Path, chunk_delay: float = DEFAULT_CHUNK_DELAY) -> None:
        super().__init__()
        self.workspace = Path(workspace).expanduser().resolve()
        self.chunk_delay = max(0.0, float(chunk_delay))

    def _respond(self, messages: Any, optional_params: dict[str, Any] | None) -> tuple[Reply, dict[str, int]]:
        tools = (optional_params or {}).get("tools")
        try:
            reply = next_reply(list(messages or []), offered_tools(tools), self.workspace)
        except Exception as exc:  # a demo must never take the session down with it
            log.exception("demo model could not decide its next step")
            reply = Reply(f"The demo model hit an internal error ({type(exc).__name__}: {exc}) and "
                          f"stopped. {script.REAL_MODEL_HINT}")
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
        "__module__": __name__,
        "__doc__": "The scripted demo model as a litellm ``CustomLLM``: "
                   "DemoLLM(workspace, chunk_delay=0.01).",
    })
    return cls


def __getattr__(name: str) -> Any:
    if name == "DemoLLM":
        return _demo_llm_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_demo_provider(workspace: Path, chunk_delay: float | None = None) -> str:
    """Make ``DEMO_MODEL_ID`` callable through litellm; safe to call again (the handler is
    replaced, so a new workspace or delay takes effect). Returns the litellm model id."""
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    import litellm

    handler = _demo_llm_class()(workspace, _delay_from_env() if chunk_delay is None else chunk_delay)
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
