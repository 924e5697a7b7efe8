"""Steering a running turn: a message sent while the agent works reaches the model at its next
step (after the tool calls in flight, never cutting one), also when it arrives while the final
answer streams; with nothing running it is an ordinary prompt."""

from __future__ import annotations

import asyncio
import json

from agent.protocol import Shutdown, Steer
from agent.protocol import UserInput
from tests.engine_support import collect_until, make_session, of_type
from tests.fakes import Call, Text, ToolCalls


def user_texts(body: dict) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], str)]


async def test_a_message_lands_after_the_running_tool_call(llm_server, monkeypatch, tmp_path):
    s = make_session(llm_server, monkeypatch, tmp_path)
    llm_server.script(ToolCalls([Call("b1", "bash", json.dumps({"command": "sleep 1; echo slept"}))]), Text("Done."))
    sub = s.subscribe("t")
    s.start()
    s.submit(UserInput(text="run it"))
    await collect_until(sub, stop={"tool_call"})
    s.submit(Steer(text="also print bye afterwards"))
    events = await collect_until(sub)
    types = [e.type for e in events]
    steered = of_type(events, "user_message")
    assert [m.text for m in steered] == ["also print bye afterwards"] and steered[0].steered
    assert types.index("tool_output") < types.index("user_message")  # the running call was not cut
    assert of_type(events, "tool_output")[0].output.strip() == "slept"
    second = llm_server.requests[1]
    assert user_texts(second) == ["run it", "also print bye afterwards"]
    assert second["messages"][-1]["role"] == "user"  # after the tool result, before the next answer
    assert events[-1].type == "turn_complete" and events[-1].final_response == "Done."
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)


async def test_a_message_during_the_final_answer_gets_answered_in_the_same_turn(llm_server, monkeypatch, tmp_path):
    s = make_session(llm_server, monkeypatch, tmp_path)
    llm_server.script(Text("A long first answer that streams slowly.", chunk_chars=2, delay=0.05), Text("And bye."))
    sub = s.subscribe("t")
    s.start()
    s.submit(UserInput(text="talk"))
    await collect_until(sub, stop={"assistant_chunk"})
    s.submit(Steer(text="then say bye"))
    events = await collect_until(sub)
    assert len(llm_server.requests) == 2 and user_texts(llm_server.requests[1]) == ["talk", "then say bye"]
    messages = of_type(events, "assistant_message")
    assert [m.final for m in messages] == [False, True] and events[-1].final_response == "And bye."
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)


async def test_with_nothing_running_a_steer_is_a_prompt(llm_server, monkeypatch, tmp_path):
    s = make_session(llm_server, monkeypatch, tmp_path)
    llm_server.script(Text("Hello."))
    sub = s.subscribe("t")
    s.start()
    s.submit(Steer(text="hi"))
    events = await collect_until(sub)
    [message] = of_type(events, "user_message")
    assert message.text == "hi" and not message.steered and events[-1].final_response == "Hello."
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)


def test_stdin_stream_json_drives_a_headless_session(llm_server, mlintern_home):
    """Another program drives the session: its second message arrives while a tool runs and joins
    that turn; a third after the turn ends starts the next one; closing stdin ends the run."""
    import os
    import subprocess

    from agent.protocol import parse_event
    from tests.test_headless_cli import mlintern_cmd, server_env

    def message(text: str) -> bytes:
        return (json.dumps({"type": "user", "message": {"role": "user", "content": text}}) + "\n").encode()

    llm_server.script(ToolCalls([Call("b1", "bash", json.dumps({"command": "sleep 1; echo slept"}))]), Text("First done."),
                      Text("Second done."))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"MLINTERN_HOME": str(mlintern_home), "LITELLM_OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1",
                **server_env(llm_server)})
    proc = subprocess.Popen(mlintern_cmd() + ["--input-format", "stream-json", "--output-format", "stream-json",
                                              "-m", "openai/scripted-model"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=mlintern_home)
    events = []

    def until(kind: str):
        for line in proc.stdout:
            events.append(parse_event(line))
            if events[-1].type == kind:
                return events[-1]
        raise AssertionError(f"no {kind}: {proc.stderr.read().decode()[-2000:]}")

    proc.stdin.write(message("run it"))
    proc.stdin.flush()
    until("tool_call")
    proc.stdin.write(message("and then say done") + b"not json\n")
    proc.stdin.flush()
    first = until("turn_complete")
    assert first.final_response == "First done."
    proc.stdin.write(message("next task"))
    proc.stdin.close()
    second = until("turn_complete")
    assert second.final_response == "Second done."
    assert proc.wait(30) == 0
    stderr = proc.stderr.read().decode()
    assert "stdin line 3 skipped: not JSON" in stderr
    messages = [(e.text, e.steered) for e in events if e.type == "user_message"]
    assert messages == [("run it", False), ("and then say done", True), ("next task", False)]
    assert user_texts(llm_server.requests[1]) == ["run it", "and then say done"]


async def test_a_stalled_stream_is_cut_after_the_stall_timeout_and_retried(llm_server, monkeypatch, tmp_path):
    import time

    from agent.config import Config, LLMSettings
    from tests.fakes import Hang

    for transport in ("direct", "litellm"):
        config = Config(llm=LLMSettings(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02, stall_timeout_s=0.75,
                                        transport=transport))
        llm_server.script(Hang(seconds=30, after_text="Half an ans"), Text("A whole answer."))
        monkeypatch.setenv("VLLM_BASE_URL", llm_server.base_url)
        s = make_session(llm_server, monkeypatch, tmp_path, config=config,
                         model_id="vllm/stall" if transport == "direct" else "openai/scripted-model")
        sub = s.subscribe("t")
        s.start()
        began = time.monotonic()
        s.submit(UserInput(text="answer"))
        events = await collect_until(sub, timeout=20)
        assert events[-1].type == "turn_complete" and events[-1].final_response == "A whole answer.", (transport, events[-1])
        assert time.monotonic() - began < 10  # not the 600 s request timeout
        retried = [e.log for e in of_type(events, "tool_log") if "stalled" in e.log or "Retrying" in e.log]
        assert retried, transport
        s.submit(Shutdown())
        await asyncio.wait_for(s._runner, 10)
