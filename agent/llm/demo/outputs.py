"""Reading what the demo's tool calls and job returned: the facts it may report.

Every number the demo states is parsed here from real output (the environment check, the
``hf_jobs`` results, the job's Trainer-style log, the job monitor's ``[JOB UPDATE]`` note),
so the demo can never claim a result that did not happen.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any


def dict_literals(text: str | None) -> list[dict[str, Any]]:
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


def is_number(value: Any) -> bool:
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
    for entry in dict_literals(output):
        if is_number(entry.get("loss")) and isinstance(entry.get("step"), int):
            losses.append((entry["step"], str(entry["loss"])))
        if is_number(entry.get("eval_accuracy")):
            evals = entry
        if is_number(entry.get("train_runtime")):
            runtime = entry["train_runtime"]
    if not losses or not evals:
        return None
    eval_loss = evals.get("eval_loss")
    return TrainingLog(losses, float(evals["eval_accuracy"]), eval_loss if is_number(eval_loss) else None, runtime)


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
