"""The built-in demo model: a scripted litellm provider that drives the real tools.

With no credentials the app starts on this model, so a fresh offline install works end to
end. It is registered with litellm as a custom provider and walks through a small, real ML
task: inspect the machine, write a pure-Python training script, launch it with ``hf_jobs``
as a background job (the local backend without an HF account; the user approves it), check
on it every few seconds while it trains, then read its log and report. The engine executes
every call for real, and the report quotes the job's parsed log. If the job outlives the
checks, the turn ends and the next message picks the job up again (by then the job
monitor's ``[JOB UPDATE]`` note is in the conversation).

The next step is decided from the conversation alone (the calls and their results, the
monitor's notes), never from state kept in the provider: one provider instance serves every
session, and resuming or undoing needs nothing special. Content (prose, the training script,
output parsers) lives in ``agent.llm.demo_script``.

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
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.llm import demo_script as script

log = logging.getLogger(__name__)

DEMO_PROVIDER = "mlintern_demo"
DEMO_MODEL_ID = f"{DEMO_PROVIDER}/ml-task"
DEMO_CONTEXT_WINDOW = 131_072  # one demo run uses ~10k tokens: room for many runs before compaction
DEMO_MAX_OUTPUT = 4_096
CALL_ID_PREFIX = "call_demo_"
DEFAULT_CHUNK_DELAY = 0.01
DEFAULT_POLL_S = 5.0
DEFAULT_MAX_POLLS = 12
FINAL_STAGES = frozenset({"COMPLETED", "ERROR", "CANCELED", "DELETED"})
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
#: user-role messages nobody typed: the engine's guards and the job monitor's notes
_INJECTED = ("[SYSTEM", "[JOB UPDATE]")

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
    """A message a person typed, not a guard's or the job monitor's note."""
    if _field(message, "role") != "user":
        return False
    text = _text(_field(message, "content")).strip()
    return bool(text) and not text.startswith(_INJECTED)


@dataclass
class DemoSettings:
    workspace: Path
    steps: int = script.STEPS
    poll_s: float = DEFAULT_POLL_S
    max_polls: int = DEFAULT_MAX_POLLS


@dataclass
class Call:
    id: str
    name: str
    args: dict[str, Any]
    result: str | None = None  # None: no tool message answered this call
    at: int = 0  # index of the assistant message that made it

    @property
    def kind(self) -> str:
        if self.name == "bash":
            return "wait" if str(self.args.get("command", "")).lstrip().startswith("sleep ") else "env"
        if self.name == "read":
            return "read_script"
        if self.name == "hf_jobs":
            return {"run": "launch", "inspect": "inspect", "logs": "logs"}.get(self.args.get("operation"), "hf_jobs")
        return self.name

    @property
    def rejected(self) -> bool:
        return self.result is not None and bool(_REJECTED.match(self.result))

    @property
    def failed(self) -> bool:
        if self.result is None or self.rejected:
            return True
        head = self.result.lstrip()[:20].lower()
        if self.name == "hf_jobs":  # the rest is the job's own output: a job's failure is not the call's
            return head.startswith("error")
        return head.startswith(("error", "failed")) or bool(_FAILED.search(self.result))

    @property
    def job(self) -> script.Launched | None:
        """The job of a launch the backend accepted."""
        return script.launched_job(self.result) if self.kind == "launch" and not self.failed else None


def _calls(messages: list[Any], results: dict[str, str]) -> list[Call]:
    out = []
    for at, m in enumerate(messages):
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
                            args if isinstance(args, dict) else {}, results.get(call_id), at))
    return out


@dataclass
class Conversation:
    request: str | None  # the last real user message
    first_request: str
    anchor: int  # its index (-1: none)
    calls: list[Call]  # every tool call, with its result
    answered: bool  # a text-only assistant answer already followed the request
    earlier_demo_run: bool
    notes: dict[str, script.JobNote]  # job id -> the monitor's note that it ended
    reports: list[int]  # indices of the demo's closing reports (results or failure)

    @classmethod
    def read(cls, messages: list[Any]) -> Conversation:
        msgs = [m for m in messages if m is not None]
        anchors = [i for i, m in enumerate(msgs) if _is_request(m)]
        anchor = anchors[-1] if anchors else -1
        results = {
            str(_field(m, "tool_call_id") or ""): _text(_field(m, "content"))
            for m in msgs if _field(m, "role") == "tool"
        }
        calls = _calls(msgs, results)
        texts = [(i, _text(_field(m, "content")).strip()) for i, m in enumerate(msgs)
                 if _field(m, "role") == "assistant" and not _field(m, "tool_calls")]
        notes = {}
        for m in msgs:
            if _field(m, "role") == "user" and (note := script.parse_note(_text(_field(m, "content")))):
                notes[note.job_id] = note
        earlier_demo = any(c.id.startswith(CALL_ID_PREFIX) for c in calls if c.at < anchor) or any(
            i < anchor and script.DEMO_MARK in text for i, text in texts)
        return cls(
            request=_text(_field(msgs[anchor], "content")).strip() if anchors else None,
            first_request=_text(_field(msgs[anchors[0]], "content")).strip() if anchors else "",
            anchor=anchor,
            calls=calls,
            answered=anchors != [] and any(i > anchor for i, _ in texts),
            earlier_demo_run=earlier_demo,
            notes=notes,
            reports=[i for i, text in texts if text.startswith(script.REPORT_PREFIX)],
        )

    @property
    def turn(self) -> list[Call]:
        return [c for c in self.calls if c.at > self.anchor]

    @property
    def earlier(self) -> list[Call]:
        return [c for c in self.calls if c.at < self.anchor]

    @property
    def demo_call_count(self) -> int:
        return sum(c.id.startswith(CALL_ID_PREFIX) for c in self.calls)

    def last(self, kind: str) -> Call | None:
        return next((c for c in reversed(self.turn) if c.kind == kind), None)

    def open_job(self) -> Call | None:
        """The last accepted launch, unless a closing report already followed it."""
        launch = next((c for c in reversed(self.calls) if c.job is not None), None)
        if launch is None or any(i > launch.at for i in self.reports):
            return None
        return launch


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


def next_reply(messages: list[Any], offered: set[str], settings: DemoSettings) -> Reply:
    """What the demo says and calls next, given everything so far."""
    convo = Conversation.read(list(messages))
    b = _Builder(convo.demo_call_count)
    if convo.request is None:
        return b.reply(script.GREETING)
    job = convo.open_job()
    failed = next((c for c in convo.turn if c.failed), None)
    if convo.answered and failed is None:  # (after a failure, a nudge gets the honest failure again)
        return b.reply(script.still_running_text(job.job.id) if job else script.ALREADY_DONE)
    resumed = job is not None and job.at < convo.anchor  # the last turn ended while it ran
    rerun = convo.earlier_demo_run and bool(_RERUN.search(convo.request))
    if not convo.turn and convo.earlier_demo_run and not rerun and not resumed:
        logs = [c for c in convo.earlier if c.kind == "logs"]
        return b.reply(script.follow_up_text(script.parse_training_log(logs[-1].result) if logs else None))
    missing = sorted({"bash", "write", "hf_jobs"} - offered)
    if missing:
        return b.reply(script.no_tools_text(missing, offered))
    if failed is not None:
        what = script.STEP_NAMES.get(failed.kind, f"the `{failed.name}` call")
        how = ("never returned a result (it was interrupted or not executed)" if failed.result is None
               else "was rejected" if failed.rejected else "failed")
        running = job.job.id if job is not None and job.at < failed.at else None
        return _trimmed_plan(convo, b, failed.at, f"Stopping: {what} {how}.") or b.reply(
            script.failure_text(what, failed.name, failed.result, how, declined=failed.rejected, job_id=running))
    if resumed:
        return _follow(convo, b, job, offered, settings, resumed=True)
    return _scenario_step(convo, b, offered, settings, rerun)


def _plan(offered: set[str], done: int) -> list[tuple[str, dict[str, Any]]]:
    return [script.plan_call(done)] if "plan_tool" in offered else []


def _scenario_step(
    convo: Conversation, b: _Builder, offered: set[str], settings: DemoSettings, rerun: bool
) -> Reply:
    workspace = settings.workspace
    env_call = ("bash", {"command": script.ENV_COMMAND, "description": "Check Python, CPU cores and disk",
                         "work_dir": str(workspace), "timeout": 60})
    env = convo.last("env")
    if env is None:
        intro = script.intro_text(convo.request or "", rerun)
        if not convo.turn:
            return b.reply(intro, *(_plan(offered, 0) or [env_call]))
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
                *_plan(offered, 1), ("read", {"path": str(path)}),
            )
        while path.exists():  # without `read` the write tool would refuse, so pick a new name
            path = path.with_name(f"{path.stem}_{uuid.uuid4().hex[:4]}.py")
        return b.reply(script.script_text(env.result), *_plan(offered, 1),
                       ("write", {"path": str(path), "content": script.TRAIN_SCRIPT}))

    launch = convo.last("launch")
    if launch is None:
        # the script travels as content (a path is read and sent), as it would to a remote job
        return b.reply(script.launch_text(settings.steps), *_plan(offered, 2), ("hf_jobs", {
            "operation": "run", "script": str(write.args.get("path")),
            "script_args": ["--steps", str(settings.steps)], "hardware_flavor": "cpu-basic",
            "timeout": script.JOB_TIMEOUT,
        }))
    if launch.job is None:
        return b.reply(script.failure_text(script.STEP_NAMES["launch"], "hf_jobs", launch.result,
                                           "came back without a job id"))
    return _follow(convo, b, launch, offered, settings, resumed=False)


def _follow(convo: Conversation, b: _Builder, launch: Call, offered: set[str], settings: DemoSettings,
            resumed: bool) -> Reply:
    """While the job runs: wait a little, inspect, repeat; when it ends, read its log."""
    job = launch.job
    assert job is not None
    job_id = job.id
    after = [c for c in convo.calls if c.at > launch.at]
    note = convo.notes.get(job_id)
    logs = next((c for c in reversed(after) if c.kind == "logs"), None)
    if logs is not None:
        return _report(convo, b, launch, logs, note, offered)
    last = after[-1] if after else None
    stage = note.stage if note else script.job_stage(last.result) if last and last.kind == "inspect" else None
    if stage in FINAL_STAGES:
        return b.reply(script.finished_text(job_id, note, stage), *_plan(offered, 4),
                       ("hf_jobs", {"operation": "logs", "job_id": job_id}))
    if last is not None and last.kind == "wait" and last.at > convo.anchor:
        return b.reply("", ("hf_jobs", {"operation": "inspect", "job_id": job_id}))
    waits = sum(c.kind == "wait" for c in after if c.at > convo.anchor)
    if waits >= settings.max_polls:
        handoff = script.handoff_plan_call()
        if "plan_tool" in offered and not (last and last.name == "plan_tool" and last.args == handoff[1]):
            return b.reply("It is still training. Updating the plan before I hand it over.", handoff)
        return b.reply(script.handoff_text(job))
    if waits == 0:
        text = script.running_text(job, settings.poll_s, settings.max_polls, resumed)
    else:
        text = script.progress_text(last.result if last and last.kind == "inspect" else None, _steps(launch))
    return b.reply(text, *(_plan(offered, 3) if waits == 0 else []), ("bash", {
        "command": f"sleep {settings.poll_s:g}", "description": f"Wait {settings.poll_s:g} s before checking on the job",
        "work_dir": str(settings.workspace), "timeout": int(settings.poll_s) + 30,
    }))


def _trimmed_plan(convo: Conversation, b: _Builder, since: int, text: str) -> Reply | None:
    """Before an early stop, drop the plan items that will not happen now: left unfinished,
    the engine's continuation guard would send the demo back to repeat its failure report."""
    plans = [c for c in convo.calls if c.name == "plan_tool" and not c.failed]
    todos = plans[-1].args.get("todos") or [] if plans else []
    if plans[-1:] and plans[-1].at > since or all(_field(t, "status") == "completed" for t in todos):
        return None
    return b.reply(text + " Taking the steps that won't run off the plan.",
                   ("plan_tool", {"todos": [t for t in todos if _field(t, "status") == "completed"]}))


