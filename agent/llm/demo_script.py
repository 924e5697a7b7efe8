"""What the demo model says and runs: its training script, commands and prose.

The step logic lives in ``agent.llm.demo``; this module holds the content. The training
script is small but real, and every number the demo reports is parsed from the actual
output of the job that ran it (the parsers are here too), so the demo can never claim a
result that did not happen.
"""

from __future__ import annotations

import ast
import hashlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STEPS = 4000  # about 15 s of one CPU core for the script below
JOB_TIMEOUT = "10m"
DEMO_MARK = "Demo model"
REPORT_PREFIX = "## Demo"  # how every closing report (results or failure) starts
REAL_MODEL_HINT = (
    "To work on your own task, use a real model: set `ANTHROPIC_API_KEY`, `OPENAI_API_KEY` or "
    "`HF_TOKEN` and restart, start with `-m ollama/<model>` for a local model, or switch now "
    "with `/model`."
)
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

STEP_NAMES = {  # a call's kind (see ``agent.llm.demo.Call``) as said in a failure report
    "env": "inspecting the environment",
    "read_script": "reading the existing training script",
    "write": "writing the training script",
    "launch": "launching the training job",
    "wait": "waiting between checks on the job",
    "inspect": "checking on the training job",
    "logs": "reading the job's log",
    "plan_tool": "updating the plan",
}


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


