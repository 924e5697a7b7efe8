"""Every training job the agent launches is a run on the experiment board: what ran (script or
command, hardware), on what (model and dataset ids), with which hyper-parameters (the
command line's ``--key value`` arguments, the keyword literals of ``TrainingArguments`` /
``SFTConfig``-style calls in the script, and ``key=value`` lines of config dumps the job
prints), what it reached (final and best train loss, best eval loss, the last eval metrics, all
parsed from its log), how long it took, what it cost, and where it pushed its output.

A run is recorded when its job ends, as a ``run_record`` event, so it is kept with the session
and listed for every session of the same project. Extraction never raises.
"""

from __future__ import annotations

import ast
import math
import re
import shlex
from pathlib import Path
from typing import Any, Iterable

from agent.protocol import ExperimentRun

#: names that mark a hyper-parameter in a printed config dump
KNOWN_PARAMS = frozenset({
    "learning_rate", "lr", "num_train_epochs", "epochs", "max_steps", "per_device_train_batch_size", "batch_size",
    "train_batch_size", "gradient_accumulation_steps", "weight_decay", "warmup_ratio", "warmup_steps",
    "lr_scheduler_type", "max_seq_length", "max_length", "seed", "lora_r", "r", "lora_alpha", "lora_dropout",
    "beta", "optim", "bf16", "fp16", "gradient_checkpointing", "eval_steps", "save_steps", "logging_steps",
    "packing", "num_generations", "temperature", "model_name_or_path", "dataset_name", "output_dir",
    "hub_model_id", "push_to_hub",
})
_CONFIG_CALLS = re.compile(r"(Arguments|Config)$")
_MODEL_ARGS = ("model_name_or_path", "model", "model_id", "base_model", "model_name")
_DATASET_ARGS = ("dataset_name", "dataset", "dataset_id", "data", "train_dataset")
_REPO = r"[A-Za-z0-9][\w.-]*/[\w.-]+"
_FROM_PRETRAINED = re.compile(rf"from_pretrained\(\s*['\"]({_REPO})['\"]")
_LOAD_DATASET = re.compile(rf"load_dataset\(\s*['\"]({_REPO})['\"]")
_MODEL_STRING = re.compile(rf"\bmodel(?:_name(?:_or_path)?|_id)?\s*=\s*['\"]({_REPO})['\"]")
_PRINTED_PARAM = re.compile(r"^\s*['\"]?([a-z_][a-z0-9_]*)['\"]?\s*[=:]\s*['\"]?([^,'\"\s][^,'\"]*?)['\"]?\s*,?\s*$")
MAX_LOG_LINES = 400_000


def _args_params(argv: Iterable[str]) -> dict[str, str]:
    """``--lr 2e-5 --epochs=3 --bf16`` -> {"lr": "2e-5", "epochs": "3", "bf16": "true"}."""
    out: dict[str, str] = {}
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if item.startswith("--") and len(item) > 2:
            key, eq, value = item[2:].partition("=")
            key = key.replace("-", "_")
            if eq:
                out[key] = value
            elif i + 1 < len(items) and not items[i + 1].startswith("--"):
                out[key] = items[i + 1]
                i += 1
            else:
                out[key] = "true"
        i += 1
    return out


def _literal(node: ast.AST) -> str | None:
    try:
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return str(value)
    if isinstance(value, (list, tuple)) and len(value) <= 16:
        return ",".join(str(v) for v in value)
    return None


