"""Deciding the demo's next step: the scenario it walks through, one reply at a time.

Inspect the machine, write the training script, launch it with ``hf_jobs`` as a background
job (the user approves it), check on it every few seconds while it trains, then read its log
and report; on any failure, stop with an honest report instead. The step is decided from the
conversation alone (``agent.llm.demo.conversation``), and the plan and tool arguments the
demo sends are here too.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.llm.demo import outputs, prose, trainer
from agent.llm.demo.conversation import CALL_ID_PREFIX, Call, Conversation, field_value

DEFAULT_POLL_S = 5.0
DEFAULT_MAX_POLLS = 12
FINAL_STAGES = frozenset({"COMPLETED", "ERROR", "CANCELED", "DELETED"})
JOB_TIMEOUT = "10m"
_RERUN = re.compile(
    r"\b(again|re-?run|retrain|retry|restart|train(ing)?|one more time|start over|continue|resume)\b",
    re.I,
)

# --------------------------------------------------------------------------- the plan and the commands

PLAN_ITEMS = (
    ("inspect", "Inspect the environment (Python, CPU cores, free disk)"),
    ("script", "Write a pure-Python training script (small MLP, two-spirals data)"),
    ("launch", "Launch it as a local CPU job with hf_jobs (needs your approval)"),
    ("follow", "Follow the job while it trains (log, loss curve)"),
    ("report", "Read the final loss and eval accuracy from the job's log and report"),
)
HANDOFF_ITEM = ("follow", "Check on the job for a while; it still runs, so it is handed over")
ENV_COMMAND = (
    "python3 --version && python3 -c \"import os, platform, shutil; "
    "print('platform:', platform.platform()); print('cpu cores:', os.cpu_count()); "
    "print('free disk: %.1f GB' % (shutil.disk_usage('.').free / 1e9))\""
)


def plan_call(done: int) -> tuple[str, dict[str, Any]]:
    """``plan_tool`` arguments with the first ``done`` items completed and the next in progress."""
    todos = [
        {"id": key, "content": content,
         "status": "completed" if i < done else "in_progress" if i == done else "pending"}
        for i, (key, content) in enumerate(PLAN_ITEMS)
    ]
    return "plan_tool", {"todos": todos}


def handoff_plan_call() -> tuple[str, dict[str, Any]]:
    """The plan when the turn ends with the job still running: what this turn did, all done
    (an unfinished item would make the engine's continuation guard send the demo back)."""
    todos = [{"id": key, "content": content, "status": "completed"} for key, content in PLAN_ITEMS[:3]]
    todos.append({"id": HANDOFF_ITEM[0], "content": HANDOFF_ITEM[1], "status": "completed"})
    return "plan_tool", {"todos": todos}


# --------------------------------------------------------------------------- deciding the step


@dataclass
class DemoSettings:
    workspace: Path
    steps: int = trainer.STEPS
    poll_s: float = DEFAULT_POLL_S
    max_polls: int = DEFAULT_MAX_POLLS


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


def next_reply(messages: list[Any], offered: set[str], settings: DemoSettings) -> Reply:
    """What the demo says and calls next, given everything so far."""
    convo = Conversation.read(list(messages))
    b = _Builder(convo.demo_call_count)
    if convo.request is None:
        return b.reply(prose.GREETING)
    job = convo.open_job()
    failed = next((c for c in convo.turn if c.failed), None)
    if convo.answered and failed is None:  # (after a failure, a nudge gets the honest failure again)
        return b.reply(prose.still_running_text(job.job.id) if job else prose.ALREADY_DONE)
    resumed = job is not None and job.at < convo.anchor  # the last turn ended while it ran
    rerun = convo.earlier_demo_run and bool(_RERUN.search(convo.request))
    if not convo.turn and convo.earlier_demo_run and not rerun and not resumed:
        logs = [c for c in convo.earlier if c.kind == "logs"]
        return b.reply(prose.follow_up_text(outputs.parse_training_log(logs[-1].result) if logs else None))
    missing = sorted({"bash", "write", "hf_jobs"} - offered)
    if missing:
        return b.reply(prose.no_tools_text(missing, offered))
    if failed is not None:
        what = prose.STEP_NAMES.get(failed.kind, f"the `{failed.name}` call")
        how = ("never returned a result (it was interrupted or not executed)" if failed.result is None
               else "was rejected" if failed.rejected else "failed")
        running = job.job.id if job is not None and job.at < failed.at else None
        return _trimmed_plan(convo, b, failed.at, f"Stopping: {what} {how}.") or b.reply(
            prose.failure_text(what, failed.name, failed.result, how, declined=failed.rejected, job_id=running))
    if resumed:
        return _follow(convo, b, job, offered, settings, resumed=True)
    return _scenario_step(convo, b, offered, settings, rerun)


def _plan(offered: set[str], done: int) -> list[tuple[str, dict[str, Any]]]:
    return [plan_call(done)] if "plan_tool" in offered else []


def _scenario_step(
    convo: Conversation, b: _Builder, offered: set[str], settings: DemoSettings, rerun: bool
) -> Reply:
    workspace = settings.workspace
    env_call = ("bash", {"command": ENV_COMMAND, "description": "Check Python, CPU cores and disk",
                         "work_dir": str(workspace), "timeout": 60})
    env = convo.last("env")
    if env is None:
        intro = prose.intro_text(convo.request or "", rerun)
        if not convo.turn:
            return b.reply(intro, *(_plan(offered, 0) or [env_call]))
        return b.reply("First, a quick look at the machine this will run on.", env_call)

    write, read_script = convo.last("write"), convo.last("read_script")
    if write is None:
        if read_script is not None:
            path = Path(str(read_script.args.get("path")))
            return b.reply("Replacing it with a fresh copy of the training script.",
                           ("write", {"path": str(path), "content": trainer.TRAIN_SCRIPT}))
        path = trainer.script_path(workspace, convo.first_request)
        if path.exists() and "read" in offered:
            return b.reply(
                f"`{path.name}` is already there from an earlier run; reading it before I replace it.",
                *_plan(offered, 1), ("read", {"path": str(path)}),
            )
        while path.exists():  # without `read` the write tool would refuse, so pick a new name
            path = path.with_name(f"{path.stem}_{uuid.uuid4().hex[:4]}.py")
        return b.reply(prose.script_text(env.result), *_plan(offered, 1),
                       ("write", {"path": str(path), "content": trainer.TRAIN_SCRIPT}))

    launch = convo.last("launch")
    if launch is None:
        # the script travels as content (a path is read and sent), as it would to a remote job
        return b.reply(prose.launch_text(settings.steps), *_plan(offered, 2), ("hf_jobs", {
            "operation": "run", "script": str(write.args.get("path")),
            "script_args": ["--steps", str(settings.steps)], "hardware_flavor": "cpu-basic",
            "timeout": JOB_TIMEOUT,
        }))
    if launch.job is None:
        return b.reply(prose.failure_text(prose.STEP_NAMES["launch"], "hf_jobs", launch.result,
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
    stage = note.stage if note else outputs.job_stage(last.result) if last and last.kind == "inspect" else None
    if stage in FINAL_STAGES:
        return b.reply(prose.finished_text(job_id, note, stage), *_plan(offered, 4),
                       ("hf_jobs", {"operation": "logs", "job_id": job_id}))
    if last is not None and last.kind == "wait" and last.at > convo.anchor:
        return b.reply("", ("hf_jobs", {"operation": "inspect", "job_id": job_id}))
    waits = sum(c.kind == "wait" for c in after if c.at > convo.anchor)
    if waits >= settings.max_polls:
        handoff = handoff_plan_call()
        if "plan_tool" in offered and not (last and last.name == "plan_tool" and last.args == handoff[1]):
            return b.reply("It is still training. Updating the plan before I hand it over.", handoff)
        return b.reply(prose.handoff_text(job))
    if waits == 0:
        text = prose.running_text(job, settings.poll_s, settings.max_polls, resumed)
    else:
        text = prose.progress_text(last.result if last and last.kind == "inspect" else None, _steps(launch))
    return b.reply(text, *(_plan(offered, 3) if waits == 0 else []), ("bash", {
        "command": f"sleep {settings.poll_s:g}", "description": f"Wait {settings.poll_s:g} s before checking on the job",
        "work_dir": str(settings.workspace), "timeout": int(settings.poll_s) + 30,
    }))


def _trimmed_plan(convo: Conversation, b: _Builder, since: int, text: str) -> Reply | None:
    """Before an early stop, drop the plan items that will not happen now: left unfinished,
    the engine's continuation guard would send the demo back to repeat its failure report."""
    plans = [c for c in convo.calls if c.name == "plan_tool" and not c.failed]
    todos = plans[-1].args.get("todos") or [] if plans else []
    if plans[-1:] and plans[-1].at > since or all(field_value(t, "status") == "completed" for t in todos):
        return None
    return b.reply(text + " Taking the steps that won't run off the plan.",
                   ("plan_tool", {"todos": [t for t in todos if field_value(t, "status") == "completed"]}))


def _steps(launch: Call) -> int | None:
    args = [str(a) for a in launch.args.get("script_args") or []]
    i = args.index("--steps") + 1 if "--steps" in args else len(args)
    return int(args[i]) if i < len(args) and args[i].isdigit() else None


def _report(convo: Conversation, b: _Builder, launch: Call, logs: Call, note: outputs.JobNote | None,
            offered: set[str]) -> Reply:
    job = launch.job
    assert job is not None
    stage = note.stage if note else outputs.job_stage(logs.result) or "UNKNOWN"
    log_ = outputs.parse_training_log(logs.result)
    if stage != "COMPLETED" or log_ is None:
        return _trimmed_plan(convo, b, logs.at, f"The job ended {stage}: no results to report.") or b.reply(
            prose.job_failure_text(job.id, stage, note, logs.result))
    plan_done = any(
        c.name == "plan_tool" and c.at > logs.at
        and all(field_value(t, "status") == "completed" for t in c.args.get("todos") or [{}])
        for c in convo.calls
    )
    if "plan_tool" in offered and not plan_done:
        return b.reply(
            f"Training finished: loss {log_.losses[0][1]} → {log_.losses[-1][1]} over {log_.steps} steps, "
            f"eval accuracy {log_.eval_accuracy:.2%}. Marking the plan complete.",
            plan_call(len(PLAN_ITEMS)),
        )
    env = next((c for c in reversed(convo.calls) if c.kind == "env" and c.at < launch.at), None)
    return b.reply(prose.final_answer(log_, Path(str(launch.args.get("script"))), env.result if env else None,
                                       job, note))

