"""The experiment board: runs built from real local jobs (arguments, script configs, printed
config dumps, metrics parsed from the log), kept with the session and listed across sessions of
the project; the ``experiments`` tool's list, compare and best; CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from types import SimpleNamespace

from agent.config import Config, LLMSettings
from agent.experiments import _args_params, _printed_params, _script_params, best, build_run, compare, to_csv
from agent.jobs.base import JobInfo, JobSpec
from agent.protocol import ListRuns, Shutdown, UserInput
from tests.engine_support import collect_until, make_session, of_type
from tests.fakes import Call, Text, ToolCalls

TRAIN = '''
import sys
print("TrainingArguments(")
print("per_device_train_batch_size=8,")
print("lr_scheduler_type=cosine,")
print(")")
lr = float(sys.argv[sys.argv.index("--lr") + 1])
for step in range(1, 6):
    loss = 2.0 / (1 + step * lr * 1e4)
    print({"loss": round(loss, 4), "step": step * 10})
print({"eval_loss": round(1.5 / (1 + lr * 5e4), 4), "eval_accuracy": round(min(0.99, lr * 2e4), 4), "step": 50})
'''


def test_parameters_come_from_arguments_scripts_and_printed_dumps():
    assert _args_params(["train.py", "--lr", "2e-5", "--epochs=3", "--bf16", "--model-name", "org/m"]) == \
        {"lr": "2e-5", "epochs": "3", "bf16": "true", "model_name": "org/m"}
    script = ("from trl import SFTConfig\nargs = SFTConfig(learning_rate=2e-5, num_train_epochs=3, "
              "output_dir='out', report_to=['none'], gradient_checkpointing=True, seed=SEED)\n")
    assert _script_params(script) == {"learning_rate": "2e-05", "num_train_epochs": "3", "output_dir": "out",
                                      "report_to": "none", "gradient_checkpointing": "True"}
    assert _script_params("def broken(:") == {}
    assert _printed_params(["TrainingArguments(", "learning_rate=2e-05,", "seed=42,", "random=1", "x" * 300]) == \
        {"learning_rate": "2e-05", "seed": "42"}


def test_a_run_from_a_job_and_its_log(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("\n".join([
        "learning_rate=2e-05,",
        "{'loss': 1.9, 'grad_norm': 3.1, 'learning_rate': 2e-05, 'epoch': 0.1, 'step': 10}",
        "{'loss': 1.2, 'step': 20}",
        "{'eval_loss': 1.4, 'eval_accuracy': 0.61, 'epoch': 1.0, 'step': 20}",
        "{'loss': 1.3, 'step': 30}",
        "{'eval_loss': 1.1, 'eval_accuracy': 0.7, 'epoch': 2.0, 'step': 30}",
    ]) + "\n")
    spec = JobSpec(script="from datasets import load_dataset\nds = load_dataset('trl-lib/Capybara')\n"
                          "model = AutoModelForCausalLM.from_pretrained('Qwen/Qwen2.5-0.5B')\n",
                   script_args=("--hub_model_id", "ada/qwen-sft", "--epochs", "2"), flavor="a10g-small")
    job = SimpleNamespace(info=JobInfo(id="j1", backend="hf", stage="COMPLETED", flavor="a10g-small",
                                       started_at=100.0, finished_at=400.0),
                          spec=spec, log_path=log, cost_usd=0.08, turn=2)
    run = build_run(job, "s1", "/proj")
    assert (run.model_id, run.dataset_id, run.output_repo) == ("Qwen/Qwen2.5-0.5B", "trl-lib/Capybara", "ada/qwen-sft")
    assert run.hyperparameters["epochs"] == "2" and run.hyperparameters["learning_rate"] == "2e-05"
    assert run.metrics["final_loss"] == 1.3 and run.metrics["best_loss"] == 1.2
    assert run.metrics["best_eval_loss"] == 1.1 and run.metrics["eval_accuracy"] == 0.7
    assert run.duration_s == 300.0 and run.cost_usd == 0.08 and "python script" in run.command
    other = run.model_copy(update={"job_id": "j2", "metrics": {"best_eval_loss": 0.9, "eval_accuracy": 0.8},
                                   "hyperparameters": {**run.hyperparameters, "epochs": "3"}})
    table = compare([run, other])
    assert "| epochs | 2 | 3 |" in table and "learning_rate=2e-05" in table  # differing rows, then the rest
    assert best([run, other], "best_eval_loss").job_id == "j2" and best([run, other], "eval_accuracy").job_id == "j2"
    rows = list(csv.DictReader(io.StringIO(to_csv([run, other]))))
    assert [r["job_id"] for r in rows] == ["j1", "j2"] and rows[1]["epochs"] == "3"


async def test_three_local_jobs_make_a_board_the_agent_and_a_later_session_read(llm_server, monkeypatch, tmp_path):
    config = Config(llm=LLMSettings(max_attempts=1),
                    model_prices={"openai/scripted-model": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}})
    s = make_session(llm_server, monkeypatch, tmp_path, config=config, jobs_backend="local", approval_mode="yolo")
    s.jobs.first_lines_wait_s = 0.1
    calls = [Call(f"j{i}", "hf_jobs", json.dumps({"operation": "run", "script": TRAIN, "script_args": ["--lr", lr],
                                                   "hardware_flavor": "cpu-basic", "timeout": "2m"}))
             for i, lr in enumerate(("1e-5", "3e-5", "5e-5"))]
    llm_server.script(ToolCalls(calls), Text("Launched three."))
    sub = s.subscribe("t")
    s.start()
    s.submit(UserInput(text="sweep the learning rate"))
    events = await collect_until(sub, timeout=60)
    records = of_type(events, "run_record")
    while len(records) < 3:
        records += of_type(await collect_until(sub, stop={"run_record"}, timeout=60), "run_record")
    s.submit(ListRuns())
    board = (await collect_until(sub, stop={"run_list"}, timeout=30))[-1]
    assert len(board.runs) == 3 and {r.hyperparameters["lr"] for r in board.runs} == {"1e-5", "3e-5", "5e-5"}
    for run in board.runs:
        assert run.status == "COMPLETED" and run.metrics["final_loss"] < run.metrics.get("best_loss", 99) + 1e-9
        assert run.hyperparameters["per_device_train_batch_size"] == "8" and "eval_accuracy" in run.metrics
    ids = sorted(r.job_id for r in board.runs)
    llm_server.script(ToolCalls([Call("e1", "experiments", json.dumps({"operation": "best", "metric": "eval_accuracy"})),
                                 Call("e2", "experiments", json.dumps({"operation": "compare", "job_ids": ids[:2]})),
                                 Call("e3", "experiments", json.dumps({"operation": "list"}))]), Text("Read."))
    s.submit(UserInput(text="which was best?"))
    outs = {e.tool_call_id: e.output for e in of_type(await collect_until(sub, timeout=60), "tool_output")}
    top = max(board.runs, key=lambda r: r.metrics["eval_accuracy"])
    assert outs["e1"].startswith(f"Best by eval_accuracy: {top.job_id}") and top.hyperparameters["lr"] == "5e-5"
    assert "| lr |" in outs["e2"] and outs["e3"].startswith("3 run(s):")
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 20)
    # a later session of the same project sees the runs
    again = make_session(llm_server, monkeypatch, tmp_path, config=config, jobs_backend="local")
    sub2 = again.subscribe("t")
    again.start()
    await asyncio.sleep(0.3)  # its store opens after "ready"
    again.submit(ListRuns())
    later = (await collect_until(sub2, stop={"run_list"}, timeout=30))[-1]
    assert sorted(r.job_id for r in later.runs) == ids
    again.submit(Shutdown())
    await asyncio.wait_for(again._runner, 20)
