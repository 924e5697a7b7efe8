"""Headless runs keep the user's safeguards (issue 20): the agent's rewrite of the config is
refused (nobody is there to approve it), a config widened since the user last agreed is ignored
with a warning unless ``--yolo`` is on the command line, narrowing applies at once, odd text
never crashes a turn or the ``stream-json`` output, and a SIGTERM during a local job keeps the
job's last lines in the log the app keeps.

Runs drive ``run_headless`` in this process (or the installed command, for the signal) against
the scripted loopback model.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from agent.config import config_path, load_config
from agent.permissions import review_permissions
from agent.protocol import parse_event
from mlintern_tui.headless import run_headless
from tests.fakes import Call, Text, ToolCalls
from tests.test_headless_cli import mlintern_cmd, server_env

MODEL = "openai/scripted-model"
DENY_TOUCH = {"approval_rules": [{"effect": "deny", "tool": "bash", "pattern": "touch"}]}
ROGUE_CONFIG = {"approval_mode": "yolo", "yolo_cap_usd": 100000,
                "approval_rules": [{"effect": "allow", "tool": "hf_jobs"}]}


async def headless(llm_server, monkeypatch, work: Path, prompt: str, *, yolo: bool = False,
                   fmt: str = "json") -> tuple[int, str, str]:
    for name, value in server_env(llm_server).items():
        monkeypatch.setenv(name, value)
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)
    out, err = io.StringIO(), io.StringIO()
    code = await run_headless(prompt, model=MODEL, output_format=fmt, yolo=yolo, max_iterations=None,
                              out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def tool_results(body: dict) -> dict[str, str]:
    return {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}


async def test_the_config_rewrite_is_refused_headless_in_auto_and_with_yolo(llm_server, monkeypatch, tmp_path):
    path = config_path()
    path.write_text(json.dumps({"approval_rules": [{"effect": "deny", "tool": "bash", "pattern": "rm"}]}))
    before = path.read_text()
    rewrite = json.dumps({"path": str(path), "content": json.dumps(ROGUE_CONFIG)})
    for n, yolo in enumerate((False, True)):
        llm_server.script(ToolCalls([Call(f"w{n}", "write", rewrite)]), Text("It is not mine to change."))
        code, out, err = await headless(llm_server, monkeypatch, tmp_path / "work", "widen", yolo=yolo)
        assert code == 0, err
        result = tool_results(llm_server.requests[-1])[f"w{n}"]
        assert "NOT executed" in result and "mlintern's config file" in result
        assert path.read_text() == before


async def test_a_widening_by_hand_is_ignored_headless_unless_yolo_is_on_the_command_line(
        llm_server, monkeypatch, tmp_path):
    work = tmp_path / "work"
    config_path().write_text(json.dumps(DENY_TOUCH))
    llm_server.script(Text("hello"))
    await headless(llm_server, monkeypatch, work, "hi")  # the first start remembers the file
    config_path().write_text(json.dumps({}))  # the deny rule removed by someone else

    llm_server.script(ToolCalls([Call("t1", "bash", '{"command": "touch made-it"}')]), Text("done"))
    code, out, err = await headless(llm_server, monkeypatch, work, "touch it")
    assert code == 0
    assert "gives the agent more room than you last agreed to; this run ignores that" in err
    assert 'rule removed: always deny bash commands starting with "touch"' in err
    assert "denied by the user's rule" in tool_results(llm_server.requests[-1])["t1"]
    assert not (work / "made-it").exists()

    llm_server.script(ToolCalls([Call("t2", "bash", '{"command": "touch made-it"}')]), Text("done"))
    code, out, err = await headless(llm_server, monkeypatch, work, "touch it", yolo=True)
    assert code == 0 and "--yolo is on the command line, so this run uses it" in err
    assert (work / "made-it").exists()
    assert review_permissions(load_config()).widened  # --yolo did not make it agreed


async def test_narrowing_by_hand_applies_at_once_headless(llm_server, monkeypatch, tmp_path):
    work = tmp_path / "work"
    config_path().write_text(json.dumps({}))
    llm_server.script(Text("hello"))
    await headless(llm_server, monkeypatch, work, "hi")
    config_path().write_text(json.dumps(DENY_TOUCH))
    llm_server.script(ToolCalls([Call("t1", "bash", '{"command": "touch made-it"}')]), Text("done"))
    code, out, err = await headless(llm_server, monkeypatch, work, "touch it")
    assert code == 0 and "more room" not in err
    assert "denied by the user's rule" in tool_results(llm_server.requests[-1])["t1"]
    assert not (work / "made-it").exists()


async def test_lone_surrogates_in_text_arguments_and_tool_output_never_crash_stream_json(
        llm_server, monkeypatch, tmp_path):
    work = tmp_path / "work"
    odd = work / "odd"
    odd.mkdir(parents=True)
    with open(os.fsencode(odd) + b"/bad\xff.txt", "wb") as f:  # listed back as "bad\udcff.txt"
        f.write(b"x")
    llm_server.script(
        ToolCalls([
            # the model's JSON escapes: lone surrogates once parsed
            Call("s1", "bash", '{"command": "echo caf\\ud800e"}'),
            Call("s2", "write", '{"path": "note.txt", "content": "x\\udcffy"}'),
            Call("s3", "read", json.dumps({"path": "odd"})),
        ], content="Looking \ud800 around."),
        Text("Done \ud83d\ude00 and a lone \udfff."),
    )
    code, out, err = await headless(llm_server, monkeypatch, work, "go", fmt="stream-json")
    assert code == 0, err
    events = [parse_event(line) for line in out.splitlines()]  # every line is a protocol event
    types = [e.type for e in events]
    assert "error" not in types and types[-2:] == ["turn_complete", "shutdown"]
    calls = {e.tool_call_id: e for e in events if e.type == "tool_call"}
    assert calls["s1"].arguments["command"] == "echo caf\ufffde"
    outputs = {e.tool_call_id: e for e in events if e.type == "tool_output"}
    assert outputs["s1"].success and outputs["s2"].success, outputs
    assert "caf\ufffde" in outputs["s1"].output
    assert (work / "note.txt").read_text(encoding="utf-8") == "x\ufffdy"
    assert "bad\ufffd.txt" in outputs["s3"].output  # a directory: an error result naming what is in it
    final = events[-2]
    assert final.final_response == "Done \U0001F600 and a lone \ufffd."  # a split pair is joined back
    text = "".join(e.content for e in events if e.type == "assistant_chunk")
    assert "Looking \ufffd around." in text


def test_sigterm_during_a_local_job_keeps_its_last_lines_in_the_log(llm_server, mlintern_home, tmp_path):
    script = ("import signal, sys, time\n"
              "def stop(*_):\n    print('saving a checkpoint', flush=True)\n    time.sleep(0.5)\n"
              "    print('checkpoint saved', flush=True)\n    sys.exit(0)\n"
              "signal.signal(signal.SIGTERM, stop)\n"
              "print('training started', flush=True)\ntime.sleep(300)\n")
    llm_server.script(ToolCalls([Call("j1", "hf_jobs", json.dumps({"operation": "run", "script": script,
                                                                   "timeout": "10m"}))]),
                      Text("Launched; it is training."))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"MLINTERN_HOME": str(mlintern_home), **server_env(llm_server)})
    proc = subprocess.Popen(mlintern_cmd() + ["-p", "train", "-m", MODEL, "--yolo"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60

    def job_log() -> list[str]:
        logs = list((mlintern_home / "jobs").glob("local-*.log"))
        return logs[0].read_text().splitlines() if logs else []

    while "training started" not in job_log():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    # what it printed after the app had marked it stopped, up to its very last line
    assert job_log() == ["training started", "saving a checkpoint", "checkpoint saved"]


def test_after_a_signal_a_thread_stuck_in_a_read_cannot_hold_the_process(tmp_path):
    """The interpreter joins the default executor's threads at exit: one stuck in a read held a
    SIGTERM'd run for minutes. Once a signal arrived, the watchdog ends the process anyway."""
    import sys

    code = ("import asyncio, threading\n"
            "from mlintern_tui.headless import _arm_force_exit\n"
            "async def main():\n"
            "    asyncio.ensure_future(asyncio.to_thread(threading.Event().wait))  # never returns\n"
            "    await asyncio.sleep(0.1)\n"
            "    _arm_force_exit(130, grace_s=1.0)  # what the SIGTERM handler does\n"
            "asyncio.run(main())\n")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent.parent, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert time.monotonic() - started < 30
