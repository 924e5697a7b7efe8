"""A real ``mlintern`` process killed with SIGKILL, then started again with ``--continue``:
finished turns are intact, a turn cut off mid-way comes back repaired, and a job that ran on
(the Hub emulator's) is reattached with its whole log, in order, once. Headless and in a
real terminal (tmux)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from agent.protocol import parse_event
from tests.fakes import Call, Text, ToolCalls
from tests.test_headless_cli import mlintern_cmd, run, server_env

PRICES = {"model_prices": {"openai/scripted-model": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}}}


def hub_env(llm_server, hub, home: Path) -> dict[str, str]:
    return {**server_env(llm_server), "HF_TOKEN": "hf_test", "HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0",
            "HF_HOME": str(home / "hf-home")}


def spawn(args: list[str], home: Path, env_extra: dict[str, str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k not in ("HF_TOKEN", "OPENAI_BASE_URL")}
    env.update({"MLINTERN_HOME": str(home), "LITELLM_OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1"})
    env.update(env_extra)
    return subprocess.Popen(mlintern_cmd() + args, env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def read_events_until(proc: subprocess.Popen, done, timeout: float = 60) -> list:
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        events.append(parse_event(line))
        if done(events):
            return events
    raise AssertionError(f"never saw what was waited for; events: {[e.type for e in events]}")


def user_notes(body: dict) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


def test_sigkill_mid_job_then_continue_reattaches_the_job_with_its_whole_log(llm_server, mlintern_home, hub):
    (mlintern_home / "config.json").write_text(json.dumps(PRICES))
    env = hub_env(llm_server, hub, mlintern_home)
    lines = [f"epoch {i} loss {1.0 / i:.3f}" for i in range(1, 11)]
    hub.script_job(lines=lines, line_delay=0.25)  # the turn ends at the 5th line, the job at the 11th delay
    job = {"operation": "run", "script": "print(1)", "hardware_flavor": "t4-small", "timeout": "1h"}
    llm_server.script(ToolCalls([Call("j1", "hf_jobs", json.dumps(job))]), Text("Launched; waiting for it."))
    proc = spawn(["-p", "train", "-m", "openai/scripted-model", "--yolo", "--jobs-backend", "hf",
                  "--output-format", "stream-json"], mlintern_home, env)
    try:
        # the turn is over and the process waits for the job; some of its lines are in
        events = read_events_until(proc, lambda ev: any(e.type == "turn_complete" for e in ev)
                                   and sum(len(e.lines) for e in ev if e.type == "job_log") >= 3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    seen = [line for e in events if e.type == "job_log" for line in e.lines]
    assert seen == lines[:len(seen)] and len(seen) < len(lines)
    [job_id] = hub.job_ids()
    while hub.job(job_id)["status"]["stage"] != "COMPLETED":  # it ends while nothing runs
        time.sleep(0.1)

    def answer(body: dict):
        # the note comes in the prompt's turn or in a turn of its own, whichever the job's catch-up
        # finishes before (next to a prompt it may share the prompt's message)
        news = [n for n in user_notes(body) if "[JOB UPDATE]" in n]
        return Text(f"The job ended: {lines[-1]}" if news and lines[-1] in news[-1] else "No news yet.")

    llm_server.script(answer, answer)
    proc2 = run(["-p", "how did it go?", "-m", "openai/scripted-model", "--yolo", "--jobs-backend", "hf",
                 "--continue", "--output-format", "json"], mlintern_home, env)
    assert proc2.returncode == 0, proc2.stderr
    result = json.loads(proc2.stdout)
    assert result["result"] == f"The job ended: {lines[-1]}", [user_notes(r)[-1] for r in llm_server.requests[2:]]
    first_request = llm_server.requests[2]["messages"]  # the resumed conversation as the model got it
    roles = [(m["role"], m.get("content")) for m in first_request if m["role"] != "system"]
    assert roles[0] == ("user", "train") and ("assistant", "Launched; waiting for it.") in roles
    [log] = list((mlintern_home / "jobs").glob(f"hf-{job_id}.log"))
    assert log.read_text().splitlines() == lines  # every line, in order, once
    assert list(result["spent"]["jobs"]) == [job_id]


def test_sigkill_mid_turn_then_continue_repairs_the_cut_off_call(llm_server, mlintern_home):
    (mlintern_home / "config.json").write_text(json.dumps(PRICES))
    env = server_env(llm_server)
    llm_server.script(ToolCalls([Call("b1", "bash", json.dumps({"command": "echo before"}))]),
                      ToolCalls([Call("b2", "bash", json.dumps({"command": "sleep 4; echo never"}))]))
    proc = spawn(["-p", "two steps", "-m", "openai/scripted-model", "--yolo", "--output-format", "stream-json"],
                 mlintern_home, env)
    try:
        read_events_until(proc, lambda ev: any(e.type == "tool_state" and e.tool_call_id == "b2"
                                               and e.state == "running" for e in ev))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()

    def answer(body: dict):
        results = {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}
        return Text(f"b1={results.get('b1', '?').strip()} | b2={results.get('b2', '?')[:40]}")

    llm_server.script(answer)
    proc2 = run(["-p", "go on", "-m", "openai/scripted-model", "--yolo", "--continue", "--output-format", "json"],
                mlintern_home, env)
    assert proc2.returncode == 0, proc2.stderr
    result = json.loads(proc2.stdout)["result"]
    assert result.startswith("b1=") and "before" in result  # the finished call kept its real result
    assert "b2=Tool was not executed" in result  # the cut-off one repaired, not left dangling
    sent = llm_server.requests[-1]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["two steps", "go on"]


TMUX = shutil.which("tmux")


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_sigkill_the_app_in_tmux_then_continue_shows_the_conversation_and_what_happened(llm_server, mlintern_home,
                                                                                        tmp_path):
    from tests.test_tmux_smoke import alive, capture, send, wait_screen

    (mlintern_home / "config.json").write_text(json.dumps(PRICES))
    # five lines at once: hf_jobs run returns when it has seen five first lines (with fewer it waits
    # its whole 3 s); the job then keeps running until the app is killed
    script = ("import time\nprint('job started', flush=True)\nfor i in range(4):\n    print(f'setup {i}', flush=True)\n"
              "time.sleep(8)\nprint('job done', flush=True)")
    llm_server.script(
        ToolCalls([Call("j1", "hf_jobs", json.dumps({"operation": "run", "script": script, "timeout": "5m"}))]),
        Text("Launched the kill-test job."))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k not in ("HF_TOKEN",)}
    env.update({"MLINTERN_HOME": str(mlintern_home), "TERM": "xterm-256color", "HF_HUB_OFFLINE": "1",
                **server_env(llm_server)})
    exe = Path(mlintern_cmd()[0])
    work = tmp_path / "proj"
    work.mkdir()
    names = []

    def start(extra: str) -> str:
        name = f"mlintern-kill-{uuid.uuid4().hex[:8]}"
        names.append(name)
        command = f"cd {work} && exec {exe} -m openai/scripted-model --yolo --jobs-backend local {extra}"
        subprocess.run([TMUX, "-L", name, "new-session", "-d", "-s", name, "-x", "120", "-y", "36", command],
                       env=env, check=True)
        return name

    try:
        first = start("")
        wait_screen(first, lambda s: "scripted-model" in s and "(loading)" not in s, 60, "the model to be ready")
        send(first, "Start the kill test", literal=True)
        send(first, "Enter")
        wait_screen(first, lambda s: "Launched the kill-test job." in s and "working…" not in s, 60, "the answer")
        pid = int(subprocess.run([TMUX, "-L", first, "list-panes", "-t", first, "-F", "#{pane_pid}"],
                                 capture_output=True, text=True).stdout.split()[0])
        os.kill(pid, signal.SIGKILL)  # the job still runs: it dies with the app (its child)
        deadline = time.monotonic() + 10
        while alive(first) and time.monotonic() < deadline:
            time.sleep(0.1)

        second = start("--continue")
        screen = wait_screen(second, lambda s: "While you were away" in s, 60, "the away card")
        assert "Start the kill test" in screen and "Launched the kill-test job." in screen
        assert "Resumed" in screen and "stopped when the app" in capture(second).replace("\n", " ")
        send(second, "C-q")
    finally:
        for name in names:
            if alive(name):
                subprocess.run([TMUX, "-L", name, "kill-server"], capture_output=True)
