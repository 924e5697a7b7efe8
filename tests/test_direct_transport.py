"""The direct OpenAI-compatible stream (local servers, the HF router) against the same
scripted loopback server: same behaviour as the litellm path, without litellm's per-event cost."""

from __future__ import annotations

import asyncio
import json
import time

from agent.config import Config, LLMSettings
from agent.protocol import Interrupt, Shutdown, UserInput
from tests.engine_support import collect_until, of_type
from tests.fakes import Call, Disconnect, Hang, HTTPError, Text, ToolCalls


def make(llm_server, monkeypatch, tmp_path, **kw):
    from agent.session import Session

    monkeypatch.setenv("VLLM_BASE_URL", llm_server.base_url)
    cfg = kw.pop("config", None) or Config(llm=LLMSettings(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05))
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    s = Session(cfg, model_id="vllm/scripted-model", cwd=work, **kw)
    assert s.client.uses_direct_stream(s.model)
    return s


async def run(s, text):
    sub = s.subscribe("t")
    s.start()
    s.submit(UserInput(text=text))
    return sub


async def stop(s):
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 5)


async def test_text_and_tool_calls_stream_directly(llm_server, monkeypatch, tmp_path):
    llm_server.script(
        ToolCalls([Call("d1", "bash", json.dumps({"command": "echo direct"})), Call("d2", "read", '{"path": "none"}')],
                  content="Let me check."),
        Text("Done **directly**.", chunk_chars=3),
    )
    s = make(llm_server, monkeypatch, tmp_path)
    sub = await run(s, "go")
    events = await collect_until(sub)
    await stop(s)
    assert events[-1].type == "turn_complete" and events[-1].final_response == "Done **directly**."
    assert "direct" in of_type(events, "tool_output")[0].output
    first = llm_server.requests[0]
    assert first["model"] == "scripted-model" and first["stream_options"] == {"include_usage": True}
    assert first["tool_choice"] == "auto" and len(first["tools"]) == len(s.router)
    tool_msgs = [m for m in llm_server.requests[1]["messages"] if m["role"] == "tool"]
    assert [set(m) for m in tool_msgs] == [{"role", "tool_call_id", "content"}] * 2  # wire schema only
    r = events[-1].receipt
    assert r.usage.prompt_tokens > 0 and r.llm_cost_usd == 0 and r.unknown_cost_calls == 0  # a local server costs $0

async def test_retry_after_and_exhaustion(llm_server, monkeypatch, tmp_path):
    llm_server.script(HTTPError(429, "slow down", headers={"Retry-After": "1"}), Text("after wait"))
    s = make(llm_server, monkeypatch, tmp_path)
    sub = await run(s, "hi")
    t0 = time.monotonic()
    events = await collect_until(sub)
    assert time.monotonic() - t0 >= 0.95 and events[-1].final_response == "after wait"
    llm_server.script(*[HTTPError(503, "busy")] * 3)
    s.submit(UserInput(text="again"))
    events = await collect_until(sub)
    await stop(s)
    assert events[-1].type == "error" and "Gave up after 3 attempts" in events[-1].message


async def test_errors_are_classified_like_litellms(llm_server, monkeypatch, tmp_path):
    llm_server.script(HTTPError(400, "Request too large", code="context_length_exceeded"), Text("fits now"),
                      HTTPError(401, "bad key"))
    s = make(llm_server, monkeypatch, tmp_path)
    sub = await run(s, "hi")
    events = await collect_until(sub)
    assert events[-1].final_response == "fits now" and of_type(events, "compacted")
    s.submit(UserInput(text="again"))
    events = await collect_until(sub)
    await stop(s)
    assert events[-1].type == "error" and events[-1].kind == "auth" and "VLLM_API_KEY" not in events[-1].message


async def test_dropped_stream_retries_and_interrupt_is_prompt(llm_server, monkeypatch, tmp_path):
    llm_server.script(Disconnect(after_text="par"), Text("whole"), Hang(after_text="thinking", seconds=20))
    s = make(llm_server, monkeypatch, tmp_path)
    sub = await run(s, "hi")
    events = await collect_until(sub)
    assert events[-1].final_response == "whole" and any(c.reset for c in of_type(events, "assistant_chunk"))
    s.submit(UserInput(text="long"))
    await collect_until(sub, stop={"assistant_chunk"})
    t0 = time.monotonic()
    s.submit(Interrupt())
    events = await collect_until(sub, stop={"interrupted"})
    await stop(s)
    assert time.monotonic() - t0 < 1.0


