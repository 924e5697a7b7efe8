"""The built-in demo model, driven through its stream exactly as the engine drives a real model.

A small loop here plays the engine: stream a response, assemble the tool calls from the
deltas, run them with the real built-in tools (``hf_jobs`` on a real local job backend and
job monitor), append the results and the monitor's notes, nudge like the continuation guard,
repeat. So the training job really runs, and the demo's report is checked against the log
the monitor recorded. The last tests run the installed command headless.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from agent.jobs.local import LocalBackend
from agent.jobs.monitor import JobMonitor
from agent.jobs.service import JobService
from agent.llm.demo import DEMO_MODEL_ID, Call, DemoModel
from agent.loop import CONTINUATION_NOTE
from agent.protocol import parse_event
from agent.tools import default_tools
from agent.tools.base import SessionToolState, ToolContext
from agent.tools.router import ToolRouter

REJECTION = "Job execution cancelled by user. User feedback: not on my laptop, please"
STEPS = 100  # a third of a second of CPU, still 40 log lines and a few checks: the tests check the flow, not the model's quality
POLL_S = 0.3


@dataclass
class Response:
    text: str
    tool_calls: list[dict[str, Any]]
    finish_reason: str | None
    usage: Any
    text_chunks: int
    tool_deltas: int


@dataclass
class Driver:
    """Plays the engine: model call, tool execution, repeat until a text-only answer."""

    workspace: Path
    #: the model (None: the demo with this file's short settings)
    demo: DemoModel | None = None
    tool_names: set[str] | None = None  # None: offer every built-in tool
    #: return a string to use as the tool result instead of running the call (a rejection)
    intercept: Callable[[str, dict[str, Any]], str | None] = lambda name, args: None
    #: called after each tool ran, e.g. to sabotage a file between steps
    after_tool: Callable[[str, dict[str, Any]], None] = lambda name, args: None
    messages: list[dict[str, Any]] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    guards: int = 0

    def __post_init__(self) -> None:
        if self.demo is None:
            self.demo = demo(self.workspace)
        tools = [t for t in default_tools() if self.tool_names is None or t.name in self.tool_names]
        self.router = ToolRouter(tools, ungoverned=True)  # this harness plays the engine and the user
        self.state = SessionToolState()
        jobs_dir = self.workspace / "jobs"
        self.backend = LocalBackend(jobs_dir / "local", uv=False)
        self.monitor = JobMonitor(lambda event: None, jobs_dir, poll_s=0.2, reconnect_s=0.05)
        self.jobs = JobService(backend=self.backend, monitor=self.monitor, turn=lambda: 1)
        self.ctx = ToolContext(session_id="demo-test", cwd=self.workspace, spill_dir=self.workspace / ".spill",
                               state=self.state, jobs=self.jobs)

    async def call_model(self) -> Response:
        text, calls, finish, usage, text_chunks, tool_deltas = [], {}, None, None, 0, 0
        async for chunk in self.demo.stream(self.messages, self.router.specs()):
            usage = chunk.get("usage") or usage
            for choice in chunk["choices"]:
                delta = choice["delta"]
                if delta.get("content"):
                    text.append(delta["content"])
                    text_chunks += 1
                for tc in delta.get("tool_calls") or []:
                    tool_deltas += 1
                    slot = calls.setdefault(tc["index"], {"id": "", "name": "", "arguments": ""})
                    slot["id"] = tc.get("id") or slot["id"]
                    slot["name"] = tc["function"].get("name") or slot["name"]
                    slot["arguments"] += tc["function"].get("arguments") or ""
                finish = choice["finish_reason"] or finish
        tool_calls = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for _, c in sorted(calls.items())
        ]
        return Response("".join(text), tool_calls, finish, usage, text_chunks, tool_deltas)

    async def run_turn(self, user_text: str, max_calls: int = 400) -> Response:
        self.messages.append({"role": "user", "content": user_text})
        continuations = 0
        for _ in range(max_calls):
            for note in self.monitor.drain_notes():  # as the engine does before each model call
                self.messages.append({"role": "user", "content": note})
            response = await self.call_model()
            self.responses.append(response)
            message: dict[str, Any] = {"role": "assistant", "content": response.text}
            if response.tool_calls:
                message["tool_calls"] = response.tool_calls
            self.messages.append(message)
            if not response.tool_calls:
                unfinished = [p.content for p in self.state.plan if p.status != "completed"]
                if unfinished and continuations < 2:  # the engine's continuation guard
                    continuations += 1
                    self.guards += 1
                    self.messages.append({"role": "user", "content": CONTINUATION_NOTE.format(items="; ".join(unfinished))})
                    continue
                return response
            for tc in response.tool_calls:
                name, raw = tc["function"]["name"], tc["function"]["arguments"]
                args = json.loads(raw)
                output = self.intercept(name, args)
                if output is None:
                    parsed = self.router.parse(tc["id"], name, raw)
                    output = (await self.router.execute(parsed, self.ctx)).output
                    self.after_tool(name, args)
                self.messages.append({"role": "tool", "tool_call_id": tc["id"], "content": output})
        raise AssertionError(f"the demo did not finish within {max_calls} model calls")

    def calls_made(self) -> list[list[str]]:
        return [[tc["function"]["name"] for tc in r.tool_calls] for r in self.responses]

    def tool_results(self, name: str, operation: str | None = None) -> list[str]:
        ids = {tc["id"] for r in self.responses for tc in r.tool_calls if tc["function"]["name"] == name
               and (operation is None or json.loads(tc["function"]["arguments"]).get("operation") == operation)}
        return [m["content"] for m in self.messages if m["role"] == "tool" and m["tool_call_id"] in ids]

    async def wait_for_jobs(self, timeout: float = 60) -> None:
        tasks = [j.task for j in self.monitor.jobs.values() if j.task is not None]
        if tasks:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout)

    async def close(self) -> None:
        await self.backend.shutdown()
        await self.monitor.close()


def demo(workspace: Path, **settings: Any) -> DemoModel:
    """The demo with no delay between chunks and a short training run."""
    return DemoModel(workspace, 0, **{"steps": STEPS, "poll_s": POLL_S, "max_polls": 40, **settings})


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
async def drivers():
    made: list[Driver] = []

    def make(*args, **kwargs) -> Driver:
        made.append(Driver(*args, **kwargs))
        return made[-1]

    yield make
    for driver in made:
        await driver.close()


def job_log(workspace: Path) -> list[dict[str, Any]]:
    """The dict lines of the one job's log, as the job monitor recorded them."""
    logs = list((workspace / "jobs").glob("*.log"))
    assert len(logs) == 1, logs
    return [ast.literal_eval(line) for line in logs[0].read_text().splitlines() if line.startswith("{")]