# Standard library only, so it runs on any machine with python3 and no downloads.
TRAIN_SCRIPT = '''"""Train a small MLP to separate two interleaved spirals, using only the standard library.

Written by the mlintern demo model. Minibatch SGD with momentum, a short warm-up and a cosine
learning-rate decay. Logs one Transformers-Trainer-style dict per logging step (about 40 in
all), evaluates on held-out points four times, and saves metrics.json in --output-dir.
"""

import argparse
import json
import math
import os
import random
import time


def make_spirals(n, noise, rng):
    data = []
    for i in range(n):
        label, r = i % 2, rng.uniform(0.05, 1.0)
        t = 3 * math.pi * r + math.pi * label
        data.append(((r * math.cos(t) + rng.gauss(0, noise), r * math.sin(t) + rng.gauss(0, noise)), label))
    return data


class MLP:
    """2 -> hidden -> hidden -> 1 with tanh hidden layers and a sigmoid output."""

    def __init__(self, hidden, rng):
        def layer(n_in, n_out):
            return [[rng.gauss(0, 1 / math.sqrt(n_in)) for _ in range(n_in)] for _ in range(n_out)], [0.0] * n_out

        self.layers = [layer(2, hidden), layer(hidden, hidden), layer(hidden, 1)]
        self.velocity = [([[0.0] * len(r) for r in w], [0.0] * len(b)) for w, b in self.layers]

    def forward(self, x):
        (w1, b1), (w2, b2), (w3, b3) = self.layers
        h1 = [math.tanh(r[0] * x[0] + r[1] * x[1] + b) for r, b in zip(w1, b1)]
        h2 = [math.tanh(sum(w * h for w, h in zip(r, h1)) + b) for r, b in zip(w2, b2)]
        z = sum(w * h for w, h in zip(w3[0], h2)) + b3[0]
        return h1, h2, 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))

    def train_step(self, batch, lr, momentum=0.9):
        (w1, b1), (w2, b2), (w3, b3) = self.layers
        grads = [([[0.0] * len(r) for r in w], [0.0] * len(b)) for w, b in self.layers]
        (g1, gb1), (g2, gb2), (g3, gb3) = grads
        loss = 0.0
        for x, y in batch:
            h1, h2, p = self.forward(x)
            loss += bce(p, y)
            dz = p - y
            gb3[0] += dz
            d1 = [0.0] * len(h1)
            for j, h in enumerate(h2):
                g3[0][j] += dz * h
                dj = dz * w3[0][j] * (1 - h * h)
                gb2[j] += dj
                row, grow = w2[j], g2[j]
                for i, hi in enumerate(h1):
                    grow[i] += dj * hi
                    d1[i] += dj * row[i]
            for i, hi in enumerate(h1):
                di = d1[i] * (1 - hi * hi)
                gb1[i] += di
                g1[i][0] += di * x[0]
                g1[i][1] += di * x[1]
        norm = 0.0
        for (w, b), (gw, gb), (vw, vb) in zip(self.layers, grads, self.velocity):
            for row, grow, vrow in zip(w + [b], gw + [gb], vw + [vb]):
                for i, g in enumerate(grow):
                    g /= len(batch)
                    norm += g * g
                    vrow[i] = momentum * vrow[i] + g
                    row[i] -= lr * vrow[i]
        return loss / len(batch), math.sqrt(norm)


def bce(p, label):
    return -math.log(max(p if label else 1 - p, 1e-12))


def evaluate(model, data):
    loss = correct = 0
    for x, y in data:
        p = model.forward(x)[2]
        loss += bce(p, y)
        correct += int((p >= 0.5) == bool(y))
    return round(loss / len(data), 4), round(correct / len(data), 4)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=__STEPS__)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.3)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-dir", default="demo_output")
    args = parser.parse_args()
    log_every = max(1, args.steps // 40)
    eval_every = max(log_every, args.steps // 4)

    rng = random.Random(args.seed)
    train, test = make_spirals(2000, 0.04, rng), make_spirals(500, 0.04, rng)
    model = MLP(args.hidden, rng)
    history, running, count, cursor = [], 0.0, 0, len(train)
    warmup = max(1, args.steps // 20)
    start = time.time()
    for step in range(1, args.steps + 1):
        if cursor + args.batch_size > len(train):
            rng.shuffle(train)
            cursor = 0
        batch, cursor = train[cursor:cursor + args.batch_size], cursor + args.batch_size
        lr = args.learning_rate * min(step / warmup, 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        loss, grad_norm = model.train_step(batch, lr)
        running, count = running + loss, count + 1
        if step % log_every == 0 or step == args.steps:
            entry = {"loss": round(running / count, 4), "grad_norm": round(grad_norm, 4),
                     "learning_rate": round(lr, 6), "epoch": round(step * args.batch_size / len(train), 2),
                     "step": step}
            print(entry, flush=True)
            history.append(entry)
            running, count = 0.0, 0
        if step % eval_every == 0 and step != args.steps:
            eval_loss, eval_accuracy = evaluate(model, test)
            print({"eval_loss": eval_loss, "eval_accuracy": eval_accuracy, "step": step}, flush=True)
    runtime = round(time.time() - start, 3)
    print({"train_runtime": runtime, "train_loss": history[-1]["loss"], "epoch": history[-1]["epoch"],
           "step": args.steps}, flush=True)
    eval_loss, eval_accuracy = evaluate(model, test)
    print({"eval_loss": eval_loss, "eval_accuracy": eval_accuracy, "epoch": history[-1]["epoch"],
           "step": args.steps}, flush=True)

    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "metrics.json")
    with open(path, "w") as f:
        json.dump({"steps": args.steps, "seed": args.seed, "train_runtime": runtime,
                   "final_loss": history[-1]["loss"], "eval_loss": eval_loss,
                   "eval_accuracy": eval_accuracy, "log_history": history}, f, indent=1)
    print(f"metrics written to {path}", flush=True)


if __name__ == "__main__":
    main()
'''.replace("__STEPS__", str(STEPS))


# --------------------------------------------------------------------------- paths and commands


def script_path(workspace: Path, first_request: str) -> Path:
    """One script per conversation (named after its first message), kept out of the way."""
    digest = hashlib.sha1(first_request.encode("utf-8", "replace")).hexdigest()[:8]
    return workspace / "mlintern_demo" / f"train_{digest}.py"


def output_dir(script: Path) -> Path:
    return script.with_name(f"{script.stem}_output")


def run_command(script: Path, steps: int) -> str:
    return (f"python3 {shlex.quote(str(script))} --steps {steps} "
            f"--output-dir {shlex.quote(str(output_dir(script)))}")