async def test_read_pacer_probes_the_loop_once_per_pass_and_pauses_only_after_a_real_wait():
    """Pieces taken from httpx's buffer come back without the loop running: they must not
    count as a wait (no pause) nor cost a callback each (18,000 per long answer)."""
    from agent.llm.direct import _ReadPacer

    loop = asyncio.get_running_loop()
    probes: list[object] = []
    real_call_soon = loop.call_soon

    def counting_call_soon(callback, *args, **kwargs):
        probes.append(callback)
        return real_call_soon(callback, *args, **kwargs)

    loop.call_soon = counting_call_soon  # type: ignore[method-assign]
    try:
        pacer = _ReadPacer(0.005)
        for _ in range(_ReadPacer.WARMUP - 1):  # short answers: no probe, no pause
            pacer.mark()
        assert probes == []
        for _ in range(500):  # buffered pieces: one probe for all of them, no wait seen
            pacer.mark()
        assert len(probes) == 1 and not pacer.waited
        await asyncio.sleep(0)  # the loop ran: the next piece had to be waited for
        assert pacer.waited
        started = time.monotonic()
        await pacer.pause_if_waited()
        assert time.monotonic() - started >= 0.004 and pacer.slept
        pacer.mark()
        await asyncio.sleep(0)
        await pacer.pause_if_waited()  # the pass after our own sleep is not a wait
        assert not pacer.slept and len([p for p in probes if p == pacer._ran]) == 2
    finally:
        del loop.call_soon


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when this returns: nothing listens there