def _script_params(source: str) -> dict[str, str]:
    """Keyword literals of ``…Arguments(...)`` / ``…Config(...)`` calls in a Python script."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if not _CONFIG_CALLS.search(name):
            continue
        for kw in node.keywords:
            if kw.arg:
                value = _literal(kw.value)
                if value is not None:
                    out.setdefault(kw.arg, value)
    return out


def _printed_params(lines: Iterable[str]) -> dict[str, str]:
    """``learning_rate=2e-05,`` lines of a printed TrainingArguments / config dump."""
    out: dict[str, str] = {}
    for line in lines:
        if len(line) > 200:
            continue
        m = _PRINTED_PARAM.match(line)
        if m and m.group(1) in KNOWN_PARAMS:
            out.setdefault(m.group(1), m.group(2).strip())
    return out


def _first(params: dict[str, str], names: Iterable[str]) -> str | None:
    for name in names:
        value = params.get(name)
        if value and re.fullmatch(_REPO, value):
            return value
    return None


def _metrics(lines: Iterable[str]) -> dict[str, float]:
    from agent.jobs.loss import LossTracker

    tracker = LossTracker()
    for n, line in enumerate(lines):
        if n >= MAX_LOG_LINES:
            break
        tracker.feed(line)
    out: dict[str, float] = {}
    train = [loss for _, loss in tracker.series("train") if math.isfinite(loss)]
    evals = [loss for _, loss in tracker.series("eval") if math.isfinite(loss)]
    if train:
        out["final_loss"], out["best_loss"] = train[-1], min(train)
    if evals:
        out["final_eval_loss"], out["best_eval_loss"] = evals[-1], min(evals)
    last_eval = tracker.latest_eval
    if last_eval is not None:
        for key, value in last_eval.extra.items():
            if key.startswith(("eval_", "val_", "test_")) and math.isfinite(value):
                out[key] = value
    if tracker.final is not None and math.isfinite(tracker.final.loss):
        out["train_loss_reported"] = tracker.final.loss
    if tracker.latest is not None:
        out["steps"] = float(tracker.latest.step)
    return out


def _read_lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(64_000_000).splitlines()
    except OSError:
        return []


def build_run(job: Any, session_id: str, cwd: str) -> ExperimentRun:
    """The run of a watched job (``agent.jobs.monitor.WatchedJob``), its spec if known, its log.
    Blocking (reads the log): call it in a thread."""
    info = job.info
    spec = getattr(job, "spec", None)
    lines = _read_lines(getattr(job, "log_path", None))
    params: dict[str, str] = {}
    command = ""
    script = ""
    if spec is not None:
        if spec.command:
            params.update(_args_params(spec.command))
            command = shlex.join(spec.command)
        else:
            params.update(_args_params(spec.script_args))
            script = spec.script or ""
            first = next((ln for ln in script.splitlines() if ln.strip() and not ln.startswith("#")), "")
            command = (spec.script_url or f"python script ({len(script.splitlines())} lines: {first.strip()[:60]})")
            if spec.script_args:
                command += " " + shlex.join(spec.script_args)
        for key, value in _script_params(script).items():
            params.setdefault(key, value)
    for key, value in _printed_params(lines[:5000]).items():
        params.setdefault(key, value)
    model = _first(params, _MODEL_ARGS)
    dataset = _first(params, _DATASET_ARGS)
    if model is None:
        m = _FROM_PRETRAINED.search(script) or _MODEL_STRING.search(script)
        model = m.group(1) if m else None
    if dataset is None:
        m = _LOAD_DATASET.search(script)
        dataset = m.group(1) if m else None
    output = params.get("hub_model_id") or (params.get("output_dir") if params.get("push_to_hub") in ("True", "true") else None)
    started, finished = info.started_at or info.created_at, info.finished_at
    return ExperimentRun(
        job_id=info.id, session_id=session_id, cwd=cwd, status=info.stage, backend=info.backend, flavor=info.flavor,
        started_at=started, finished_at=finished,
        duration_s=(finished - started) if started and finished else None,
        cost_usd=getattr(job, "cost_usd", None), command=command[:500], model_id=model, dataset_id=dataset,
        hyperparameters={k: v[:200] for k, v in list(params.items())[:60]}, metrics=_metrics(lines),
        output_repo=output, log_path=str(job.log_path) if getattr(job, "log_path", None) else None,
        turn=getattr(job, "turn", 0),
    )


# --------------------------------------------------------------------------- reading runs


def compare(runs: list[ExperimentRun]) -> str:
    """Runs side by side: the parameters that differ, then every metric."""
    if not runs:
        return "No runs to compare."
    keys = sorted({k for r in runs for k in r.hyperparameters})
    differing = [k for k in keys if len({r.hyperparameters.get(k) for r in runs}) > 1]
    same = [k for k in keys if k not in differing]
    metrics = sorted({k for r in runs for k in r.metrics})
    rows = [["", *[r.job_id for r in runs]],
            ["status", *[r.status for r in runs]],
            ["model", *[r.model_id or "?" for r in runs]],
            ["dataset", *[r.dataset_id or "?" for r in runs]],
            ["hardware", *[r.flavor for r in runs]],
            ["duration", *[f"{r.duration_s:.0f} s" if r.duration_s is not None else "?" for r in runs]],
            ["cost", *[f"${r.cost_usd:.2f}" if r.cost_usd is not None else "?" for r in runs]]]
    rows += [[k, *[r.hyperparameters.get(k, "–") for r in runs]] for k in differing]
    rows += [[k, *[f"{r.metrics[k]:.4g}" if k in r.metrics else "–" for r in runs]] for k in metrics]
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    if same:
        lines.append("")
        lines.append("Same in every run: " + ", ".join(f"{k}={runs[0].hyperparameters[k]}" for k in same[:20]))
    return "\n".join(lines)


def best(runs: list[ExperimentRun], metric: str, lowest: bool | None = None) -> ExperimentRun | None:
    """The run with the best value of ``metric`` (losses: lowest; anything else: highest)."""
    scored = [r for r in runs if metric in r.metrics]
    if not scored:
        return None
    low = ("loss" in metric or "perplexity" in metric) if lowest is None else lowest
    return (min if low else max)(scored, key=lambda r: r.metrics[metric])


def to_csv(runs: list[ExperimentRun]) -> str:
    import csv
    import io

    params = sorted({k for r in runs for k in r.hyperparameters})
    metrics = sorted({k for r in runs for k in r.metrics})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["job_id", "status", "backend", "flavor", "model", "dataset", "duration_s", "cost_usd",
                     "output_repo", *params, *metrics])
    for r in runs:
        writer.writerow([r.job_id, r.status, r.backend, r.flavor, r.model_id or "", r.dataset_id or "",
                         "" if r.duration_s is None else f"{r.duration_s:.1f}",
                         "" if r.cost_usd is None else f"{r.cost_usd:.4f}", r.output_repo or "",
                         *[r.hyperparameters.get(k, "") for k in params],
                         *["" if k not in r.metrics else repr(r.metrics[k]) for k in metrics]])
    return buf.getvalue()