def _steps(launch: Call) -> int | None:
    args = [str(a) for a in launch.args.get("script_args") or []]
    i = args.index("--steps") + 1 if "--steps" in args else len(args)
    return int(args[i]) if i < len(args) and args[i].isdigit() else None


def _report(convo: Conversation, b: _Builder, launch: Call, logs: Call, note: script.JobNote | None,
            offered: set[str]) -> Reply:
    job = launch.job
    assert job is not None
    stage = note.stage if note else script.job_stage(logs.result) or "UNKNOWN"
    log_ = script.parse_training_log(logs.result)
    if stage != "COMPLETED" or log_ is None:
        return _trimmed_plan(convo, b, logs.at, f"The job ended {stage}: no results to report.") or b.reply(
            script.job_failure_text(job.id, stage, note, logs.result))
    plan_done = any(
        c.name == "plan_tool" and c.at > logs.at
        and all(_field(t, "status") == "completed" for t in c.args.get("todos") or [{}])
        for c in convo.calls
    )
    if "plan_tool" in offered and not plan_done:
        return b.reply(
            f"Training finished: loss {log_.losses[0][1]} → {log_.losses[-1][1]} over {log_.steps} steps, "
            f"eval accuracy {log_.eval_accuracy:.2%}. Marking the plan complete.",
            script.plan_call(len(script.PLAN_ITEMS)),
        )
    env = next((c for c in reversed(convo.calls) if c.kind == "env" and c.at < launch.at), None)
    return b.reply(script.final_answer(log_, Path(str(launch.args.get("script"))), env.result if env else None,
                                       job, note))


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


def _env_number(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


class _DemoBehaviour:
    """The provider's logic, kept free of litellm so this module imports instantly."""

    def __init__(self, workspace: Path, chunk_delay: float = DEFAULT_CHUNK_DELAY, *, steps: int = script.STEPS,
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
        steps=int(pick(steps, "MLINTERN_DEMO_STEPS", script.STEPS)),
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