def assert_polling(calls: list[list[str]], prefix: list[list[str]], suffix: list[list[str]]) -> int:
    """``prefix`` (ending with the first wait), then inspect / wait alternating, then ``suffix``.
    Returns the number of waits."""
    assert calls[:len(prefix)] == prefix and calls[-len(suffix):] == suffix, calls
    middle = calls[len(prefix):-len(suffix)]
    assert middle[::2] == [["hf_jobs"]] * len(middle[::2]) and middle[1::2] == [["bash"]] * len(middle[1::2]), calls
    return 1 + len(middle[1::2])


async def test_scenario_launches_a_real_job_and_reports_the_real_numbers(workspace: Path, drivers) -> None:
    driver = drivers(workspace)
    final = await driver.run_turn("Fine-tune a small model on my data please")

    polls = assert_polling(
        driver.calls_made(),
        [["plan_tool"], ["bash"], ["plan_tool", "write"], ["plan_tool", "hf_jobs"], ["plan_tool", "bash"]],
        [["plan_tool", "hf_jobs"], ["plan_tool"], []],
    )
    assert driver.guards == 0
    intro = driver.responses[0].text
    assert "Demo model" in intro and "scripted" in intro and "Fine-tune a small model" in intro
    assert "approve" in intro and "background CPU job" in intro
    # streamed like a real model: many word chunks, the script's arguments in many deltas
    assert driver.responses[0].text_chunks > 20
    assert driver.responses[2].tool_deltas > 20
    assert all(r.usage and r.usage["prompt_tokens"] > 0 and r.usage["completion_tokens"] > 0 for r in driver.responses)
    ids = [tc["id"] for r in driver.responses for tc in r.tool_calls]
    assert len(set(ids)) == len(ids) and all(i.startswith("call_demo_") for i in ids)
    assert [item.status for item in driver.state.plan] == ["completed"] * 5

    # the launch: the written file's content sent as a CPU job, which returned while it ran
    written = next(json.loads(tc["function"]["arguments"]) for tc in driver.responses[2].tool_calls
                   if tc["function"]["name"] == "write")
    launch = next(json.loads(tc["function"]["arguments"]) for tc in driver.responses[3].tool_calls
                  if tc["function"]["name"] == "hf_jobs")
    assert launch == {"operation": "run", "script": written["path"], "script_args": ["--steps", str(STEPS)],
                      "hardware_flavor": "cpu-basic", "timeout": "10m"}
    [run_result] = driver.tool_results("hf_jobs", "run")
    assert "accepted on cpu-basic (local backend" in run_result and "Status: RUNNING" in run_result
    assert "is running in the background" in driver.responses[4].text
    assert polls == 1 or any(r.text.startswith("Still ") for r in driver.responses[5:])
    [job] = driver.monitor.jobs.values()
    assert job.info.stage == "COMPLETED" and job.info.backend == "local"

    # every number in the report is in the job's log
    history = job_log(workspace)
    losses = [e for e in history if "loss" in e]
    final_eval = history[-1]
    assert losses[-1]["step"] == STEPS and set(final_eval) >= {"eval_loss", "eval_accuracy"}
    answer = final.text
    assert answer.startswith("## Demo run")
    assert f"| first logged loss (step {losses[0]['step']}) | {losses[0]['loss']} |" in answer
    assert f"| final training loss | {losses[-1]['loss']} |" in answer
    assert f"| eval loss | {final_eval['eval_loss']} |" in answer
    assert f"({final_eval['eval_accuracy']})" in answer and job.info.id in answer
    assert "ANTHROPIC_API_KEY" in answer and "ollama/" in answer and "/model" in answer
    # the re-run command in the answer works as given and reproduces the job's result
    command = re.search(r"```bash\n(.+?)\n```", answer).group(1)
    rerun = subprocess.run(command, shell=True, cwd=workspace, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert f"'eval_accuracy': {final_eval['eval_accuracy']}" in rerun.stdout


async def test_declined_job_is_reported_honestly(workspace: Path, drivers) -> None:
    def reject_job(name: str, args: dict[str, Any]) -> str | None:
        return REJECTION if name == "hf_jobs" and args.get("operation") == "run" else None

    driver = drivers(workspace, intercept=reject_job)
    final = await driver.run_turn("train something")

    assert driver.calls_made()[-3:] == [["plan_tool", "hf_jobs"], ["plan_tool"], []]
    assert "You asked: “train something”" in driver.responses[0].text
    assert "again" not in driver.responses[0].text
    assert final.finish_reason == "stop" and driver.guards == 0
    assert "Demo stopped" in final.text and "launching the training job was declined" in final.text
    assert "not on my laptop" in final.text and "Nothing was trained" in final.text
    assert "final training loss" not in final.text
    # the steps that will not happen are off the plan, so the continuation guard stays quiet
    assert [(p.id, p.status) for p in driver.state.plan] == [("inspect", "completed"), ("script", "completed")]
    assert not driver.monitor.jobs and not list(workspace.glob("jobs/local/*"))


async def test_failed_job_is_reported_honestly(workspace: Path, drivers) -> None:
    def break_script(name: str, args: dict[str, Any]) -> None:
        if name == "write":
            Path(args["path"]).write_text("import nonexistent_module_for_the_demo_test\n")

    driver = drivers(workspace, after_tool=break_script)
    final = await driver.run_turn("go")

    assert "Demo stopped" in final.text and "the training job failed" in final.text
    assert "ModuleNotFoundError" in final.text and "exited with code 1" in final.text
    assert "final training loss" not in final.text and driver.guards == 0
    [job] = driver.monitor.jobs.values()
    assert job.info.stage == "ERROR"


async def test_a_turn_that_ends_while_the_job_runs_is_picked_up_by_the_next_message(
    workspace: Path, drivers
) -> None:
    driver = drivers(workspace, demo(workspace, max_polls=0))
    handed_over = await driver.run_turn("train")
    assert driver.calls_made()[-3:] == [["plan_tool", "hf_jobs"], ["plan_tool"], []]
    [job] = driver.monitor.jobs.values()
    assert "still training" in handed_over.text and job.info.id in handed_over.text
    assert not handed_over.text.startswith("## ") and driver.guards == 0
    assert all(p.status == "completed" for p in driver.state.plan)

    await driver.wait_for_jobs()  # the job ends between the turns: the note waits for the next step
    made = len(driver.responses)
    final = await driver.run_turn("How did it go?")
    notes = [m["content"] for m in driver.messages if m["role"] == "user" and m["content"].startswith("[JOB UPDATE]")]
    assert len(notes) == 1 and f"Job {job.info.id}" in notes[0] and "COMPLETED" in notes[0]
    assert driver.calls_made()[made:] == [["plan_tool", "hf_jobs"], ["plan_tool"], []]
    assert driver.responses[made].text.startswith("The [JOB UPDATE] note is in")
    losses = [e for e in job_log(workspace) if "loss" in e]
    assert f"| final training loss | {losses[-1]['loss']} |" in final.text


async def test_a_message_while_the_job_still_runs_resumes_checking_on_it(workspace: Path, drivers) -> None:
    driver = drivers(workspace, demo(workspace, steps=600, max_polls=0))
    await driver.run_turn("train")
    [job] = driver.monitor.jobs.values()
    assert not job.info.finished

    driver.demo = demo(workspace, steps=600, max_polls=200)
    made = len(driver.responses)
    final = await driver.run_turn("is it done yet?")
    assert "from before is still running" in driver.responses[made].text
    assert assert_polling(driver.calls_made()[made:], [["plan_tool", "bash"]], [["plan_tool", "hf_jobs"], ["plan_tool"], []]) > 1
    assert job.info.stage == "COMPLETED" and "| final training loss |" in final.text


async def test_follow_up_answers_briefly_then_run_again_reruns(workspace: Path, drivers) -> None:
    driver = drivers(workspace)
    await driver.run_turn("hello")
    last_loss = [e for e in job_log(workspace) if "loss" in e][-1]["loss"]
    made = len(driver.responses)

    follow = await driver.run_turn("Thanks! Can you explain the results?")
    assert len(driver.responses) == made + 1 and not follow.tool_calls
    assert "demo" in follow.text and str(last_loss) in follow.text and "run again" in follow.text

    # the script from the first run exists, so the demo must read it before overwriting
    again = await driver.run_turn("run again")
    assert_polling(
        driver.calls_made()[made + 1:],
        [["plan_tool"], ["bash"], ["plan_tool", "read"], ["write"], ["plan_tool", "hf_jobs"], ["plan_tool", "bash"]],
        [["plan_tool", "hf_jobs"], ["plan_tool"], []],
    )
    assert "Running the built-in task again" in driver.responses[made + 1].text
    assert "Demo stopped" not in again.text and "| final training loss |" in again.text
    assert len(driver.monitor.jobs) == 2


async def test_without_plan_tool_the_scenario_still_completes(workspace: Path, drivers) -> None:
    driver = drivers(workspace, tool_names={"bash", "write", "hf_jobs"})
    final = await driver.run_turn("demo")
    assert_polling(driver.calls_made(), [["bash"], ["write"], ["hf_jobs"], ["bash"]], [["hf_jobs"], []])
    assert "| final training loss |" in final.text


NOTE = "[JOB UPDATE] Job local-1 (local, cpu-basic) finished: COMPLETED after 0m03s, $0.0000. \nLast log lines:\nx"


@pytest.mark.parametrize("messages, tools, expected", [
    ([], None, "Send any message"),
    ([{"role": "system", "content": "sys"}, {"role": "user", "content": "   "}], None, "Send any message"),
    ([{"role": "user", "content": [{"type": "text", "text": "hi"}]}], None, "doesn't offer"),
    ([{"role": "developer", "content": None}, {"role": "user", "content": "hi"},
      {"role": "tool", "tool_call_id": "nobody", "content": 42}], ["bash"], "`hf_jobs` and `write` tools"),
    # a guard nudge or a job note after the final answer is not a new request
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "## Done"},
      {"role": "user", "content": "[SYSTEM: CONTINUATION GUARD] keep going"}],
     ["bash", "write", "hf_jobs"], "is finished"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "## Done"},
      {"role": "user", "content": NOTE}], ["bash", "write", "hf_jobs"], "is finished"),
    # a call the engine never answered (interrupted) is not glossed over
    ([{"role": "user", "content": "hi"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "call_demo_1_x", "type": "function",
       "function": {"name": "bash", "arguments": "{not json"}}]}],
     ["bash", "write", "hf_jobs"], "never returned a result"),
])
async def test_odd_conversations_get_a_plain_answer(workspace: Path, messages, tools, expected) -> None:
    specs = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
             for n in tools or []]
    response = demo(workspace).complete(messages, specs or None)
    choice = response["choices"][0]
    assert choice["finish_reason"] == "stop" and not choice["message"]["tool_calls"]
    assert expected in choice["message"]["content"]


