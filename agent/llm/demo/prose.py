"""What the demo model says: its greeting, narration and closing reports.

Every sentence that states a result is built from what ``agent.llm.demo.outputs`` parsed
out of real tool and job output; a run that went wrong ends with an honest failure report
that quotes what came back.
"""

from __future__ import annotations

from pathlib import Path

from agent.llm.demo.outputs import JobNote, Launched, TrainingLog, dict_literals, is_number, parse_environment
from agent.llm.demo.trainer import run_command

DEMO_MARK = "Demo model"
REPORT_PREFIX = "## Demo"  # how every closing report (results or failure) starts
REAL_MODEL_HINT = (
    "To work on your own task, use a real model: set `ANTHROPIC_API_KEY`, `OPENAI_API_KEY` or "
    "`HF_TOKEN` and restart, start with `-m ollama/<model>` for a local model, or switch now "
    "with `/model`."
)

STEP_NAMES = {  # a call's kind (see ``agent.llm.demo.conversation.Call``) as said in a failure report
    "env": "inspecting the environment",
    "read_script": "reading the existing training script",
    "write": "writing the training script",
    "launch": "launching the training job",
    "wait": "waiting between checks on the job",
    "inspect": "checking on the training job",
    "logs": "reading the job's log",
    "plan_tool": "updating the plan",
}


GREETING = (
    f"**{DEMO_MARK}** here (scripted, no API key needed). Send any message and I'll run my "
    "built-in task with the real tools: training a small MLP on synthetic data as a background job. "
    + REAL_MODEL_HINT
)
ALREADY_DONE = (
    "The demo run for your last message is finished. Say \"run again\" to repeat it. "
    + REAL_MODEL_HINT
)


def intro_text(request: str, rerun: bool) -> str:
    if rerun:
        lead = "Running the built-in task again: "
    else:
        short = " ".join(request.split())
        short = short if len(short) <= 80 else short[:77] + "…"
        lead = (f"You asked: “{short}”. A scripted demo can't act on that, so I'll run my "
                "built-in task instead: ")
    return (
        f"**{DEMO_MARK}** — scripted, no API key needed. I follow a fixed script, but nothing "
        "here is faked: every tool call below really runs on this machine.\n\n"
        f"{lead}train a small neural network (a 2-32-32-1 MLP in pure Python: no GPU, no "
        "downloads) to separate two interleaved spirals. It runs as a background CPU job (about 15-20 s), "
        "launched with `hf_jobs` like a real training run, so you'll be asked to approve it. Then I "
        "evaluate it on held-out points.\n\nFirst, the plan:"
    )


def script_text(env_output: str | None) -> str:
    facts = parse_environment(env_output)
    return (
        (f"{facts}: plenty for a small pure-Python model. " if facts else "")
        + "Next, the training script: minibatch SGD with momentum, warm-up and cosine decay on "
        "synthetic two-spirals data, logging like the Transformers Trainer (about 40 loss lines) "
        "and evaluating four times."
    )


def launch_text(steps: int) -> str:
    return (f"Script written. Launching it as a job for {steps} steps on `cpu-basic` (without a Hugging "
            "Face account, jobs run on this machine at $0). Jobs need your approval unless YOLO is on or "
            "`confirm_cpu_jobs` is off: press `y` on the card to start it.")


def running_text(job: Launched, poll_s: float, max_polls: int, resumed: bool) -> str:
    if resumed:
        return (f"Job `{job.id}` from before is still running; picking it up again and checking on it "
                f"every {poll_s:g} s.")
    return (
        f"Job `{job.id}` is running in the background ({job.where}): `hf_jobs run` returned as soon "
        "as it started, so nothing here is blocked. Its log streams into the Jobs pane beside the "
        "conversation; ctrl+g opens the jobs view with its loss curve. A real agent would get on with "
        "other work; this demo has nothing else to do, so "
        f"it checks on the job every {poll_s:g} s (up to {max_polls} times) and gets a [JOB UPDATE] "
        "note when it ends."
    )


def progress_text(inspect_output: str | None, total_steps: int | None) -> str:
    entries = dict_literals((inspect_output or "").partition("last line:")[2])
    entry = entries[-1] if entries else {}
    of = f" of {total_steps}" if total_steps else ""
    if is_number(entry.get("eval_accuracy")):
        return f"Still training: held-out accuracy {entry['eval_accuracy']:.1%} at step {entry.get('step', '?')}{of}."
    if is_number(entry.get("loss")):
        return f"Still training: step {entry.get('step', '?')}{of}, loss {entry['loss']}."
    return "Still running; no training line in its log yet."


def finished_text(job_id: str, note: JobNote | None, stage: str) -> str:
    source = "The [JOB UPDATE] note is in" if note else "`inspect` says it ended"
    took = f" after {note.elapsed}" if note and note.elapsed else ""
    return f"{source}: job `{job_id}` finished {stage}{took}. Reading its log for the numbers."


def handoff_text(job: Launched) -> str:
    return (
        f"Job `{job.id}` is still training, so I'm handing it over rather than holding your turn. "
        "It keeps running in the background (its log shows in the Jobs pane"
        + (f" and goes to `{job.log_path}`" if job.log_path else "") + "), a notice says when it ends, and I "
        "get a [JOB UPDATE] note at my next step. Send any message and I'll pick it up "
        "and report the real results."
    )


