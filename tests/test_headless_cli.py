"""The installed ``mlintern`` command in headless mode, as a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.protocol import parse_event
from tests.fakes import Call, HTTPError, Text, ToolCalls


def mlintern_cmd() -> list[str]:
    exe = shutil.which("mlintern", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "mlintern_tui.cli"]


def start(args: list[str], home: Path, env_extra: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k not in ("HF_TOKEN", "OPENAI_BASE_URL")}
    env.update({"MLINTERN_HOME": str(home), "LITELLM_OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1", "MLINTERN_DEMO_DELAY": "0"})
    env.update(env_extra or {})
    return subprocess.Popen(mlintern_cmd() + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd or home)


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def run(args: list[str], home: Path, env_extra: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return finish(start(args, home, env_extra, cwd))


def server_env(llm_server) -> dict[str, str]:
    return {"OPENAI_BASE_URL": llm_server.base_url, "OPENAI_API_KEY": "sk-test"}


def test_stream_json_prints_every_event_as_a_protocol_line(llm_server, mlintern_home):
    llm_server.script(ToolCalls([Call("s1", "bash", '{"command": "echo from-bash"}')]), Text("All **done**."))
    proc = run(["-p", "do it", "-m", "openai/scripted-model", "--output-format", "stream-json"], mlintern_home, server_env(llm_server))
    assert proc.returncode == 0, proc.stderr
    events = [parse_event(line) for line in proc.stdout.splitlines()]
    types = [e.type for e in events]
    assert types[0] == "ready" and types[-2:] == ["turn_complete", "shutdown"]
    for needed in ("assistant_chunk", "tool_call", "tool_output", "llm_call", "context_usage"):
        assert needed in types
    out = next(e for e in events if e.type == "tool_output")
    assert "from-bash" in out.output
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert proc.stderr == ""  # nothing leaks onto the terminal (litellm warnings, tracebacks)


def test_text_mode_answer_on_stdout_status_on_stderr(llm_server, mlintern_home):
    llm_server.script(Text("The answer is 42."))
    proc = run(["-p", "question", "-m", "openai/scripted-model"], mlintern_home, server_env(llm_server))
    assert proc.returncode == 0
    assert proc.stdout.strip() == "The answer is 42."
    assert "model: openai/scripted-model" in proc.stderr and "turn complete" in proc.stderr
    assert "unknown price" in proc.stderr  # no price for this model: said, not $0


def test_without_yolo_gated_calls_are_rejected_with_a_reason(llm_server, mlintern_home):
    (mlintern_home / "config.json").write_text(json.dumps({"approval_mode": "ask"}))
    llm_server.script(ToolCalls([Call("g1", "bash", '{"command": "touch should-not-exist"}')]), Text("Could not run it."))
    proc = run(["-p", "run", "-m", "openai/scripted-model", "--output-format", "json"], mlintern_home, server_env(llm_server))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["result"] == "Could not run it." and result["receipt"]["llm_calls"] == 2
    tool_msg = [m for m in llm_server.requests[1]["messages"] if m["role"] == "tool"][0]
    assert "headless without --yolo" in tool_msg["content"] and "NOT executed" in tool_msg["content"]
    assert not (mlintern_home / "should-not-exist").exists()

    llm_server.script(ToolCalls([Call("g2", "bash", '{"command": "touch made-it"}')]), Text("Ran it."))
    proc = run(["-p", "run", "-m", "openai/scripted-model", "--yolo"], mlintern_home, server_env(llm_server))
    assert proc.returncode == 0 and (mlintern_home / "made-it").exists()


def test_errors_exit_non_zero_with_one_clear_line(llm_server, mlintern_home):
    (mlintern_home / "config.json").write_text(json.dumps({"llm": {"max_attempts": 2, "backoff_base_s": 0.01}}))
    llm_server.script(HTTPError(500, "boom"), HTTPError(500, "boom"))
    # both at once: the missing key is found after litellm loads (~2.5 s of one core), the
    # other core runs the first
    (other_home := mlintern_home / "other-home").mkdir()  # its own: the two write nothing to one place
    no_key = start(["-p", "hi", "-m", "anthropic/claude-sonnet-4-5"], other_home)
    proc = run(["-p", "hi", "-m", "openai/scripted-model"], mlintern_home, server_env(llm_server))
    assert proc.returncode == 1
    assert "Error: The provider of openai/scripted-model had a server error (500). Gave up after 2 attempts." in proc.stderr
    assert "Traceback" not in proc.stderr

    proc = finish(no_key)
    assert proc.returncode == 1 and "set ANTHROPIC_API_KEY" in proc.stderr


def test_bad_config_and_bad_model_are_usage_errors(mlintern_home):
    (mlintern_home / "config.json").write_text("{ not json")
    proc = run(["-p", "hi"], mlintern_home)
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr and "Traceback" not in proc.stderr
    (mlintern_home / "config.json").unlink()
    proc = run(["-p", "hi", "-m", "no such model"], mlintern_home)
    assert proc.returncode == 2 and "invalid model id" in proc.stderr


def test_demo_model_runs_a_real_training_job_offline(mlintern_home, tmp_path):
    proc = run(["-p", "Fine-tune a small classifier", "--yolo", "--output-format", "json"], mlintern_home,
               {"MLINTERN_DEMO_STEPS": "200", "MLINTERN_DEMO_POLL_S": "0.5"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["model"] == "demo" and result["reason"] == "done"
    # the job ran in its own directory under the data dir and saved its metrics there
    metrics = list((mlintern_home / "jobs").rglob("metrics.json"))
    assert len(metrics) == 1
    saved = json.loads(metrics[0].read_text())
    assert saved["steps"] == 200
    assert f"| final training loss | {saved['final_loss']} |" in result["result"]
    assert f"({saved['eval_accuracy']})" in result["result"]
    assert result["receipt"]["llm_cost_usd"] == 0 and result["receipt"]["unknown_cost_calls"] == 0


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help(flag, mlintern_home):
    proc = run([flag], mlintern_home)
    assert proc.returncode == 0 and "mlintern" in proc.stdout


def test_sigterm_stops_running_tools_and_exits(llm_server, mlintern_home, tmp_path):
    import signal
    import time

    marker = tmp_path / "bash.pid"  # not in the data dir: a command naming it would ask (agent/protected.py)
    llm_server.script(ToolCalls([Call("t1", "bash", json.dumps({"command": f"echo $$ > {marker}; sleep 300"}))]), Text("x"))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"MLINTERN_HOME": str(mlintern_home), **server_env(llm_server)})
    proc = subprocess.Popen(mlintern_cmd() + ["-p", "go", "-m", "openai/scripted-model"], env=env, cwd=mlintern_home,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (marker.exists() and marker.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(marker.read_text())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 130 and "stopping running tools" in err
    time.sleep(0.3)
    try:
        with open(f"/proc/{pid}/stat") as fh:
            alive = fh.read().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, or going while it is read (ESRCH)
        alive = False
    assert not alive, "the bash child outlived mlintern after SIGTERM"


def test_a_job_launched_headless_streams_its_log_and_finishes(llm_server, mlintern_home):
    script = "import time\nfor s in range(1, 4):\n    print({'loss': 1.0 / s, 'step': s}, flush=True)\n    time.sleep(0.2)\nprint('final line of the job')"
    llm_server.script(
        ToolCalls([Call("j1", "hf_jobs", json.dumps({"operation": "run", "script": script, "timeout": "5m"}))]),
        Text("Launched; it is training."),
    )
    proc = run(["-p", "train", "-m", "openai/scripted-model", "--yolo", "--output-format", "stream-json"],
               mlintern_home, server_env(llm_server))
    assert proc.returncode == 0, proc.stderr
    events = [parse_event(line) for line in proc.stdout.splitlines()]
    lines = [line for e in events if e.type == "job_log" for line in e.lines]
    assert lines[-1] == "final line of the job"
    updates = [e for e in events if e.type == "job_update"]
    assert updates[0].status == "RUNNING" and updates[-1].status == "COMPLETED"
    out = next(e for e in events if e.type == "tool_output")
    assert "accepted on cpu-basic (local backend" in out.output and "First log lines" in out.output
    assert [e.type for e in events][-1] == "shutdown"

    # without --yolo a CPU job is not run (confirm_cpu_jobs is on by default)
    llm_server.script(ToolCalls([Call("j2", "hf_jobs", json.dumps({"operation": "run", "script": "print(1)"}))]),
                      Text("Needs approval."))
    proc = run(["-p", "train", "-m", "openai/scripted-model", "--output-format", "stream-json"],
               mlintern_home, server_env(llm_server))
    events = [parse_event(line) for line in proc.stdout.splitlines()]
    assert not [e for e in events if e.type == "job_update"]
    out = next(e for e in events if e.type == "tool_output")
    assert "NOT executed" in out.output and "CPU job on cpu-basic" in out.output


def test_json_output_counts_the_jobs_final_cost(llm_server, mlintern_home):
    """The receipt is emitted when the turn ends; the job ends later: json output's
    ``spent`` carries each job's final status and cost (local CPU: $0, not unknown)."""
    script = "import time\ntime.sleep(0.5)\nprint('done')"
    llm_server.script(
        ToolCalls([Call("j1", "hf_jobs", json.dumps({"operation": "run", "script": script, "timeout": "5m"}))]),
        Text("Launched."),
    )
    proc = run(["-p", "train", "-m", "openai/scripted-model", "--yolo", "--output-format", "json"],
               mlintern_home, server_env(llm_server))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    jobs = result["spent"]["jobs"]
    assert len(jobs) == 1 and list(jobs.values())[0] == {"flavor": "cpu-basic", "status": "COMPLETED", "cost_usd": 0.0}
    assert result["spent"]["compute_cost_usd"] == 0.0 and result["spent"]["unknown_compute_jobs"] == 0
    assert result["receipt"]["unknown_compute_jobs"] == 0