def _launched_then(*after: dict[str, Any]) -> list[dict[str, Any]]:
    """A conversation whose last turn launched job local-abc, then ``after``."""
    launch = {"operation": "run", "script": "/w/train.py", "script_args": ["--steps", "300"],
              "hardware_flavor": "cpu-basic", "timeout": "10m"}
    return [
        {"role": "user", "content": "train"},
        {"role": "assistant", "content": "Launching.", "tool_calls": [{"id": "call_demo_7_a", "type": "function",
         "function": {"name": "hf_jobs", "arguments": json.dumps(launch)}}]},
        {"role": "tool", "tool_call_id": "call_demo_7_a", "content": "Job local-abc accepted on cpu-basic "
         "(local backend, local CPU, $0). Status: RUNNING.\nLog: /d/jobs/local-local-abc.log"},
        {"role": "assistant", "content": "Waiting.", "tool_calls": [{"id": "call_demo_8_b", "type": "function",
         "function": {"name": "bash", "arguments": json.dumps({"command": "sleep 5"})}}]},
        {"role": "tool", "tool_call_id": "call_demo_8_b",
         "content": "Cancelled: the user interrupted the agent; the call was stopped."},
        *after,
    ]


@pytest.mark.parametrize("after, calls, expected", [
    # interrupted while checking on the job: the next message picks the job up again
    ([{"role": "user", "content": "what is going on?"}], ["plan_tool", "bash"], "from before is still running"),
    # the job ended meanwhile: its note is there, so read the log
    ([{"role": "user", "content": "well?"}, {"role": "user", "content": NOTE.replace("local-1", "local-abc")}],
     ["plan_tool", "hf_jobs"], "The [JOB UPDATE] note is in: job `local-abc` finished COMPLETED after 0m03s"),
    # a check that failed while the job runs: stop honestly, without claiming nothing was trained
    ([{"role": "user", "content": "go on"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "call_demo_9_c", "type": "function",
       "function": {"name": "hf_jobs", "arguments": json.dumps({"operation": "inspect", "job_id": "local-abc"})}}]},
      {"role": "tool", "tool_call_id": "call_demo_9_c", "content": "ERROR: the Hub is down"}],
     [], "Job `local-abc` was already launched and keeps running"),
])
async def test_a_job_from_an_earlier_turn_is_followed_up(workspace: Path, after, calls, expected) -> None:
    tools = ["bash", "write", "hf_jobs"] + (["plan_tool"] if calls else [])  # (no plan: no plan to trim)
    specs = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
             for n in tools]
    message = demo(workspace).complete(_launched_then(*after), specs)["choices"][0]["message"]
    assert [tc["function"]["name"] for tc in message["tool_calls"] or []] == calls
    assert expected in message["content"]
    if calls == ["plan_tool", "hf_jobs"]:
        assert json.loads(message["tool_calls"][1]["function"]["arguments"]) == {"operation": "logs", "job_id": "local-abc"}


