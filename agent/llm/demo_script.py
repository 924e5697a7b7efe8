"""What the demo model says and runs: its training script, commands and prose.

The step logic lives in ``agent.llm.demo``; this module holds the content. The training
script is small but real, and every number the demo reports is parsed from its actual output
(the parsers are here too), so the demo can never claim a result that did not happen.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STEPS = 300
DEMO_MARK = "Demo model"
REAL_MODEL_HINT = (
    "To work on your own task, use a real model: set `ANTHROPIC_API_KEY`, `OPENAI_API_KEY` or "
    "`HF_TOKEN` and restart, start with `-m ollama/<model>` for a local model, or switch now "
    "with `/model`."
)
PLAN_ITEMS = (
    ("inspect", "Inspect the environment (Python, CPU cores, free disk)"),
    ("script", "Write a pure-Python training script (tiny MLP, two-moons data)"),
    ("train", f"Train for {STEPS} SGD steps on CPU"),
    ("evaluate", "Evaluate on held-out points and check metrics.json"),
    ("report", "Report the results"),
)
ENV_COMMAND = (
    "python3 --version && python3 -c \"import os, platform, shutil; "
    "print('platform:', platform.platform()); print('cpu cores:', os.cpu_count()); "
    "print('free disk: %.1f GB' % (shutil.disk_usage('.').free / 1e9))\""
)

STEP_NAMES = {  # a call's kind (see ``agent.llm.demo.Call``) as said in a failure report
    "env": "inspecting the environment",
    "read_script": "reading the existing training script",
    "write": "writing the training script",
    "run": "running the training script",
    "metrics": "reading metrics.json",
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


# Standard library only, so it runs on any machine with python3 and no downloads.
TRAIN_SCRIPT = '''"""Train a tiny MLP to separate two interleaved half-moons, using only the standard library.

