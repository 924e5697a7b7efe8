"""The turn engine end to end: a real Session, real litellm, real tools, and a scripted
OpenAI-compatible server on 127.0.0.1 standing in for the provider."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from agent.config import Config, LLMSettings
from agent.protocol import ExecApproval, Interrupt, ToolDecision, UserInput
from tests.engine_support import collect_until, last_approval, local_tools, make_session, of_type
from tests.fakes import Call, Hang, HTTPError, Text, ToolCalls


def tool_results(body: dict) -> dict[str, str]:
    return {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}


def assert_every_call_answered(body: dict) -> None:
    msgs = body["messages"]
    for i, m in enumerate(msgs):
        for call in m.get("tool_calls") or []:
            following = []
            for n in msgs[i + 1:]:
                if n["role"] != "tool":
                    break
                following.append(n["tool_call_id"])
            assert call["id"] in following, f"call {call['id']} has no result right after it"


async def start(session, text: str):
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text=text))
    return sub


async def stop(session):
    from agent.protocol import Shutdown

    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 5)


async def test_streamed_text_answer(llm_server, monkeypatch, tmp_path):
    # paced chunks arrive in separate reads and stream out as separate events; chunks that
    # arrive together are coalesced into one event (see test_chunks_from_one_read_...)
    llm_server.script(Text("Hello **world**, here is a plan.", chunk_chars=5, delay=0.03))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "hi")
    events = await collect_until(sub)
    await stop(s)
    chunks = of_type(events, "assistant_chunk")
    assert len(chunks) > 3 and "".join(c.content for c in chunks) == "Hello **world**, here is a plan."
    done = events[-1]
    assert done.type == "turn_complete" and done.final_response == "Hello **world**, here is a plan."
    assert done.receipt.llm_calls == 1 and done.receipt.usage.prompt_tokens > 0
    assert done.receipt.unknown_cost_calls == 1  # no price known for this model: flagged, not $0
    calls = of_type(events, "llm_call")
    assert len(calls) == 1 and calls[0].kind == "main" and calls[0].cost_usd is None
    body = llm_server.requests[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert {t["function"]["name"] for t in body["tools"]} >= {"bash", "read", "write", "edit", "plan_tool"}
    assert body["messages"][0]["role"] == "system" and body["messages"][-1] == {"role": "user", "content": "hi"}
    assert [e.seq for e in events] == sorted(e.seq for e in events)


async def test_known_price_gives_a_cost(llm_server, monkeypatch, tmp_path):
    from tests.fakes import Usage

    llm_server.script(Text("ok", usage=Usage(1_000_000, 100_000, cached_tokens=400_000)))
    cfg = Config(model_prices={"openai/scripted-model": {"input_per_mtok": 1.0, "output_per_mtok": 10.0, "cache_read_per_mtok": 0.1}})
    s = make_session(llm_server, monkeypatch, tmp_path, config=cfg)
    sub = await start(s, "hi")
    events = await collect_until(sub)
    await stop(s)
    r = events[-1].receipt
    assert r.usage.cache_read_tokens == 400_000
    # 600k plain at $1 + 400k cached at $0.10 + 100k out at $10
    assert r.llm_cost_usd == pytest.approx(0.6 + 0.04 + 1.0)
    assert r.unknown_cost_calls == 0 and r.session_cost_usd == pytest.approx(1.64)


async def test_streamed_tool_calls_run_concurrently_and_results_keep_call_order(llm_server, monkeypatch, tmp_path):
    llm_server.script(
        ToolCalls([
            Call("call_slow", "bash", json.dumps({"command": "sleep 0.6; echo slow-done"})),
            Call("call_fast", "bash", json.dumps({"command": "echo fast-done"})),
        ], content="Running two commands."),
        Text("Both finished."),
    )
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "run them")
    t0 = time.monotonic()
    events = await collect_until(sub)
    elapsed = time.monotonic() - t0
    await stop(s)
    outputs = of_type(events, "tool_output")
    # the fast one finishes first but results go into history in call order
    assert [o.tool_call_id for o in outputs] == ["call_slow", "call_fast"]
    assert "slow-done" in outputs[0].output and "fast-done" in outputs[1].output
    second = llm_server.requests[1]["messages"]
    tool_msgs = [m for m in second if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == ["call_slow", "call_fast"]
    assert elapsed < 5
    assert events[-1].type == "turn_complete" and events[-1].final_response == "Both finished."
    assert of_type(events, "assistant_message")[0].content == "Running two commands."


async def test_malformed_arguments_and_unknown_tool_are_error_results_not_crashes(llm_server, monkeypatch, tmp_path):
    llm_server.script(
        ToolCalls([Call("c1", "write", '{"path": "a.txt", "content": "unterminated')]),
        ToolCalls([Call("c2", "write", '{"path": "a.txt", content}')]),
        ToolCalls([Call("c3", "teleport", '{"to": "mars"}'), Call("c4", "bash", '{"command": 42}')]),
        Text("I'll stop here."),
    )
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "write a file")
    events = await collect_until(sub)
    await stop(s)
    assert events[-1].type == "turn_complete"
    r2 = tool_results(llm_server.requests[1])
    assert "malformed JSON" in r2["c1"] and "NOT executed" in r2["c1"]
    # the malformed arguments are not echoed back to the provider
    a1 = [m for m in llm_server.requests[1]["messages"] if m.get("tool_calls")][0]
    assert a1["tool_calls"][0]["function"]["arguments"] == "{}"
    # two malformed calls in a row for one tool -> the guidance is injected once
    third = llm_server.requests[2]["messages"]
    assert any("Repeated malformed tool arguments detected for 'write'" in (m.get("content") or "") for m in third)
    assert len(of_type(events, "guard")) == 1 and of_type(events, "guard")[0].kind == "malformed_args"
    r3 = tool_results(llm_server.requests[3])
    assert "Unknown tool 'teleport'" in r3["c3"] and "NOT executed" in r3["c3"]
    assert "invalid arguments" in r3["c4"] and "command" in r3["c4"]
    assert not (tmp_path / "work" / "a.txt").exists()


async def test_rate_limit_with_retry_after_then_success(llm_server, monkeypatch, tmp_path):
    llm_server.script(HTTPError(429, "Rate limit reached", headers={"Retry-After": "1"}), Text("finally"))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "hi")
    t0 = time.monotonic()
    events = await collect_until(sub)
    waited = time.monotonic() - t0
    await stop(s)
    assert events[-1].type == "turn_complete" and events[-1].final_response == "finally"
    assert waited >= 0.95, "Retry-After: 1 was not honoured"
    notes = [e for e in of_type(events, "tool_log") if e.tool == "system"]
    assert notes and "429" in notes[0].log and "attempt 2 of 3" in notes[0].log
    calls = of_type(events, "llm_call")
    assert [c.error is not None for c in calls] == [True, False]
    assert len(llm_server.requests) == 2  # no hidden SDK retries on top of ours


async def test_server_errors_until_retries_run_out(llm_server, monkeypatch, tmp_path):
    llm_server.script(*[HTTPError(500, "upstream exploded") for _ in range(3)])
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "hi")
    events = await collect_until(sub)
    await stop(s)
    err = events[-1]
    assert err.type == "error" and err.kind == "server" and "Gave up after 3 attempts" in err.message
    assert len(llm_server.requests) == 3
    # the session survives: the next prompt works
    llm_server.script(Text("back"))
    s2 = make_session(llm_server, monkeypatch, tmp_path)
    sub2 = await start(s2, "again")
    assert (await collect_until(sub2))[-1].final_response == "back"
    await stop(s2)


async def test_auth_error_is_friendly_and_not_retried(llm_server, monkeypatch, tmp_path):
    llm_server.script(HTTPError(401, "Incorrect API key provided", code="invalid_api_key"))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "hi")
    events = await collect_until(sub)
    await stop(s)
    assert events[-1].type == "error" and events[-1].kind == "auth"
    assert "OPENAI_API_KEY" in events[-1].message
    assert len(llm_server.requests) == 1


async def test_context_overflow_compacts_and_retries_once(llm_server, monkeypatch, tmp_path):
    # a first turn with a few tool round trips gives the compactor a middle to summarise
    llm_server.script(
        ToolCalls([Call("a1", "bash", '{"command": "echo one"}')]),
        ToolCalls([Call("a2", "bash", '{"command": "echo two"}')]),
        ToolCalls([Call("a3", "bash", '{"command": "echo three"}')]),
        Text("first turn done"),
        HTTPError(400, "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
                  code="context_length_exceeded"),
        Text("SUMMARY: ran echo one/two/three."),
        Text("second turn done"),
    )
    cfg = Config(llm=LLMSettings(max_attempts=2, backoff_base_s=0.01), context_windows={"openai/scripted-model": 8192})
    s = make_session(llm_server, monkeypatch, tmp_path, config=cfg, tools=local_tools())
    s.engine.context.tail_ratio = 0.0  # keep only the newest unit so the middle is non-empty
    sub = await start(s, "first")
    await collect_until(sub)
    s.submit(UserInput(text="second"))
    events = await collect_until(sub)
    await stop(s)
    assert events[-1].type == "turn_complete" and events[-1].final_response == "second turn done"
    compacted = of_type(events, "compacted")
    assert len(compacted) == 1 and compacted[0].method == "summary"
    assert "context is too long" in compacted[0].detail
    kinds = [c.kind for c in of_type(events, "llm_call")]
    assert kinds == ["main", "compaction", "main"]
    summary_req = llm_server.requests[5]
    assert "tools" not in summary_req  # the summariser cannot answer with a tool call
    final_msgs = llm_server.requests[6]["messages"]
    # the first prompt is kept verbatim; the summary follows it (joined: no two user messages in a row)
    assert final_msgs[1]["role"] == "user" and final_msgs[1]["content"].startswith("first\n\n[CONTEXT SUMMARY")
    assert "SUMMARY: ran echo one/two/three." in final_msgs[1]["content"]
    roles = [m["role"] for m in final_msgs]
    assert all(not (a == b == "user") for a, b in zip(roles, roles[1:]))
    assert_every_call_answered(llm_server.requests[6])


async def test_second_overflow_is_an_error_not_a_loop(llm_server, monkeypatch, tmp_path):
    msg = "prompt is too long: 300000 tokens > 200000 maximum"
    llm_server.script(HTTPError(400, msg), HTTPError(400, msg))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "hi")
    events = await collect_until(sub)
    await stop(s)
    assert events[-1].type == "error" and events[-1].kind == "context_overflow"
    assert len(llm_server.requests) == 2


async def test_doom_loop_guard_fires_once_with_its_cost(llm_server, monkeypatch, tmp_path):
    same = Call("x", "bash", '{"command": "echo stuck"}')
    replies = [ToolCalls([Call(f"d{i}", same.name, same.arguments)]) for i in range(5)]
    llm_server.script(*replies, Text("I changed approach."))
    cfg = Config(llm=LLMSettings(max_attempts=1), model_prices={"openai/scripted-model": {"input_per_mtok": 2.0, "output_per_mtok": 8.0}})
    s = make_session(llm_server, monkeypatch, tmp_path, config=cfg)
    sub = await start(s, "loop please")
    events = await collect_until(sub)
    await stop(s)
    guards = of_type(events, "guard")
    assert [g.kind for g in guards] == ["doom_loop"]
    assert guards[0].tokens_spent > 0 and guards[0].cost_usd > 0
    guarded = [i for i, body in enumerate(llm_server.requests)
               if any("REPETITION GUARD" in (m.get("content") or "") for m in body["messages"])]
    assert guarded and guarded[0] == 3  # injected right after the third identical call
    guard_msgs = [m for m in llm_server.requests[-1]["messages"] if "REPETITION GUARD" in (m.get("content") or "")]
    assert len(guard_msgs) == 1  # not re-injected while the same loop continues


async def test_iteration_cap_is_a_visible_stop(llm_server, monkeypatch, tmp_path):
    llm_server.script(*[ToolCalls([Call(f"i{i}", "bash", json.dumps({"command": f"echo {i}"}))]) for i in range(2)])
    s = make_session(llm_server, monkeypatch, tmp_path, max_iterations=2)
    sub = await start(s, "go")
    events = await collect_until(sub)
    await stop(s)
    guard = of_type(events, "guard")[-1]
    assert guard.kind == "iteration_cap" and guard.ends_turn and "2 model calls" in guard.message
    assert events[-1].type == "turn_complete" and events[-1].reason == "iteration_cap"
    assert len(llm_server.requests) == 2


async def test_truncated_tool_calls_are_dropped_and_explained(llm_server, monkeypatch, tmp_path):
    llm_server.script(
        ToolCalls([Call("t1", "write", '{"path": "big.py", "content": "x = 1')], content="Writing…", finish_reason="length"),
        Text("Will write it in parts."),
    )
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "write a big file")
    events = await collect_until(sub)
    await stop(s)
    assert [g.kind for g in of_type(events, "guard")] == ["truncation"]
    assert not of_type(events, "tool_call")
    second = llm_server.requests[1]["messages"]
    assert "output token limit" in second[-1]["content"] and "write" in second[-1]["content"]
    assert not any(m.get("tool_calls") for m in second)
    assert not (tmp_path / "work" / "big.py").exists()


async def test_continuation_guard_at_most_twice(llm_server, monkeypatch, tmp_path):
    plan = {"todos": [{"id": "1", "content": "train", "status": "in_progress"}, {"id": "2", "content": "eval", "status": "pending"}]}
    llm_server.script(
        ToolCalls([Call("p1", "plan_tool", json.dumps(plan))]),
        Text("I think we're good."), Text("Still good."), Text("Really done."),
    )
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "plan it")
    events = await collect_until(sub)
    await stop(s)
    assert [g.kind for g in of_type(events, "guard")] == ["continuation", "continuation"]
    assert of_type(events, "plan_update")[0].plan[1].content == "eval"
    assert events[-1].type == "turn_complete" and events[-1].final_response == "Really done."
    assert "CONTINUATION GUARD" in llm_server.requests[2]["messages"][-1]["content"]


async def test_interrupt_during_streaming_keeps_partial_text(llm_server, monkeypatch, tmp_path):
    llm_server.script(Hang(after_text="Let me think about", seconds=20), Text("fresh answer"))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "long answer please")
    streamed = ""
    while streamed != "Let me think about":  # the hang starts after the whole prefix is sent
        streamed += (await collect_until(sub, stop={"assistant_chunk"}))[-1].content
    t0 = time.monotonic()
    s.submit(Interrupt())
    events = await collect_until(sub, stop={"interrupted"}, timeout=5)
    assert time.monotonic() - t0 < 1.0
    assert events[-1].partial_text == "Let me think about"
    s.submit(UserInput(text="go on"))
    events = await collect_until(sub)
    await stop(s)
    assert events[-1].final_response == "fresh answer"
    msgs = llm_server.requests[1]["messages"]
    assert any(m["role"] == "assistant" and "Let me think about" in m["content"] for m in msgs)


async def test_interrupt_during_long_bash_kills_it(llm_server, monkeypatch, tmp_path):
    marker = tmp_path / "work" / "pid.txt"
    llm_server.script(
        ToolCalls([Call("b1", "bash", json.dumps({"command": f"echo $$ > {marker}; sleep 30; echo never"})),
                   Call("b2", "read", json.dumps({"path": "nothing-here.txt"}))]),
        Text("ok, stopped"),
    )
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "run it")
    await collect_until(sub, stop={"tool_state"})
    for _ in range(100):
        if marker.exists() and marker.read_text().strip():
            break
        await asyncio.sleep(0.02)
    pid = int(marker.read_text())
    t0 = time.monotonic()
    s.submit(Interrupt())
    events = await collect_until(sub, stop={"interrupted"}, timeout=5)
    assert time.monotonic() - t0 < 1.0
    assert {e.state for e in of_type(events, "tool_state")} >= {"cancelled"}
    await asyncio.sleep(0.1)
    alive = True
    try:
        import os

        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as fh:
            alive = fh.read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        alive = False
    assert not alive, "the bash process survived the interrupt"
    s.submit(UserInput(text="what happened?"))
    events = await collect_until(sub)
    await stop(s)
    body = llm_server.requests[1]
    assert_every_call_answered(body)
    assert "Cancelled" in tool_results(body)["b1"]


async def test_approval_suspend_and_approve(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("ap1", "bash", '{"command": "echo approved-run"}')]), Text("done"))
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="ask")
    sub = await start(s, "run")
    events = await collect_until(sub)
    req = last_approval(events)
    assert [i.tool for i in req.items] == ["bash"] and "ask" in req.items[0].reason
    assert not of_type(events, "tool_output") and len(llm_server.requests) == 1
    s.submit(ExecApproval(decisions=[ToolDecision(tool_call_id="ap1", approved=True)]))
    events = await collect_until(sub)
    await stop(s)
    assert "approved-run" in of_type(events, "tool_output")[0].output
    assert [e.state for e in of_type(events, "tool_state")][:2] == ["approved", "running"]
    assert events[-1].type == "turn_complete" and events[-1].final_response == "done"


async def test_approval_batch_with_feedback_and_edited_arguments(llm_server, monkeypatch, tmp_path):
    llm_server.script(
        ToolCalls([Call("r1", "bash", '{"command": "echo rejected-run"}'),
                   Call("r2", "bash", '{"command": "echo original"}'),
                   Call("r3", "read", '{"path": "missing.txt"}')]),
        Text("adjusted"),
    )
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="ask")
    sub = await start(s, "run")
    events = await collect_until(sub)
    req = last_approval(events)
    assert [i.tool_call_id for i in req.items] == ["r1", "r2"]  # one batch; read needs no approval
    assert of_type(events, "tool_output")[0].tool_call_id == "r3"
    s.submit(ExecApproval(decisions=[
        ToolDecision(tool_call_id="r1", approved=False, feedback="use a smaller\x1b[31m dataset"),
        ToolDecision(tool_call_id="r2", approved=True, edited_args={"command": "echo edited-by-user"}),
    ]))
    events = await collect_until(sub)
    await stop(s)
    results = tool_results(llm_server.requests[1])
    assert "rejected" in results["r1"] and "use a smaller[31m dataset" in results["r1"]
    assert "edited-by-user" in results["r2"] and "edited the arguments" in results["r2"]
    assert_every_call_answered(llm_server.requests[1])


async def test_new_text_while_approval_pending_abandons_the_calls(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("ab1", "bash", '{"command": "echo nope"}')]), Text("fine, something else"))
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="ask")
    sub = await start(s, "run")
    await collect_until(sub)
    s.submit(UserInput(text="actually, do something else"))
    events = await collect_until(sub)
    await stop(s)
    assert "abandoned" in [e.state for e in of_type(events, "tool_state")]
    body = llm_server.requests[1]
    assert "Abandoned" in tool_results(body)["ab1"]
    assert body["messages"][-1] == {"role": "user", "content": "actually, do something else"}
    assert events[-1].final_response == "fine, something else"


async def test_interrupt_while_approval_pending_cancels_it(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("ip1", "bash", '{"command": "echo nope"}')]))
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="ask")
    sub = await start(s, "run")
    await collect_until(sub)
    s.submit(Interrupt())
    events = await collect_until(sub, stop={"interrupted"}, timeout=5)
    await stop(s)
    assert "cancelled" in [e.state for e in of_type(events, "tool_state")]
    assert s.engine.pending is None


async def test_yolo_runs_gated_calls_without_asking(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("y1", "bash", '{"command": "echo yolo-ran"}')]), Text("done"))
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="yolo")
    sub = await start(s, "run")
    events = await collect_until(sub)
    await stop(s)
    assert not of_type(events, "approval_required")
    assert "yolo-ran" in of_type(events, "tool_output")[0].output


async def test_stream_dropped_mid_answer_is_retried_and_the_partial_text_reset(llm_server, monkeypatch, tmp_path):
    from tests.fakes import Disconnect

    llm_server.script(Disconnect(after_text="Half an ans"), Text("A whole answer."))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "hi")
    events = await collect_until(sub)
    await stop(s)
    chunks = of_type(events, "assistant_chunk")
    resets = [i for i, c in enumerate(chunks) if c.reset]
    assert len(resets) == 1
    assert "".join(c.content for c in chunks[resets[0] + 1:]) == "A whole answer."
    assert events[-1].final_response == "A whole answer."
    assert "Half an ans" not in json.dumps(llm_server.requests[1]["messages"])


async def test_chunks_from_one_read_go_out_as_one_event_before_what_follows(llm_server, monkeypatch, tmp_path):
    """1,000 chunks sent in one burst: a handful of assistant_chunk events, the text whole and
    in order, all of it before the llm_call and turn_complete that follow."""
    text = "".join(f"w{i} " for i in range(1000))
    llm_server.script(Text(text, chunk_chars=4))
    # the direct path (a local server) reads the burst in a few paced reads; litellm's
    # iterator may yield to the loop between chunks, so its count depends on machine load
    monkeypatch.setenv("VLLM_BASE_URL", llm_server.base_url)
    s = make_session(llm_server, monkeypatch, tmp_path, model_id="vllm/scripted-model")
    sub = await start(s, "hi")
    events = await collect_until(sub)
    await stop(s)
    chunks = of_type(events, "assistant_chunk")
    assert "".join(c.content for c in chunks) == text
    assert len(chunks) <= 1260 // 10  # not one per streamed chunk (1,260 of them)
    last_chunk = max(i for i, e in enumerate(events) if e.type == "assistant_chunk")
    first_call = min(i for i, e in enumerate(events) if e.type == "llm_call")
    assert last_chunk < first_call


async def test_an_overflow_stating_a_smaller_window_is_learned_and_remembered(llm_server, monkeypatch, tmp_path):
    """The config says 8,192; the server says 6,000: the window becomes 6,000 for this model
    now (compacting to fit) and in the next session."""
    llm_server.script(
        ToolCalls([Call("a1", "bash", '{"command": "echo one"}')]),
        ToolCalls([Call("a2", "bash", '{"command": "echo two"}')]),
        Text("first turn done"),
        HTTPError(400, "This model's maximum context length is 6000 tokens. However, your messages resulted in "
                       "7100 tokens.", code="context_length_exceeded"),
        Text("SUMMARY: ran echo one/two."),
        Text("second turn done"),
    )
    cfg = Config(llm=LLMSettings(max_attempts=2, backoff_base_s=0.01), context_windows={"openai/scripted-model": 8192})
    s = make_session(llm_server, monkeypatch, tmp_path, config=cfg, tools=local_tools())
    s.engine.context.tail_ratio = 0.0
    sub = await start(s, "first")
    await collect_until(sub)
    s.submit(UserInput(text="second"))
    events = await collect_until(sub)
    await stop(s)
    assert events[-1].type == "turn_complete" and events[-1].final_response == "second turn done"
    notes = [e.log for e in of_type(events, "tool_log") if "context window is 6,000 tokens" in e.log]
    assert len(notes) == 1 and "8,192" in notes[0]
    assert s.engine.window.tokens == 6000 and s.engine.context.window == 6000
    assert "6,000 tokens" in of_type(events, "compacted")[0].detail
    again = make_session(llm_server, monkeypatch, tmp_path, config=cfg, tools=local_tools())
    assert again.engine.window.tokens == 6000  # the config's larger figure does not undo what the server said


def test_windows_are_read_from_the_servers_own_words():
    from agent.llm.learned_windows import stated_window

    assert stated_window("This model's maximum context length is 8,192 tokens. However, ...") == 8192
    assert stated_window("the request exceeds the available context size (4096 tokens)") == 4096
    assert stated_window("prompt is too long: 210000 tokens > 200000 maximum") == 200000
    assert stated_window("context_length_exceeded") is None and stated_window("") is None


async def test_a_paused_repetition_guard_waits_for_a_remedy(llm_server, monkeypatch, tmp_path):
    """In the app the guard pauses the turn (no model call after it) with the repeated calls and
    the remedies; "continue" with a hint goes on with the guard's note and the hint."""
    from agent.protocol import Continue

    same = '{"command": "echo stuck"}'
    llm_server.script(*[ToolCalls([Call(f"d{i}", "bash", same)]) for i in range(3)],
                      Text("Reading the traceback instead."))
    s = make_session(llm_server, monkeypatch, tmp_path)
    s.engine_settings.pause_on_doom_loop = True
    sub = await start(s, "fix the tests")
    events = await collect_until(sub)
    [guard] = of_type(events, "guard")
    assert guard.ends_turn and guard.remedies == ["stop", "hint", "switch_model", "continue"]
    assert len(guard.repeated) == 3 and all(r.startswith("bash {") and "echo stuck" in r for r in guard.repeated)
    assert events[-1].type == "turn_complete" and events[-1].reason == "doom_loop"
    assert len(llm_server.requests) == 3  # paused before a fourth call
    s.submit(Continue(hint="read the traceback first"))
    events = await collect_until(sub)
    assert events[-1].final_response == "Reading the traceback instead."
    last = llm_server.requests[-1]["messages"]
    text = str(last[-1]["content"])  # consecutive user messages go out as one
    assert last[-1]["role"] == "user" and "REPETITION GUARD" in text and text.endswith("read the traceback first")
    await stop(s)