@pytest.mark.parametrize("name, args, result, rejected, failed", [
    ("write", {}, "Created /tmp/test_rejected_run/mlintern_demo/train.py (12 lines).", False, False),
    ("bash", {}, "Job execution cancelled by user. User feedback: no", True, True),
    ("hf_jobs", {"operation": "run"}, "The user rejected this call; it was NOT executed.", True, True),
    ("bash", {}, "Traceback (most recent call last):\n  ...\n\nCommand failed with exit code 1.", False, True),
    ("bash", {}, "Tool was not executed (interrupted or error).", False, True),
    ("bash", {}, "ERROR: the command timed out after 60s", False, True),
    ("bash", {}, "Python 3.11.7\ncpu cores: 2\nfree disk: 80.1 GB", False, False),
    ("bash", {}, None, False, True),
    # a job's own failure in its log is not a failed call: the demo reports it as the job's
    ("hf_jobs", {"operation": "logs"}, "Job j is ERROR; 2 log lines:\nTraceback (most recent call last):", False, False),
    ("hf_jobs", {"operation": "logs"}, "ERROR: No local job with id 'j'.", False, True),
])
def test_failed_and_rejected_results_are_recognised(name, args, result, rejected, failed) -> None:
    call = Call("call_demo_1_x", name, args, result)
    assert (call.rejected, call.failed) == (rejected, failed)