async def test_a_local_server_that_is_not_running_fails_at_once_naming_the_url(monkeypatch, tmp_path):
    """With the default retry settings (six attempts, seconds of backoff) a refused loopback
    connection used to take ~54 s and never said which URL: now one attempt, a sentence with
    the URL and the variable to set, on both transports."""
    from agent.session import Session

    port = _closed_port()
    for model_id, variable, url_var in (("llamacpp/smollm2", "LLAMACPP_BASE_URL", "LLAMACPP_BASE_URL"),
                                        ("openai/local-model", "OPENAI_BASE_URL", "OPENAI_BASE_URL")):
        monkeypatch.setenv(url_var, f"http://127.0.0.1:{port}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        s = Session(Config(), model_id=model_id, cwd=work)
        await asyncio.to_thread(s.warm_up)  # the tokenizer, loaded before "ready" as the app does
        sub = await run(s, "hello")
        events = await collect_until(sub, stop={"error", "turn_complete"}, timeout=30)
        [error] = of_type(events, "error")
        took = error.ts - of_type(events, "processing")[0].ts  # from the turn's start to the error
        assert f"http://127.0.0.1:{port}/v1" in error.message and variable in error.message, error.message
        assert "connection refused" in error.message and took < 2.0, (took, model_id)
        assert len(of_type(events, "llm_call")) == 1  # no retries
        assert not [e for e in of_type(events, "tool_log") if "Retrying" in e.log]
        await stop(s)


async def test_a_server_that_streams_nothing_when_offered_tools_is_asked_without_streaming(llm_server, monkeypatch,
                                                                                           tmp_path):
    """llama.cpp's server answers tool requests with an empty 200 stream but proper replies
    without streaming: the agent asks again without streaming, reads the file, answers, and
    its next request goes straight to non-streaming."""
    from tests.fakes import EmptyStream

    s = make(llm_server, monkeypatch, tmp_path)
    (tmp_path / "work" / "notes.txt").write_text("the learning rate was 3e-4\n")
    llm_server.script(EmptyStream(), ToolCalls([Call("r1", "read", json.dumps({"path": "notes.txt"}))]),
                      Text("The notes say the learning rate was 3e-4."))
    sub = await run(s, "what do the notes say?")
    events = await collect_until(sub, stop={"turn_complete", "error"}, timeout=30)
    done = events[-1]
    assert done.type == "turn_complete" and done.final_response == "The notes say the learning rate was 3e-4."
    assert "3e-4" in of_type(events, "tool_output")[0].output
    assert [bool(r.get("stream")) for r in llm_server.requests] == [True, False, False]
    assert any("empty stream" in e.log for e in of_type(events, "tool_log"))
    assert of_type(events, "assistant_message")[-1].content == done.final_response  # shown, in one piece
    await stop(s)
    # remembered on disk: the next session's first request with tools does not stream
    later = make(llm_server, monkeypatch, tmp_path)
    llm_server.script(Text("Still 3e-4."))
    sub = await run(later, "and now?")
    events = await collect_until(sub, stop={"turn_complete", "error"}, timeout=30)
    assert events[-1].type == "turn_complete" and events[-1].final_response == "Still 3e-4."
    assert bool(llm_server.requests[-1].get("stream")) is False
    await stop(later)


async def test_a_stream_cut_without_a_finish_reason_is_retried_not_taken_as_the_answer(llm_server, monkeypatch,
                                                                                      tmp_path):
    s = make(llm_server, monkeypatch, tmp_path)
    llm_server.script(Text("The answer is", finish_reason=None), Text("The answer is 42."))
    sub = await run(s, "what is it?")
    events = await collect_until(sub, stop={"turn_complete", "error"}, timeout=30)
    assert events[-1].type == "turn_complete" and events[-1].final_response == "The answer is 42."
    assert len(llm_server.requests) == 2 and all(r.get("stream") for r in llm_server.requests)
    assert any("stopped before it ended" in e.log for e in of_type(events, "tool_log"))
    await stop(s)


async def test_a_200_that_is_not_an_answer_is_an_error_that_is_retried(llm_server, monkeypatch, tmp_path):
    """A proxy's HTML page and a JSON body without choices are never a finished empty answer:
    each is retried, and when they persist the error names what came."""
    from tests.fakes._loopback import RawResponse

    html = RawResponse(200, b"<html><title>Sign in</title><body>portal</body></html>", "text/html; charset=utf-8")
    no_choices = RawResponse(200, json.dumps({"id": "x", "choices": []}).encode(), "application/json")
    llm_server.script(html, no_choices, Text("real answer"))
    s = make(llm_server, monkeypatch, tmp_path)
    sub = await run(s, "hi")
    events = await collect_until(sub, stop={"turn_complete", "error"})
    assert events[-1].type == "turn_complete" and events[-1].final_response == "real answer"
    notes = [e.log for e in of_type(events, "tool_log")]
    assert any("text/html" in n and "Sign in" in n and "Retrying" in n for n in notes), notes
    assert any("no choices" in n and "Retrying" in n for n in notes), notes
    llm_server.script(*[html] * 3)
    s.submit(UserInput(text="again"))
    events = await collect_until(sub, stop={"turn_complete", "error"})
    await stop(s)
    assert events[-1].type == "error" and "text/html" in events[-1].message and "Gave up after 3" in events[-1].message


async def test_a_server_that_ignores_stream_is_read_as_one_answer(llm_server, monkeypatch, tmp_path):
    """Some servers answer ``stream: true`` with a plain JSON completion: it is the answer."""
    from tests.fakes._loopback import RawResponse

    whole = {"id": "c1", "model": "scripted-model", "usage": {"prompt_tokens": 12, "completion_tokens": 3},
             "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                 "role": "assistant", "content": "Reading.", "tool_calls": [
                     {"id": "r1", "type": "function", "function": {"name": "read", "arguments": '{"path": "a.txt"}'}}]}}]}
    llm_server.script(RawResponse(200, json.dumps(whole).encode(), "application/json"), Text("It says hi."))
    s = make(llm_server, monkeypatch, tmp_path)
    (tmp_path / "work" / "a.txt").write_text("hi\n")
    sub = await run(s, "read a.txt")
    events = await collect_until(sub, stop={"turn_complete", "error"})
    await stop(s)
    assert events[-1].type == "turn_complete" and events[-1].final_response == "It says hi."
    assert "hi" in of_type(events, "tool_output")[0].output
    assert of_type(events, "llm_call")[0].usage.prompt_tokens == 12