def test_headless_budget_decides_before_the_hub_is_contacted(llm_server, mlintern_home, hub):
    """On the real job path (HF Jobs, here the Hub emulator), where nothing else would stop
    a GPU job: without --yolo it is never submitted; with --yolo --budget 1 an a10g-large
    job for 2h is refused with the budget reason before the Hub hears of it, while a
    cpu-basic job that fits the budget (a non-zero estimate) is submitted and runs."""
    (mlintern_home / "config.json").write_text(json.dumps(
        # a known model price: the budget then knows all the session's spend
        {"model_prices": {"openai/scripted-model": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}}}))
    env = {**server_env(llm_server), "HF_TOKEN": "hf_test", "HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0",
           "HF_HOME": str(mlintern_home / "hf-home")}
    gpu = {"operation": "run", "script": "print(1)", "hardware_flavor": "a10g-large", "timeout": "2h"}

    def submitted() -> list:
        return [r for r in hub.requests if r.method == "POST" and r.path.startswith("/api/jobs/")]

    llm_server.script(ToolCalls([Call("g1", "hf_jobs", json.dumps(gpu))]), Text("Not run."))
    proc = run(["-p", "train", "-m", "openai/scripted-model", "--jobs-backend", "hf", "--output-format", "json"],
               mlintern_home, env)
    assert proc.returncode == 0, proc.stderr
    tool_msg = [m for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"][-1]
    assert "headless without --yolo" in tool_msg["content"] and "GPU job on a10g-large" in tool_msg["content"]
    assert submitted() == []

    llm_server.script(ToolCalls([Call("g2", "hf_jobs", json.dumps(gpu))]), Text("Over budget."))
    proc = run(["-p", "train", "-m", "openai/scripted-model", "--yolo", "--budget", "1", "--jobs-backend", "hf",
                "--output-format", "json"], mlintern_home, env)
    assert proc.returncode == 0, proc.stderr
    tool_msg = [m for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"][-1]
    assert "estimated $4.00 exceeds the $1.00 left" in tool_msg["content"] and "NOT executed" in tool_msg["content"]
    assert submitted() == [] and json.loads(proc.stdout)["receipt"]["budget_left_usd"] == 1.0

    # still running when the turn ends (at the 5th line, 1.25 s; the job ends at 2.25 s)
    hub.script_job(lines=[f"step {i}" for i in range(8)], line_delay=0.25)
    cheap = {"operation": "run", "script": "print('hello from the job')", "hardware_flavor": "cpu-basic", "timeout": "10m"}
    llm_server.script(ToolCalls([Call("c1", "hf_jobs", json.dumps(cheap))]), Text("Ran."))
    proc = run(["-p", "train", "-m", "openai/scripted-model", "--yolo", "--budget", "1", "--jobs-backend", "hf",
                "--output-format", "json", "--wait-jobs", "0"], mlintern_home, env)  # leave it running
    assert proc.returncode == 0, proc.stderr
    tool_msg = [m for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"][-1]
    assert "accepted on cpu-basic" in tool_msg["content"], tool_msg["content"]
    assert len(submitted()) == 1
    result = json.loads(proc.stdout)
    assert 1.0 - 0.01 <= result["receipt"]["budget_left_usd"] < 1.0  # its 10 minutes are held against the cap
    assert [j["flavor"] for j in result["spent"]["jobs"].values()] == ["cpu-basic"]


def test_headless_waits_for_its_hub_job_and_the_agent_reads_its_end(llm_server, mlintern_home, hub):
    """The model launches a job on HF Jobs (the Hub emulator) and says it is waiting: the
    process stays, the job's end wakes the agent in a new turn, and its answer (the job's
    last log line) is the run's final result. --wait-jobs 0 instead exits at once and says
    how to follow the job."""
    (mlintern_home / "config.json").write_text(json.dumps(
        {"model_prices": {"openai/scripted-model": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}}}))
    env = {**server_env(llm_server), "HF_TOKEN": "hf_test", "HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0",
           "HF_HOME": str(mlintern_home / "hf-home")}
    job = {"operation": "run", "script": "print('hi')", "hardware_flavor": "cpu-basic", "timeout": "10m"}
    # `run` returns once it has seen five lines (1.25 s; with fewer it waits 3 s): the turn ends
    # there and the job, three lines later (2.25 s), while the process waits for it
    hub.script_job(lines=[f"epoch {i} loss {1.0 / i:.2f}" for i in range(1, 8)] + ["eval accuracy 0.91"],
                   line_delay=0.25)

    def read_the_news(body: dict):
        note = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        assert note.startswith("[JOB UPDATE]"), note
        tail = note.split("Last log lines:\n", 1)[1].split("\nFull log:", 1)[0]
        return Text("The job says: " + tail.splitlines()[-1])

    llm_server.script(ToolCalls([Call("j1", "hf_jobs", json.dumps(job))]), Text("Launched; waiting for it."),
                      read_the_news)
    proc = run(["-p", "train", "-m", "openai/scripted-model", "--yolo", "--jobs-backend", "hf", "--output-format",
                "json"], mlintern_home, env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["result"] == "The job says: eval accuracy 0.91", proc.stderr
    assert "waiting for 1 running job(s) until they end" in proc.stderr
    assert list(result["spent"]["jobs"].values())[0]["status"] == "COMPLETED"

    # runs until cancelled; five lines so that `run` returns at once (with fewer it waits 3 s for them)
    hub.script_job(lines=[f"step {i}" for i in range(5)], final_stage=None)
    llm_server.script(ToolCalls([Call("j2", "hf_jobs", json.dumps(job))]), Text("Launched."))
    proc = run(["-p", "train", "-m", "openai/scripted-model", "--yolo", "--jobs-backend", "hf", "--wait-jobs", "0"],
               mlintern_home, env)
    assert proc.returncode == 0, proc.stderr
    [job_id] = [j for j in hub.job_ids() if hub.job(j)["status"]["stage"] == "RUNNING"]
    assert f"`hf jobs logs {job_id}`" in proc.stderr and "mlintern --resume" in proc.stderr
    hub.end_job(job_id)