async def test_the_stream_and_the_whole_answer_are_the_same_step(workspace: Path) -> None:
    """The engine streams (and reads a non-streamed answer through the same chunk reader): both
    shapes carry the same step, read by the client's own stream assembly."""
    from agent.llm.client import LLMClient, _StreamState

    specs = ToolRouter(default_tools()).specs()
    messages = [{"role": "user", "content": "hi"}]
    whole = demo(workspace).complete(messages, specs)
    choice = whole["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and whole["usage"]["prompt_tokens"] > 0
    assert [tc["function"]["name"] for tc in choice["message"]["tool_calls"]] == ["plan_tool"]
    assert "Demo model" in choice["message"]["content"]
    streamed = _StreamState()
    async for chunk in demo(workspace).stream(messages, specs):
        LLMClient._take_chunk(chunk, streamed, None)
    assert "".join(streamed.text) == choice["message"]["content"] and streamed.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in streamed.tool_calls()] == [
        (tc["function"]["name"], tc["function"]["arguments"]) for tc in choice["message"]["tool_calls"]]


def test_settings_come_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLINTERN_DEMO_DELAY", "0.25")
    monkeypatch.setenv("MLINTERN_DEMO_STEPS", "123")
    monkeypatch.setenv("MLINTERN_DEMO_POLL_S", "not a number")
    monkeypatch.setenv("MLINTERN_DEMO_MAX_POLLS", "3")
    model = DemoModel.from_environment(tmp_path / "b")
    assert model.workspace == (tmp_path / "b").resolve() and model.chunk_delay == 0.25
    assert (model.settings.steps, model.settings.poll_s, model.settings.max_polls) == (123, 5.0, 3)


