"""The built-in demo model, driven through litellm exactly as the engine drives a real model.

A small loop here plays the engine: stream a response, assemble the tool calls from the
deltas, run them with the real built-in tools, append the results, repeat. So the training
script really runs, and the demo's report is checked against the files it produced.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

import litellm  # noqa: E402

from agent.llm.demo import DEMO_MODEL_ID, DEMO_PROVIDER, Call, register_demo_provider  # noqa: E402
from agent.tools import default_tools  # noqa: E402
from agent.tools.base import SessionToolState, ToolContext  # noqa: E402
from agent.tools.router import ToolRouter  # noqa: E402

litellm.suppress_debug_info = True
REJECTION = "Job execution cancelled by user. User feedback: not on my laptop, please"


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
    tool_names: set[str] | None = None  # None: offer every built-in tool
    #: return a string to use as the tool result instead of running the call (a rejection)
    intercept: Callable[[str, dict[str, Any]], str | None] = lambda name, args: None
    #: called after each tool ran, e.g. to sabotage a file between steps
    after_tool: Callable[[str, dict[str, Any]], None] = lambda name, args: None
    messages: list[dict[str, Any]] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)

    def __post_init__(self) -> None:
        tools = [t for t in default_tools() if self.tool_names is None or t.name in self.tool_names]
        self.router = ToolRouter(tools)
        self.state = SessionToolState()
        self.ctx = ToolContext(session_id="demo-test", cwd=self.workspace,
                               spill_dir=self.workspace / ".spill", state=self.state)

    async def call_model(self) -> Response:
        stream = await litellm.acompletion(
            model=DEMO_MODEL_ID, messages=self.messages, tools=self.router.specs(),
            stream=True, stream_options={"include_usage": True},
        )
        text, calls, finish, usage, text_chunks, tool_deltas = [], {}, None, None, 0, 0
        async for chunk in stream:
            usage = getattr(chunk, "usage", None) or usage
            for choice in chunk.choices:
                if choice.delta.content:
                    text.append(choice.delta.content)
                    text_chunks += 1
                for tc in choice.delta.tool_calls or []:
                    tool_deltas += 1
                    slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = tc.id or slot["id"]
                    slot["name"] = tc.function.name or slot["name"]
                    slot["arguments"] += tc.function.arguments or ""
                finish = choice.finish_reason or finish
        tool_calls = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for _, c in sorted(calls.items())
        ]
        return Response("".join(text), tool_calls, finish, usage, text_chunks, tool_deltas)

    async def run_turn(self, user_text: str, max_calls: int = 12) -> Response:
        self.messages.append({"role": "user", "content": user_text})
        for _ in range(max_calls):
            response = await self.call_model()
            self.responses.append(response)
            message: dict[str, Any] = {"role": "assistant", "content": response.text}
            if response.tool_calls:
                message["tool_calls"] = response.tool_calls
            self.messages.append(message)
            if not response.tool_calls:
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


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    register_demo_provider(tmp_path, chunk_delay=0)
    return tmp_path


def only_file(workspace: Path, pattern: str) -> Path:
    found = list(workspace.glob(pattern))
    assert len(found) == 1, found
    return found[0]


async def test_scenario_trains_for_real_and_reports_the_real_numbers(workspace: Path) -> None:
    driver = Driver(workspace)
    final = await driver.run_turn("Fine-tune a small model on my data please")

    assert driver.calls_made() == [
        ["plan_tool"], ["bash"], ["plan_tool", "write"], ["plan_tool", "bash"],
        ["plan_tool", "read"], ["plan_tool"], [],
    ]
    intro = driver.responses[0].text
    assert "Demo model" in intro and "scripted" in intro and "Fine-tune a small model" in intro
    # streamed like a real model: many word chunks, the script's arguments in many deltas
    assert driver.responses[0].text_chunks > 20
    assert driver.responses[2].tool_deltas > 20
    assert [r.finish_reason for r in driver.responses] == ["tool_calls"] * 6 + ["stop"]
    assert all(r.usage and r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
               for r in driver.responses)
    ids = [tc["id"] for r in driver.responses for tc in r.tool_calls]
    assert len(set(ids)) == len(ids) and all(i.startswith("call_demo_") for i in ids)
    assert [item.status for item in driver.state.plan] == ["completed"] * 5

    metrics = json.loads(only_file(workspace, "mlintern_demo/*_output/metrics.json").read_text())
    history = metrics["log_history"]
    assert history[-1]["step"] == 300 and history[-1]["loss"] < history[0]["loss"] / 2
    assert metrics["eval_accuracy"] > 0.9

    answer = final.text
    assert answer.startswith("## ")
    assert f"| final training loss | {metrics['final_loss']} |" in answer
    assert f"| first logged loss (step 10) | {history[0]['loss']} |" in answer
    assert str(metrics["eval_accuracy"]) in answer
    assert "metrics.json agrees" in answer
    assert "ANTHROPIC_API_KEY" in answer and "ollama/" in answer and "/model" in answer
    # the re-run command in the answer works as given
    command = re.search(r"```bash\n(.+?)\n```", answer).group(1)
    rerun = subprocess.run(command, shell=True, cwd=workspace, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert f"'eval_accuracy': {metrics['eval_accuracy']}" in rerun.stdout


async def test_rejected_training_run_is_reported_honestly(workspace: Path) -> None:
    def reject_training(name: str, args: dict[str, Any]) -> str | None:
        return REJECTION if name == "bash" and "--steps" in args["command"] else None

    driver = Driver(workspace, intercept=reject_training)
    final = await driver.run_turn("train something")

    assert driver.calls_made()[-2] == ["plan_tool", "bash"]
    assert "You asked: “train something”" in driver.responses[0].text
    assert "again" not in driver.responses[0].text
    assert final.finish_reason == "stop"
    assert "Demo stopped" in final.text and "running the training script" in final.text
    assert "was rejected" in final.text and "not on my laptop" in final.text
    assert "final training loss" not in final.text
    assert not list(workspace.glob("mlintern_demo/*_output"))


async def test_failed_training_run_is_reported_honestly(workspace: Path) -> None:
    def break_script(name: str, args: dict[str, Any]) -> None:
        if name == "write":
            Path(args["path"]).write_text("import nonexistent_module_for_the_demo_test\n")

    driver = Driver(workspace, after_tool=break_script)
    final = await driver.run_turn("go")

    assert "Demo stopped" in final.text and "running the training script" in final.text
    assert "ModuleNotFoundError" in final.text and "exit code 1" in final.text
    assert "final training loss" not in final.text


async def test_follow_up_answers_briefly_then_run_again_reruns(workspace: Path) -> None:
    driver = Driver(workspace)
    await driver.run_turn("hello")
    first_metrics = json.loads(only_file(workspace, "mlintern_demo/*_output/metrics.json").read_text())
    made = len(driver.responses)

    follow = await driver.run_turn("Thanks! Can you explain the results?")
    assert len(driver.responses) == made + 1 and not follow.tool_calls
    assert "demo" in follow.text and str(first_metrics["final_loss"]) in follow.text
    assert "run again" in follow.text

    # the script from the first run exists, so the demo must read it before overwriting
    again = await driver.run_turn("run again")
    assert driver.calls_made()[made + 1:] == [
        ["plan_tool"], ["bash"], ["plan_tool", "read"], ["write"], ["plan_tool", "bash"],
        ["plan_tool", "read"], ["plan_tool"], [],
    ]
    assert "Running the built-in task again" in driver.responses[made + 1].text
    assert "Demo stopped" not in again.text and "| final training loss |" in again.text


async def test_without_plan_tool_the_scenario_still_completes(workspace: Path) -> None:
    driver = Driver(workspace, tool_names={"bash", "read", "write"})
    final = await driver.run_turn("demo")
    assert driver.calls_made() == [["bash"], ["write"], ["bash"], ["read"], []]
    assert "| final training loss |" in final.text


@pytest.mark.parametrize("messages, tools, expected", [
    ([], None, "Send any message"),
    ([{"role": "system", "content": "sys"}, {"role": "user", "content": "   "}], None, "Send any message"),
    ([{"role": "user", "content": [{"type": "text", "text": "hi"}]}], None, "doesn't offer"),
    ([{"role": "developer", "content": None}, {"role": "user", "content": "hi"},
      {"role": "tool", "tool_call_id": "nobody", "content": 42}], ["bash"], "`write` tool"),
    # a guard nudge after the final answer is not a new request
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "## Done"},
      {"role": "user", "content": "[SYSTEM: CONTINUATION GUARD] keep going"}],
     ["bash", "write"], "is finished"),
    # a call the engine never answered (interrupted) is not glossed over
    ([{"role": "user", "content": "hi"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "call_demo_1_x", "type": "function",
       "function": {"name": "bash", "arguments": "{not json"}}]}],
     ["bash", "write"], "never returned a result"),
])
async def test_odd_conversations_get_a_plain_answer(workspace: Path, messages, tools, expected) -> None:
    specs = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
             for n in tools or []]
    kwargs = {"tools": specs} if specs else {}
    response = await litellm.acompletion(model=DEMO_MODEL_ID, messages=messages, **kwargs)
    choice = response.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert expected in choice.message.content


@pytest.mark.parametrize("result, rejected, failed", [
    ("Created /tmp/test_rejected_run/mlintern_demo/train.py (12 lines).", False, False),
    ("Job execution cancelled by user. User feedback: no", True, True),
    ("The user rejected this call.", True, True),
    ("Traceback (most recent call last):\n  ...\n\nCommand failed with exit code 1.", False, True),
    ("Tool was not executed (interrupted or error).", False, True),
    ("ERROR: the command timed out after 60s", False, True),
    ("Python 3.11.7\ncpu cores: 2\nfree disk: 80.1 GB", False, False),
    (None, False, True),
])
def test_failed_and_rejected_results_are_recognised(result, rejected, failed) -> None:
    call = Call("call_demo_1_x", "bash", {"command": "true"}, result)
    assert (call.rejected, call.failed) == (rejected, failed)


async def test_non_streaming_and_sync_calls_return_the_same_step(workspace: Path) -> None:
    specs = ToolRouter(default_tools()).specs()
    messages = [{"role": "user", "content": "hi"}]
    for response in (await litellm.acompletion(model=DEMO_MODEL_ID, messages=messages, tools=specs),
                     litellm.completion(model=DEMO_MODEL_ID, messages=messages, tools=specs)):
        choice = response.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert [tc.function.name for tc in choice.message.tool_calls] == ["plan_tool"]
        assert "Demo model" in choice.message.content
        assert response.usage.prompt_tokens > 0
    chunks = list(litellm.completion(model=DEMO_MODEL_ID, messages=messages, tools=specs, stream=True))
    rebuilt = litellm.stream_chunk_builder(chunks, messages=messages)
    assert rebuilt.choices[0].message.tool_calls[0].function.name == "plan_tool"


def test_registration_is_idempotent_and_priced_at_zero(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLINTERN_DEMO_DELAY", "0.25")
    assert register_demo_provider(tmp_path / "a") == DEMO_MODEL_ID
    register_demo_provider(tmp_path / "b")
    entries = [p for p in litellm.custom_provider_map if p["provider"] == DEMO_PROVIDER]
    assert len(entries) == 1
    handler = entries[0]["custom_handler"]
    assert handler.workspace == (tmp_path / "b").resolve() and handler.chunk_delay == 0.25
    info = litellm.get_model_info(DEMO_MODEL_ID)
    assert info["max_input_tokens"] == 32768
    cost = litellm.cost_per_token(model=DEMO_MODEL_ID, prompt_tokens=1000, completion_tokens=1000)
    assert cost == (0.0, 0.0)


def test_importing_the_module_does_not_import_litellm() -> None:
    code = "import sys, agent.llm.demo as d; print(d.DEMO_MODEL_ID, 'litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == [DEMO_MODEL_ID, "False"], out.stderr