# --------------------------------------------------------------------------- parsing outputs


def _dicts(text: str | None) -> list[dict[str, Any]]:
    """The flat ``{...}`` literals in a text, in order (Trainer-style log lines)."""
    out = []
    for match in re.finditer(r"\{[^{}]*\}", text or ""):
        try:
            entry = ast.literal_eval(match.group(0))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class TrainingLog:
    losses: list[tuple[int, str]]  # (step, loss exactly as printed)
    eval_accuracy: float
    eval_loss: float | None
    runtime_s: float | None

    @property
    def steps(self) -> int:
        return self.losses[-1][0]


def parse_training_log(output: str | None) -> TrainingLog | None:
    """The Trainer-style dict lines of a run, or None when it never got to evaluation."""
    losses: list[tuple[int, str]] = []
    evals: dict[str, Any] = {}
    runtime = None
    for entry in _dicts(output):
        if _number(entry.get("loss")) and isinstance(entry.get("step"), int):
            losses.append((entry["step"], str(entry["loss"])))
        if _number(entry.get("eval_accuracy")):
            evals = entry
        if _number(entry.get("train_runtime")):
            runtime = entry["train_runtime"]
    if not losses or not evals:
        return None
    eval_loss = evals.get("eval_loss")
    return TrainingLog(losses, float(evals["eval_accuracy"]), eval_loss if _number(eval_loss) else None, runtime)


def parse_environment(output: str | None) -> str:
    text = output or ""
    facts = []
    if m := re.search(r"Python (\d+\.\d+(\.\d+)?)", text):
        facts.append(f"Python {m.group(1)}")
    if m := re.search(r"cpu cores: (\d+)", text):
        facts.append(f"{m.group(1)} CPU core{'' if m.group(1) == '1' else 's'}")
    if m := re.search(r"free disk: ([\d.]+ GB)", text):
        facts.append(f"{m.group(1)} free disk")
    return ", ".join(facts)


@dataclass
class Launched:
    """An accepted ``hf_jobs run``: the job id, where it runs, and where its log goes."""

    id: str
    where: str  # as the result says it, e.g. "local backend, local CPU, $0"
    log_path: str

    @property
    def local(self) -> bool:
        return self.where.startswith("local backend")


def launched_job(run_output: str | None) -> Launched | None:
    m = re.search(r"^Job (\S+) accepted on \S+ \((.*)\)\. Status", run_output or "", re.M)
    if not m:
        return None
    log = re.search(r"^Log: (.+)$", run_output or "", re.M)
    return Launched(m.group(1), m.group(2), log.group(1).strip() if log else "")


@dataclass
class JobNote:
    """The job monitor's ``[JOB UPDATE]`` note: the job ended."""

    job_id: str
    stage: str
    text: str

    @property
    def elapsed(self) -> str:
        m = re.search(r"finished: \w+ after (\S+?),", self.text)
        return m.group(1) if m else ""


def parse_note(text: str) -> JobNote | None:
    m = re.match(r"\s*\[JOB UPDATE\] Job (\S+) .*?finished: (\w+)", text, re.S)
    return JobNote(m.group(1), m.group(2).upper(), text) if m else None


def job_stage(result: str | None) -> str | None:
    """The stage an ``inspect`` ("Job X: RUNNING on ...") or ``logs`` ("Job X is RUNNING; ...")
    result reports."""
    m = re.match(r"\s*Job \S+(?::| is) ([A-Z]+)\b", result or "")
    return m.group(1) if m else None


# --------------------------------------------------------------------------- prose


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
    entries = _dicts((inspect_output or "").partition("last line:")[2])
    entry = entries[-1] if entries else {}
    of = f" of {total_steps}" if total_steps else ""
    if _number(entry.get("eval_accuracy")):
        return f"Still training: held-out accuracy {entry['eval_accuracy']:.1%} at step {entry.get('step', '?')}{of}."
    if _number(entry.get("loss")):
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