def test_importing_the_module_does_not_import_litellm() -> None:
    code = "import sys, agent.llm.demo as d; print(d.DEMO_MODEL_ID, 'litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == [DEMO_MODEL_ID, "False"], out.stderr


# --------------------------------------------------------------------------- the installed command


def headless(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "mlintern"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlintern_tui.cli"]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k not in ("HF_TOKEN", "OPENAI_BASE_URL")}
    env.update({"MLINTERN_HOME": str(home), "LITELLM_OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1",
                "MLINTERN_DEMO_DELAY": "0", "MLINTERN_DEMO_STEPS": str(STEPS), "MLINTERN_DEMO_POLL_S": "0.5"})
    return subprocess.run(cmd + args, env=env, capture_output=True, text=True, timeout=120, cwd=cwd)


def test_headless_yolo_runs_the_job_and_reports_what_its_log_says(mlintern_home: Path, tmp_path: Path) -> None:
    proc = headless(["-p", "Fine-tune a small classifier", "--yolo", "--output-format", "stream-json"],
                    mlintern_home, tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = [parse_event(line) for line in proc.stdout.splitlines()]
    assert not [e for e in events if e.type == "approval_required"]  # --yolo: CPU jobs run unasked
    lines = [line for e in events if e.type == "job_log" for line in e.lines]
    updates = [e for e in events if e.type == "job_update"]
    assert updates[0].status == "RUNNING" and updates[-1].status == "COMPLETED"
    losses = [ast.literal_eval(line) for line in lines if line.startswith("{'loss'")]
    evals = [ast.literal_eval(line) for line in lines if line.startswith("{'eval_loss'")]
    assert losses[-1]["step"] == STEPS
    done = next(e for e in events if e.type == "turn_complete")
    assert done.reason == "done" and done.receipt.llm_cost_usd == 0
    assert f"| final training loss | {losses[-1]['loss']} |" in done.final_response
    assert f"({evals[-1]['eval_accuracy']})" in done.final_response
    # `run` did not hold the turn: the demo was already checking on the job while it trained
    first_check = next(i for i, e in enumerate(events)
                       if e.type == "tool_call" and str(e.arguments.get("command", "")).startswith("sleep"))
    assert first_check < events.index(updates[-1])


def test_headless_without_yolo_declines_the_job_and_says_so(mlintern_home: Path, tmp_path: Path) -> None:
    proc = headless(["-p", "Fine-tune a small classifier", "--output-format", "json"], mlintern_home, tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    answer = result["result"]
    assert result["reason"] == "done" and answer.startswith("## Demo stopped")
    assert "launching the training job was declined" in answer and "Nothing was trained" in answer
    assert "--yolo" in answer and "final training loss" not in answer
    assert not list((mlintern_home / "jobs").glob("*.log"))