Written by the mlintern demo model. Minibatch SGD with momentum and a linearly decaying
learning rate; logs one Transformers-Trainer-style dict per logging step, evaluates on
held-out points and saves metrics.json in --output-dir.
"""

import argparse
import json
import math
import os
import random
import time


def make_moons(n, noise, rng):
    data = []
    for i in range(n):
        label = i % 2
        t = rng.uniform(0.0, math.pi)
        x, y = (math.cos(t), math.sin(t)) if label == 0 else (1 - math.cos(t), 0.5 - math.sin(t))
        data.append(((x + rng.gauss(0, noise), y + rng.gauss(0, noise)), label))
    return data


class TinyMLP:
    """2 inputs -> `hidden` tanh units -> 1 sigmoid output; parameters in one flat list."""

    def __init__(self, hidden, rng):
        self.hidden = hidden
        w1 = [rng.gauss(0, 1 / math.sqrt(2)) for _ in range(2 * hidden)]
        w2 = [rng.gauss(0, 1 / math.sqrt(hidden)) for _ in range(hidden)]
        self.params = w1 + [0.0] * hidden + w2 + [0.0]  # w1, b1, w2, b2
        self.velocity = [0.0] * len(self.params)

    def forward(self, x):
        p, h = self.params, self.hidden
        acts = [math.tanh(p[2 * j] * x[0] + p[2 * j + 1] * x[1] + p[2 * h + j]) for j in range(h)]
        z = sum(p[3 * h + j] * a for j, a in enumerate(acts)) + p[4 * h]
        return acts, 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))

    def train_step(self, batch, lr, momentum=0.9):
        p, h = self.params, self.hidden
        grad = [0.0] * len(p)
        loss = 0.0
        for x, y in batch:
            acts, prob = self.forward(x)
            loss += bce(prob, y)
            dz = prob - y
            grad[4 * h] += dz
            for j, a in enumerate(acts):
                grad[3 * h + j] += dz * a
                da = dz * p[3 * h + j] * (1 - a * a)
                grad[2 * j] += da * x[0]
                grad[2 * j + 1] += da * x[1]
                grad[2 * h + j] += da
        for i, g in enumerate(grad):
            self.velocity[i] = momentum * self.velocity[i] + g / len(batch)
            p[i] -= lr * self.velocity[i]
        return loss / len(batch)


def bce(prob, label):
    return -math.log(max(prob if label else 1 - prob, 1e-12))


def evaluate(model, data):
    loss = correct = 0
    for x, y in data:
        _, prob = model.forward(x)
        loss += bce(prob, y)
        correct += int((prob >= 0.5) == bool(y))
    return loss / len(data), correct / len(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.3)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--logging-steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-dir", default="demo_output")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    train, test = make_moons(800, 0.15, rng), make_moons(400, 0.15, rng)
    model = TinyMLP(args.hidden, rng)
    history, running, count, cursor = [], 0.0, 0, len(train)
    start = time.time()
    for step in range(1, args.steps + 1):
        if cursor + args.batch_size > len(train):
            rng.shuffle(train)
            cursor = 0
        batch, cursor = train[cursor:cursor + args.batch_size], cursor + args.batch_size
        lr = args.learning_rate * (1 - (step - 1) / args.steps)
        running, count = running + model.train_step(batch, lr), count + 1
        if step % args.logging_steps == 0 or step == args.steps:
            entry = {"loss": round(running / count, 4), "learning_rate": round(lr, 6),
                     "epoch": round(step * args.batch_size / len(train), 2), "step": step}
            print(entry, flush=True)
            history.append(entry)
            running, count = 0.0, 0
    runtime = time.time() - start
    print({"train_runtime": round(runtime, 3), "train_loss": history[-1]["loss"],
           "epoch": history[-1]["epoch"], "step": args.steps})
    eval_loss, eval_accuracy = evaluate(model, test)
    print({"eval_loss": round(eval_loss, 4), "eval_accuracy": round(eval_accuracy, 4),
           "epoch": history[-1]["epoch"], "step": args.steps}, flush=True)

    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "metrics.json")
    with open(path, "w") as f:
        json.dump({"steps": args.steps, "seed": args.seed, "train_runtime": round(runtime, 3),
                   "final_loss": history[-1]["loss"], "eval_loss": round(eval_loss, 4),
                   "eval_accuracy": round(eval_accuracy, 4), "log_history": history}, f, indent=1)
    print(f"metrics written to {path}")


if __name__ == "__main__":
    main()
'''


# --------------------------------------------------------------------------- paths and commands


def script_path(workspace: Path, first_request: str) -> Path:
    """One script per conversation (named after its first message), kept out of the way."""
    digest = hashlib.sha1(first_request.encode("utf-8", "replace")).hexdigest()[:8]
    return workspace / "mlintern_demo" / f"train_{digest}.py"


def output_dir(script: Path) -> Path:
    return script.with_name(f"{script.stem}_output")


def run_command(script: Path) -> str:
    return (f"python3 {shlex.quote(str(script))} --steps {STEPS} "
            f"--output-dir {shlex.quote(str(output_dir(script)))}")


# --------------------------------------------------------------------------- parsing outputs


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
    for match in re.finditer(r"\{[^{}]*\}", output or ""):
        try:
            entry = ast.literal_eval(match.group(0))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("loss"), (int, float)) and isinstance(entry.get("step"), int):
            losses.append((entry["step"], str(entry["loss"])))
        if isinstance(entry.get("eval_accuracy"), (int, float)):
            evals = entry
        if isinstance(entry.get("train_runtime"), (int, float)):
            runtime = entry["train_runtime"]
    if not losses or not evals:
        return None
    eval_loss = evals.get("eval_loss")
    return TrainingLog(losses, float(evals["eval_accuracy"]),
                       eval_loss if isinstance(eval_loss, (int, float)) else None, runtime)


def parse_metrics_file(read_output: str | None) -> dict[str, Any] | None:
    """metrics.json from a ``read`` result, which numbers every line like ``cat -n``."""
    lines = [re.sub(r"^\s*\d+[\t│|→] ?", "", line) for line in (read_output or "").splitlines()]
    text = "\n".join(lines)
    start, end = text.find("{"), text.rfind("}")
    try:
        data = json.loads(text[start:end + 1]) if 0 <= start < end else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


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


# --------------------------------------------------------------------------- prose


GREETING = (
    f"**{DEMO_MARK}** here (scripted, no API key needed). Send any message and I'll run my "
    "built-in task with the real tools: training a tiny MLP on synthetic data. " + REAL_MODEL_HINT
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
        f"{lead}train a tiny neural network (a 2-16-1 MLP in pure Python: no GPU, no downloads, "
        "a fraction of a second of CPU) to separate a synthetic two-moons dataset, then "
        "evaluate it on held-out points.\n\nFirst, the plan:"
    )


def script_text(env_output: str | None) -> str:
    facts = parse_environment(env_output)
    return (
        (f"{facts}: plenty for a small pure-Python model. " if facts else "")
        + "Next, the training script: a 2-16-1 MLP trained with minibatch SGD (momentum 0.9, "
        "linear learning-rate decay) on synthetic two-moons data, logging like the "
        "Transformers Trainer and saving metrics.json."
    )


def no_tools_text(missing: list[str], offered: set[str]) -> str:
    names = " and ".join(f"`{n}`" for n in missing)
    have = ", ".join(f"`{n}`" for n in sorted(offered)) or "none"
    plural = len(missing) > 1
    return (
        f"**{DEMO_MARK}** — scripted, no API key needed. It needs the {names} "
        f"tool{'s' if plural else ''} to write and run its training script, but this session "
        f"doesn't offer {'them' if plural else 'it'} (tools offered: {have}), so nothing was run. "
        + REAL_MODEL_HINT
    )


def metrics_note(log: TrainingLog, metrics_read: str | None) -> str:
    data = parse_metrics_file(metrics_read)
    saved = data.get("eval_accuracy") if data else None
    if not isinstance(saved, (int, float)):
        return "I couldn't parse metrics.json from the read output, so I'm reporting the console numbers."
    if round(float(saved), 4) != round(log.eval_accuracy, 4):
        return (f"metrics.json says eval accuracy {saved} but the console said "
                f"{log.eval_accuracy}; I'm flagging the mismatch and reporting the console numbers.")
    return f"metrics.json agrees with the console output (eval accuracy {saved})."


def _excerpt(text: str, limit: int = 1200) -> str:
    text = text.strip() or "(empty output)"
    if len(text) <= limit:
        return text
    return f"{text[:300]}\n…\n{text[-(limit - 300):]}"


def failure_text(
    what: str, tool: str, result: str | None, how: str, log: TrainingLog | None
) -> str:
    """The honest end of a run that went wrong: what broke, what came back, what to do."""
    done = ""
    if log is not None:
        done = (f"Training itself did finish (final loss {log.losses[-1][1]}, eval accuracy "
                f"{log.eval_accuracy}), but I can't confirm the rest. ")
    else:
        done = "No results table this time: nothing after this step ran. "
    return (
        f"## Demo stopped: {what} did not work\n\n"
        f"The `{tool}` call for {what} {how}, so I'm stopping here instead of pretending the run "
        "went fine. This is what came back:\n\n"
        f"```text\n{_excerpt(result or '(no result)')}\n```\n\n"
        f"{done}Say \"run again\" to retry the scripted demo. {REAL_MODEL_HINT}"
    )


def final_answer(log: TrainingLog, script: Path, env_output: str | None, note: str) -> str:
    env = parse_environment(env_output)
    first_step, first_loss = log.losses[0]
    rows = [
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
        "## Demo run: tiny MLP on two-moons\n\n"
        f"I trained a 2-16-1 MLP with minibatch SGD for {log.steps} steps on 800 synthetic "
        "two-moons points and evaluated it on 400 held-out points. Every number below was "
        "parsed from the real run in this session." + (f" {note}" if note else "") + "\n\n"
        f"| metric | value |\n|---|---|\n{table}\n\n"
        f"Script: `{script}`  \nMetrics: `{output_dir(script) / 'metrics.json'}`\n\n"
        f"Re-run it yourself:\n\n```bash\n{run_command(script)}\n```\n\n"
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