async def test_a_pinned_fact_survives_two_compactions_and_the_ledger_says_what_went(llm_server, monkeypatch, tmp_path):
    from agent.protocol import Compact, Pin

    s = make_session(llm_server, monkeypatch, tmp_path)
    s.engine.context.tail_ratio = 0.0001  # keep only the newest message: the rest is summarised
    sub = await start(s, "first task")
    llm_server.script(Text("one"))
    await collect_until(sub)
    s.submit(Pin(text="the eval set is test_clean.jsonl: never train on it"))
    await collect_until(sub, stop={"tool_log"})
    for n in range(3):
        llm_server.script(Text(f"answer {n} " + "x" * 200))
        s.submit(UserInput(text=f"step {n} " + "y" * 200))
        await collect_until(sub)
    s.submit(Compact(preview=True))
    preview = (await collect_until(sub, stop={"compaction_preview"}))[-1]
    assert preview.summarise and preview.pinned == ["the eval set is test_clean.jsonl: never train on it"]
    assert not preview.automatic and len(llm_server.requests) == 4  # a preview asks no model
    for _ in range(2):
        llm_server.script(Text("SUMMARY: the user runs numbered steps."), Text("ok"))
        s.submit(Compact())
        done = (await collect_until(sub, stop={"compacted", "error"}))[-1]
        assert done.type == "compacted" and done.summary.startswith("SUMMARY") and done.dropped
        s.submit(UserInput(text="and now?"))
        await collect_until(sub)
    system = llm_server.requests[-1]["messages"][0]["content"]
    assert "Pinned by the user" in system and "test_clean.jsonl" in system
    await stop(s)


