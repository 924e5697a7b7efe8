"""Regressions found in review: interrupts, approvals, compaction and accounting edge cases,
each through a real Session, real litellm and the scripted loopback model."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

import tests.engine_support as support
from agent.config import Config, LLMSettings
from agent.protocol import Compact, ExecApproval, Interrupt, Shutdown, ToolDecision, UserInput
from tests.engine_support import collect_until
from tests.fakes import Call, Disconnect, Hang, HTTPError, Text, ToolCalls

_SESSIONS = []


def make_session(*args, **kwargs):
    session = support.make_session(*args, **kwargs)
    _SESSIONS.append(session)
    return session


@pytest.fixture(autouse=True)
async def _shutdown_sessions():
    """A failed assertion must not leave a session mid-turn (it would hang loop teardown)."""
    yield
    while _SESSIONS:
        s = _SESSIONS.pop()
        if s._runner and not s._runner.done():
            s.submit(Shutdown())
            try:
                await asyncio.wait_for(asyncio.shield(s._runner), 10)
            except Exception:
                s._runner.cancel()


async def start(session, text):
    sub = session.subscribe("t")
    session.start()
    session.submit(UserInput(text=text))
    return sub

async def stop(s):
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 5)

async def test_interrupt_keeps_the_result_of_a_call_that_already_finished(llm_server, monkeypatch, tmp_path):
    llm_server.script(
        ToolCalls([Call("w1", "write", json.dumps({"path": "done.txt", "content": "hello"})),
                   Call("b1", "bash", json.dumps({"command": "sleep 30"}))]),
        Text("ok"),
    )
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "go")
    evs = await collect_until(sub, stop={"tool_state"})
    for _ in range(200):
        if (tmp_path / "work" / "done.txt").exists():
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    s.submit(Interrupt())
    evs += await collect_until(sub, stop={"interrupted"})
    assert (tmp_path / "work" / "done.txt").read_text() == "hello"   # the write really happened
    res = {e.message["tool_call_id"]: e.message["content"] for e in s.engine.history.entries if e.message.get("role") == "tool"}
    await stop(s)
    assert "Cancelled" not in res["w1"], "completed write reported to the model as cancelled"


async def test_compact_while_an_approval_waits_gives_one_result_per_call(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("p1", "bash", '{"command": "echo hi"}')]), Text("SUMMARY"), Text("done"))
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="ask")
    sub = await start(s, "run")
    await collect_until(sub)  # approval_required
    s.submit(Compact())
    await collect_until(sub, stop={"compacted", "error"})
    s.submit(ExecApproval(decisions=[ToolDecision(tool_call_id="p1", approved=True)]))
    await collect_until(sub)
    await stop(s)
    body = llm_server.requests[-1]
    ids = [m["tool_call_id"] for m in body["messages"] if m["role"] == "tool"]
    assert ids.count("p1") == 1, "duplicate results for one call id reach the provider"


async def test_text_of_a_failed_turn_never_reappears_on_a_later_interrupt(llm_server, monkeypatch, tmp_path):
    cfg = Config(llm=LLMSettings(max_attempts=1))
    llm_server.script(
        ToolCalls([Call("a1", "bash", '{"command": "echo one"}')]),
        ToolCalls([Call("a2", "bash", '{"command": "echo two"}')]),
        Text("first done"),
        Disconnect(after_text="Half an answer"),
        Hang(seconds=20),
    )
    s = make_session(llm_server, monkeypatch, tmp_path, config=cfg)
    s.engine.context.tail_ratio = 0.0
    sub = await start(s, "hi")
    await collect_until(sub)
    s.submit(UserInput(text="second"))
    evs = await collect_until(sub)
    assert evs[-1].type == "error", evs[-1]
    s.submit(Compact())
    await asyncio.to_thread(llm_server.wait_for_request, 5)
    await asyncio.sleep(0.2)
    s.submit(Interrupt())
    evs = await collect_until(sub, stop={"interrupted"})
    assert not evs[-1].partial_text, "stale text from the failed turn re-appended on a later interrupt"


async def test_the_model_sees_the_arguments_the_user_edited(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("e1", "bash", json.dumps({"command": "echo model-version > out.txt"}))]), Text("done"))
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="ask")
    sub = await start(s, "write")
    await collect_until(sub)
    s.submit(ExecApproval(decisions=[ToolDecision(tool_call_id="e1", approved=True, edited_args={"command": "echo user-version > other.txt"})]))
    await collect_until(sub)
    msgs = [m for m in llm_server.requests[-1]["messages"] if m["role"] in ("assistant", "tool")]
    assert "other.txt" in json.dumps(msgs), "model never learns what actually ran"


async def test_results_after_approval_are_in_call_order(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("h1", "bash", '{"command": "echo one"}'), Call("h2", "bash", '{"command": "echo two"}')]), Text("done"))
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="ask")
    sub = await start(s, "run")
    await collect_until(sub)
    s.submit(ExecApproval(decisions=[ToolDecision(tool_call_id="h1", approved=True), ToolDecision(tool_call_id="h2", approved=False)]))
    await collect_until(sub)
    await stop(s)
    ids = [m["tool_call_id"] for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert ids == ["h1", "h2"]


async def test_interrupt_right_after_submitting_stops_that_turn(llm_server, monkeypatch, tmp_path):
    llm_server.script(Text("full answer", delay=0.05, chunk_chars=1))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = s.subscribe("t")
    s.start()
    await asyncio.sleep(0.05)
    s.submit(UserInput(text="hi"))
    s.submit(Interrupt())
    evs = await collect_until(sub)
    await stop(s)
    assert evs[-1].type == "interrupted", "interrupt submitted right after the prompt was ignored"


async def test_cancelling_the_session_task_mid_turn_stops_the_session(llm_server, monkeypatch, tmp_path):
    llm_server.script(Hang(after_text="thinking", seconds=20))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "hi")
    await collect_until(sub, stop={"assistant_chunk"})
    s._runner.cancel()
    for _ in range(50):  # done within the same 0.5 s as before, checked every 10 ms
        if s._runner.done():
            break
        await asyncio.sleep(0.01)
    assert s._runner.done(), "Session.run swallowed its own cancellation and is still waiting for ops"


async def test_interrupt_is_fast_even_when_a_command_ignores_sigterm(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("t1", "bash", json.dumps({"command": "trap '' TERM; echo started; sleep 30"}))]), Text("ok"))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "go")
    await collect_until(sub, stop={"tool_state"})
    await asyncio.sleep(0.5)
    t0 = time.monotonic()
    s.submit(Interrupt())
    await collect_until(sub, stop={"interrupted"})
    dt = time.monotonic() - t0
    assert dt < 1.0


async def test_a_cut_off_answer_and_its_continuation_are_one_final_answer(llm_server, monkeypatch, tmp_path):
    llm_server.script(Text("PART ONE of a long report. ", finish_reason="length"), Text("PART TWO, the end."))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "report")
    evs = await collect_until(sub)
    assert "PART ONE" in evs[-1].final_response


async def test_refused_attempts_cost_zero_not_unknown(llm_server, monkeypatch, tmp_path):
    llm_server.script(HTTPError(429, "Rate limit", headers={"Retry-After": "0"}), HTTPError(503, "busy"), Text("ok"))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "hi")
    evs = await collect_until(sub)
    r = evs[-1].receipt
    assert r.llm_calls == 3 and r.unknown_cost_calls == 1  # two refusals cost $0 for certain


async def test_an_empty_stream_on_the_litellm_path(llm_server, monkeypatch, tmp_path):
    """The empty-stream healing of the direct transport (tests/test_direct_transport.py), through
    litellm's streaming: an empty stream with tools goes non-streaming. (litellm reports "stop"
    for a stream that ended without a finish reason, so a cut stream is only caught on the
    direct transport; an empty one is caught on both.)"""
    import json as _json

    from agent.protocol import Shutdown, UserInput
    from tests.engine_support import collect_until, make_session, of_type
    from tests.fakes import Call, EmptyStream, Text, ToolCalls

    from agent.config import Config, LLMSettings

    session = make_session(llm_server, monkeypatch, tmp_path, config=Config(llm=LLMSettings(
        max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05, transport="litellm")))
    assert not session.client.uses_direct_stream(session.model)
    (tmp_path / "work" / "notes.txt").write_text("batch size 64\n")
    llm_server.script(EmptyStream(), ToolCalls([Call("r1", "read", _json.dumps({"path": "notes.txt"}))]),
                      Text("Batch size 64."))
    sub = session.subscribe("t")
    session.start()
    session.submit(UserInput(text="notes?"))
    events = await collect_until(sub, stop={"turn_complete", "error"}, timeout=30)
    assert events[-1].type == "turn_complete" and events[-1].final_response == "Batch size 64.", events[-1]
    assert [bool(r.get("stream")) for r in llm_server.requests] == [True, False, False]
    assert any("empty stream" in e.log for e in of_type(events, "tool_log"))
    session.submit(Shutdown())
    await session._runner