def still_running_text(job_id: str) -> str:
    return (f"Job `{job_id}` is still running in the background. Send any message once the "
            "notice says it ended and I'll report its results.")


def no_tools_text(missing: list[str], offered: set[str]) -> str:
    names = " and ".join(f"`{n}`" for n in missing)
    have = ", ".join(f"`{n}`" for n in sorted(offered)) or "none"
    plural = len(missing) > 1
    return (
        f"**{DEMO_MARK}** — scripted, no API key needed. It needs the {names} "
        f"tool{'s' if plural else ''} to write its training script and run it as a job, but this "
        f"session doesn't offer {'them' if plural else 'it'} (tools offered: {have}), so nothing was "
        "run. " + REAL_MODEL_HINT
    )


def _excerpt(text: str, limit: int = 1200) -> str:
    text = text.strip() or "(empty output)"
    if len(text) <= limit:
        return text
    return f"{text[:300]}\n…\n{text[-(limit - 300):]}"


def failure_text(what: str, tool: str, result: str | None, how: str, declined: bool = False,
                 job_id: str | None = None) -> str:
    """The honest end of a run that went wrong: what broke, what came back, what to do.
    ``job_id``: a job launched before the failure, which keeps running."""
    hint = ""
    if "--yolo" in (result or ""):
        hint = "Nobody can approve a job in headless mode: run `mlintern -p … --yolo` to allow it. "
    trained = (f"Job `{job_id}` was already launched and keeps running in the background; I won't report "
               "numbers I haven't read." if job_id else "Nothing was trained.")
    return (
        f"{REPORT_PREFIX} stopped: {what} {'was declined' if declined else 'did not work'}\n\n"
        f"The `{tool}` call for {what} {how}, so I'm stopping here instead of pretending the run "
        f"went fine. {trained} This is what came back:\n\n"
        f"```text\n{_excerpt(result or '(no result)')}\n```\n\n"
        f"{hint}Say \"run again\" to retry the scripted demo. {REAL_MODEL_HINT}"
    )


def job_failure_text(job_id: str, stage: str, note: JobNote | None, logs: str | None) -> str:
    why = {"ERROR": "failed", "CANCELED": "was cancelled", "DELETED": "was deleted"}.get(stage, f"ended {stage}")
    if stage == "COMPLETED":
        why = "completed, but its log has no final evaluation line"
    status = note.text.splitlines()[0] if note else f"Job {job_id}: {stage}"
    return (
        f"{REPORT_PREFIX} stopped: the training job {why}\n\n"
        f"Job `{job_id}` {why}, so there are no results to report and I won't make any up. "
        f"The job monitor said:\n\n```text\n{status}\n```\n\nThe end of its log:\n\n"
        f"```text\n{_excerpt(logs or '(no log)')}\n```\n\n"
        f"Say \"run again\" to retry the scripted demo. {REAL_MODEL_HINT}"
    )


def final_answer(log: TrainingLog, script: Path, env_output: str | None, job: Launched,
                 note: JobNote | None) -> str:
    env = parse_environment(env_output) if job.local else ""  # a remote job ran elsewhere
    first_step, first_loss = log.losses[0]
    rows = [
        ("job", f"`{job.id}` on cpu-basic ({job.where}), COMPLETED"
                + (f" after {note.elapsed}" if note and note.elapsed else "")),
        ("steps", str(log.steps)),
        (f"first logged loss (step {first_step})", first_loss),
        ("final training loss", log.losses[-1][1]),
        ("eval loss", "n/a" if log.eval_loss is None else str(log.eval_loss)),
        ("eval accuracy", f"{log.eval_accuracy:.2%} ({log.eval_accuracy})"),
    ]
    if log.runtime_s is not None:
        rows.append(("training time", f"{log.runtime_s} s" + (f" ({env})" if env else "")))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return (
        f"{REPORT_PREFIX} run: small MLP on two spirals\n\n"
        f"I trained a 2-32-32-1 MLP with minibatch SGD for {log.steps} steps on 2,000 synthetic "
        f"two-spirals points as a background job {'on this machine' if job.local else 'on Hugging Face Jobs'} "
        "and evaluated it on 500 held-out points. Every number below was parsed from that job's log, "
        "the same lines the loss curve was drawn from.\n\n"
        f"| metric | value |\n|---|---|\n{table}\n\n"
        f"Script: `{script}`" + (f"  \nJob log: `{job.log_path}`" if job.log_path else "") + "\n\n"
        f"Re-run it yourself, in the foreground:\n\n```bash\n{run_command(script, log.steps)}\n```\n\n"
        "This was the scripted **demo** model; it always runs this same task. " + REAL_MODEL_HINT
    )


def follow_up_text(last_log: TrainingLog | None) -> str:
    earlier = ""
    if last_log is not None:
        earlier = (f" Its last run in this conversation reached a final training loss of "
                   f"{last_log.losses[-1][1]} and an eval accuracy of {last_log.eval_accuracy:.2%}.")
    return (
        f"This is the built-in **demo** model: it follows a fixed script, so it can't answer "
        f"questions or take on new tasks.{earlier} Say \"run again\" to repeat the scripted "
        "training run. " + REAL_MODEL_HINT
    )
