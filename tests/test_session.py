"""Session ops, the event bus, pre-flight compaction, friendly errors and the system prompt."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.config import Config, LLMSettings
from agent.prompts.system import render_system_prompt
from agent.protocol import Compact, New, SetModel, Shutdown, Undo, UserInput
from agent.session import EventBus
from tests.engine_support import collect_until, local_tools, make_session, of_type
from tests.fakes import Call, HTTPError, Text, ToolCalls


async def run_ops(session, *ops, stop={"turn_complete", "error", "interrupted"}, count=1):
    sub = session.subscribe("t")
    session.start()
    for op in ops:
        session.submit(op)
    events = []
    for _ in range(count):
        events += await collect_until(sub, stop=stop)
    return sub, events


async def shutdown(session):
    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 5)


async def test_bus_fans_out_to_independent_subscribers():
    bus = EventBus()
    fast, slow = bus.subscribe("fast"), bus.subscribe("slow")
    from agent.protocol import Processing

    for i in range(1000):
        bus.publish(Processing(message=str(i)))
    # the fast subscriber reads everything while the slow one has read nothing
    got = [fast.get_nowait().message for _ in range(1000)]
    assert got == [str(i) for i in range(1000)] and slow.queue.qsize() == 1000
    slow.close()
    bus.publish(Processing())
    assert slow.queue.qsize() == 1000 and fast.queue.qsize() == 1


async def test_ops_are_processed_in_order(llm_server, monkeypatch, tmp_path):
    llm_server.script(Text("one"), Text("two"))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub, events = await run_ops(s, UserInput(text="first"), UserInput(text="second"), count=2)
    await shutdown(s)
    assert [e.final_response for e in of_type(events, "turn_complete")] == ["one", "two"]
    assert llm_server.requests[1]["messages"][-1] == {"role": "user", "content": "second"}
    assert [e.turn for e in of_type(events, "turn_complete")] == [1, 2]


async def test_preflight_compaction_before_the_window_is_full(llm_server, monkeypatch, tmp_path):
    script = iter([ToolCalls([Call(f"r{i}", "bash", json.dumps({
        "command": f"python3 -c \"import random; random.seed({i}); print(' '.join(str(random.random()) for _ in range(300)))\""}))])
        for i in range(6)] + [Text("done")])

    def reply(body):  # the summariser is called without tools, whenever the engine decides
        return Text("summary of the work") if "tools" not in body else next(script)

    llm_server.script(*[reply] * 12)
    cfg = Config(context_windows={"openai/scripted-model": 9000}, llm=LLMSettings(max_attempts=1))
    s = make_session(llm_server, monkeypatch, tmp_path, config=cfg, tools=local_tools())
    sub, events = await run_ops(s, UserInput(text="go"))
    await shutdown(s)
    compacted = of_type(events, "compacted")
    assert compacted and compacted[0].tokens_after < compacted[0].tokens_before
    assert compacted[0].tokens_before > 0.9 * 9000  # fired once over the threshold, before the call
    usage = of_type(events, "context_usage")
    assert all(u.window == 9000 and u.tokens <= u.threshold for u in usage)
    assert "compaction" in [c.kind for c in of_type(events, "llm_call")]
    assert events[-1].type == "turn_complete" and events[-1].final_response == "done"


async def test_compact_op_works_at_low_usage_and_releases_the_prompt(llm_server, monkeypatch, tmp_path):
    llm_server.script(
        ToolCalls([Call("c1", "bash", '{"command": "echo a"}')]),
        ToolCalls([Call("c2", "bash", '{"command": "echo b"}')]),
        Text("ok"),
        Text("The user asked for echo; a and b were printed."),
    )
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub, _ = await run_ops(s, UserInput(text="echo things"))
    s.engine.context.tail_ratio = 0.0
    s.submit(Compact(focus="what was printed"))
    events = await collect_until(sub, stop={"compacted", "error"})
    await shutdown(s)
    c = events[-1]
    assert c.type == "compacted" and c.method == "summary" and c.messages_after < c.messages_before
    assert "what was printed" in llm_server.requests[3]["messages"][-1]["content"]


async def test_undo_and_new(llm_server, monkeypatch, tmp_path):
    llm_server.script(Text("one"), Text("two"), Text("three"))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub, _ = await run_ops(s, UserInput(text="first"), UserInput(text="second"), count=2)
    s.submit(Undo())
    undo = (await collect_until(sub, stop={"undo_complete"}))[-1]
    assert undo.removed_messages == 2
    old_id = s.id
    s.submit(New())
    new = (await collect_until(sub, stop={"new_complete"}))[-1]
    assert new.previous_session_id == old_id and s.id != old_id and new.session_id == s.id
    s.submit(UserInput(text="fresh"))
    await collect_until(sub)
    await shutdown(s)
    assert [m["content"] for m in llm_server.requests[2]["messages"][1:]] == ["fresh"]


async def test_set_model_validates_and_reports(llm_server, monkeypatch, tmp_path):
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = s.subscribe("t")
    s.start()
    s.submit(SetModel(model="bad model id"))
    err = (await collect_until(sub, stop={"error"}))[-1]
    assert err.kind == "invalid_model" and s.model.id == "openai/scripted-model"
    s.submit(SetModel(model="ollama/qwen3"))
    changed = (await collect_until(sub, stop={"settings_changed"}))[-1]
    await shutdown(s)
    assert changed.model == "ollama/qwen3" and s.model.route == "local"
    assert "ollama/qwen3" in s.engine.history.entries[0].message["content"]


@pytest.mark.parametrize("status,message,kind,phrase", [
    (402, "You have exceeded your monthly included credits", "credits", "no credits left"),
    (404, "The model `scripted-model` does not exist", "unknown_model", "does not know the model"),
])
async def test_friendly_provider_errors(llm_server, monkeypatch, tmp_path, status, message, kind, phrase):
    llm_server.script(HTTPError(status, message))
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub, events = await run_ops(s, UserInput(text="hi"))
    await shutdown(s)
    assert events[-1].type == "error" and events[-1].kind == kind and phrase in events[-1].message
    assert len(llm_server.requests) == 1


async def test_missing_key_is_reported_before_any_request(monkeypatch, tmp_path):
    from agent.session import Session

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    s = Session(Config(), model_id="anthropic/claude-sonnet-4-5", cwd=tmp_path)
    sub, events = await run_ops(s, UserInput(text="hi"))
    await shutdown(s)
    assert events[-1].kind == "auth" and "set ANTHROPIC_API_KEY" in events[-1].message


def test_system_prompt_has_tools_local_time_cwd_and_user(tmp_path):
    tz = timezone(timedelta(hours=-5), "EST")
    text = render_system_prompt(tool_names=["bash", "read"], cwd=tmp_path, hf_username="ada",
                                model_label="demo", now=datetime(2026, 3, 4, 5, 6, tzinfo=tz))
    assert "Tools (2): bash, read" in text and str(tmp_path) in text and "Hugging Face user: ada" in text
    assert "2026-03-04 05:06 EST (UTC-05:00)" in text
    for theme in ("out of date", "Smoke-test", "plan_tool", "push_to_hub", "Be concise", "Keep working"):
        assert theme in text


async def test_hf_username_is_looked_up_in_the_background(monkeypatch, tmp_path, llm_server):
    seen = []

    class Whoami(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("authorization")))
            if self.path.startswith("/api/whoami"):
                body = json.dumps({"name": "ada-lovelace", "type": "user", "orgs": []}).encode()
                self.send_response(200)
            else:
                body = b"{}"
                self.send_response(404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Whoami)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        import huggingface_hub.constants as hf_constants

        # huggingface_hub reads HF_HUB_OFFLINE once at import; this test points it at a loopback Hub
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("HF_TOKEN", "hf_testtoken")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        llm_server.script(Text("hello ada"))
        s = make_session(llm_server, monkeypatch, tmp_path)
        assert "unknown" in s.engine.history.entries[0].message["content"]
        sub = s.subscribe("t")
        s.start()
        for _ in range(200):
            if s.hf_username:
                break
            await asyncio.sleep(0.02)
        assert s.hf_username == "ada-lovelace"
        assert ("/api/whoami-v2", "Bearer hf_testtoken") in seen
        s.submit(UserInput(text="who am I?"))
        await collect_until(sub)
        await shutdown(s)
        assert "Hugging Face user: ada-lovelace" in llm_server.requests[0]["messages"][0]["content"]
    finally:
        server.shutdown()