async def test_arguments_too_deep_or_too_big_are_refused_with_a_result(llm_server, monkeypatch, tmp_path):
    deep = '{"command": ' + "[" * 1000 + "]" * 1000 + "}"
    huge = json.dumps({"path": "x.txt", "content": "y" * 4_100_000})
    llm_server.script(ToolCalls([Call("d1", "bash", deep), Call("h1", "write", huge)], fragment_chars=200_000),
                      Text("Sorry."))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = await start(s, "go")
    events = await collect_until(sub)
    await stop(s)
    outs = {e.tool_call_id: e.output for e in of_type(events, "tool_output")}
    assert "nest more than 64 levels" in outs["d1"] and "over the 4,000,000 limit" in outs["h1"]
    assert events[-1].type == "turn_complete" and events[-1].final_response == "Sorry."
    events_json = [e.model_dump_json() for e in events]  # everything serialises (stream-json, the store)
    assert all(len(j) < 1_000_000 for j in events_json)


async def test_a_reply_with_many_calls_runs_a_few_at_a_time(llm_server, monkeypatch, tmp_path):
    marker = tmp_path / "running"
    marker.mkdir()
    # each call notes itself while it runs; the most seen at once must stay within the cap
    command = (f"touch {marker}/$$; ls {marker} | wc -l >> {tmp_path}/peaks; sleep 0.2; rm {marker}/$$")
    llm_server.script(ToolCalls([Call(f"p{i}", "bash", json.dumps({"command": command})) for i in range(24)]),
                      Text("Done."))
    cfg = Config(llm=LLMSettings(max_attempts=1), max_parallel_tools=4)
    s = make_session(llm_server, monkeypatch, tmp_path, config=cfg)
    sub = await start(s, "many")
    events = await collect_until(sub, timeout=60)
    await stop(s)
    assert len(of_type(events, "tool_output")) == 24 and events[-1].type == "turn_complete"
    peaks = [int(line) for line in (tmp_path / "peaks").read_text().split()]
    assert len(peaks) == 24 and max(peaks) <= 4
