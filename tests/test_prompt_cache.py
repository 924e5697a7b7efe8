"""Prompt caching: Anthropic cache marks and OpenAI prompt_cache_key on the wire, thinking
blocks kept for Anthropic tool loops, and cache-read tokens in usage, costs and receipts."""

from __future__ import annotations

import json

import pytest

from agent.config import Config, LLMSettings
from agent.llm.client import LLMClient
from agent.llm.models import resolve_model
from agent.llm.pricing import cost_of, find_price, normalise_usage
from agent.llm.prompt_cache import EPHEMERAL, mark_anthropic, strip_thinking
from agent.protocol import New, Shutdown, Usage, UserInput
from tests.engine_support import collect_until, make_session, of_type
from tests.fakes import Call, Text, ToolCalls
from tests.fakes import Usage as OpenAIUsage
from tests.fakes.anthropic_server import AnthropicUsage, ScriptedAnthropicServer, Thinking

FAST = LLMSettings(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02)
TOOLS = [
    {"type": "function", "function": {"name": "read", "description": "read", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "bash", "description": "run", "parameters": {"type": "object", "properties": {}}}},
]


def test_marks_go_on_copies_only():
    history = [
        {"role": "system", "content": "you are helpful"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url", "image_url": {"url": "x"}}]},
    ]
    snapshot = json.dumps(history)
    tools_snapshot = json.dumps(TOOLS)
    messages, tools = mark_anthropic(history, TOOLS)
    assert messages[0]["content"] == [{"type": "text", "text": "you are helpful", "cache_control": EPHEMERAL}]
    assert messages[1]["content"] == "first"  # only the newest user-side message is marked
    assert messages[3]["content"][-1]["cache_control"] == EPHEMERAL and "cache_control" not in messages[3]["content"][0]
    assert "cache_control" not in tools[0] and tools[1]["cache_control"] == EPHEMERAL
    assert json.dumps(history) == snapshot and json.dumps(TOOLS) == tools_snapshot


def test_strip_thinking_copy_and_in_place():
    msg = {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}, {"type": "text", "text": "hi"}],
           "thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "s"}]}
    out, removed = strip_thinking([msg])
    assert removed == 2 and out[0]["content"] == [{"type": "text", "text": "hi"}] and "thinking_blocks" in msg
    strip_thinking([msg], in_place=True)
    assert "thinking_blocks" not in msg and msg["content"] == [{"type": "text", "text": "hi"}]


def test_anthropic_raw_usage_counts_the_cached_prompt():
    raw = {"input_tokens": 20, "output_tokens": 5, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 200}
    assert normalise_usage(raw) == Usage(prompt_tokens=1220, completion_tokens=5, cache_read_tokens=1000, cache_write_tokens=200)


@pytest.fixture
def anthropic(monkeypatch):
    with ScriptedAnthropicServer() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
        yield server


async def test_anthropic_request_carries_three_marks_and_cache_reads_are_cheaper(anthropic, tmp_path):
    model = resolve_model("anthropic/claude-sonnet-4-5", env={"ANTHROPIC_API_KEY": "sk-ant-test"})
    anthropic.script(Text("hello", usage=AnthropicUsage(20, 5, cache_read=1000, cache_creation=200)))
    events: list = []
    client = LLMClient(FAST, events.append)
    history = [{"role": "system", "content": "sys prompt"}, {"role": "user", "content": "hi"}]
    result = await client.stream(model, history, TOOLS)
    body = anthropic.requests[0]
    assert body["system"][-1]["cache_control"] == EPHEMERAL
    assert body["tools"][-1]["cache_control"] == EPHEMERAL and "cache_control" not in body["tools"][0]
    assert body["messages"][-1]["content"][-1] == {"type": "text", "text": "hi", "cache_control": EPHEMERAL}
    assert history[1] == {"role": "user", "content": "hi"}  # the stored history is untouched
    assert result.usage == Usage(prompt_tokens=1220, completion_tokens=5, cache_read_tokens=1000, cache_write_tokens=200)
    price, source = find_price(model)
    assert source == "litellm" and price.cache_read_per_mtok < price.input_per_mtok
    uncached = cost_of(price, Usage(prompt_tokens=1220, completion_tokens=5))
    assert result.cost_usd == cost_of(price, result.usage) and result.cost_usd < uncached
    assert of_type(events, "llm_call")[0].usage.cache_read_tokens == 1000


async def test_anthropic_tool_loop_keeps_thinking_and_the_receipt_counts_cache_reads(anthropic, monkeypatch, tmp_path):
    anthropic.script(
        Thinking("I should list the files.", "sig-1", ToolCalls([Call("toolu_1", "bash", '{"command": "echo hi"}')],
                                                               usage=AnthropicUsage(50, 10, cache_read=0, cache_creation=900))),
        Text("There is one file.", usage=AnthropicUsage(30, 8, cache_read=900, cache_creation=60)),
    )
    session = make_session(anthropic, monkeypatch, tmp_path, model_id="anthropic/claude-sonnet-4-5",
                           config=Config(reasoning_effort="low", llm=FAST))
    sub = session.subscribe("t")
    session.start()
    session.submit(UserInput(text="what is here?"))
    events = await collect_until(sub)
    done = events[-1]
    assert done.type == "turn_complete", events[-3:]
    assert done.receipt.usage.cache_read_tokens == 900 and done.receipt.usage.cache_write_tokens == 960
    first, second = anthropic.requests
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assistant = second["messages"][1]
    assert assistant["content"][0] == {"type": "thinking", "thinking": "I should list the files.", "signature": "sig-1"}
    assert assistant["content"][1]["type"] == "tool_use"
    tool_result = second["messages"][-1]["content"][-1]
    assert tool_result["type"] == "tool_result" and tool_result["content"][-1]["cache_control"] == EPHEMERAL
    assert second["system"][-1]["cache_control"] == EPHEMERAL and second["tools"][-1]["cache_control"] == EPHEMERAL
    stored = next(e.message for e in session.engine.history.entries if e.kind == "assistant" and e.message.get("tool_calls"))
    assert stored["thinking_blocks"][0]["signature"] == "sig-1"
    session.submit(Shutdown())
    await session._runner


async def test_openai_requests_carry_a_stable_per_session_cache_key(llm_server, monkeypatch, tmp_path):
    llm_server.script(
        Text("one", usage=OpenAIUsage(2000, 10, cached_tokens=1536)),
        Text("two", usage=OpenAIUsage(2100, 10, cached_tokens=1920)),
        Text("three"),
    )
    session = make_session(llm_server, monkeypatch, tmp_path, model_id="openai/gpt-5-mini")
    sub = session.subscribe("t")
    session.start()
    session.submit(UserInput(text="hi"))
    first = (await collect_until(sub))[-1]
    session.submit(UserInput(text="more"))
    second = (await collect_until(sub))[-1]
    keys = [body.get("prompt_cache_key") for body in llm_server.requests]
    assert keys[0] == session.id and keys[1] == session.id
    assert first.receipt.usage.cache_read_tokens == 1536 and second.receipt.usage.cache_read_tokens == 1920
    price, _ = find_price(session.model)
    assert price.cache_read_per_mtok is not None and price.cache_read_per_mtok < price.input_per_mtok
    full_price = cost_of(price, Usage(prompt_tokens=2000, completion_tokens=10))
    assert 0 < first.receipt.llm_cost_usd < full_price
    session.submit(New())
    session.submit(UserInput(text="fresh start"))
    await collect_until(sub)
    assert llm_server.requests[-1]["prompt_cache_key"] == session.id != keys[0]
    session.submit(Shutdown())
    await session._runner


async def test_other_servers_get_no_cache_key_and_no_thinking_blocks(llm_server, monkeypatch, tmp_path):
    llm_server.script(Text("ok"))
    client = LLMClient(FAST, lambda e: None, session_key=lambda: "session-1")
    model = resolve_model("openai/scripted-model", env={"OPENAI_BASE_URL": llm_server.base_url})
    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "s"}]},
        {"role": "user", "content": "again"},
    ]
    await client.stream(model, history)
    body = llm_server.requests[0]
    assert "prompt_cache_key" not in body
    assert all("thinking_blocks" not in m for m in body["messages"])
    assert "thinking_blocks" in history[1]  # the copy was cleaned, not the history
    assert all(isinstance(m["content"], str) for m in body["messages"])  # no cache blocks either


async def test_thinking_blocks_anywhere_in_a_growing_history_are_left_out_every_round(llm_server):
    """Whether a message holds thinking blocks is worked out once per message (the client's
    RoundMemo): one that arrived rounds ago still counts, and so does a new one."""
    llm_server.script(Text("a"), Text("b"), Text("c"))
    client = LLMClient(FAST, lambda e: None, session_key=lambda: "session-1")
    model = resolve_model("openai/scripted-model", env={"OPENAI_BASE_URL": llm_server.base_url})
    thought = {"thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "s"}]}
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
               {"role": "user", "content": "again"}]
    await client.stream(model, list(history))
    history += [{"role": "assistant", "content": "thought about it", **thought}, {"role": "user", "content": "more"}]
    await client.stream(model, list(history))
    history += [{"role": "assistant", "content": "plain"}, {"role": "user", "content": "last"}]
    await client.stream(model, list(history))
    assert len(llm_server.requests) == 3
    for body in llm_server.requests[1:]:
        assert all("thinking_blocks" not in m for m in body["messages"])
        assert [m["content"] for m in body["messages"]][3] == "thought about it"
    assert "thinking_blocks" in history[3]  # the request's copy was cleaned, not the history


@pytest.mark.parametrize("model_id,marks,thinking", [
    ("anthropic/claude-sonnet-4-5", True, True),
    ("claude-3-5-haiku-20241022", True, True),
    ("vertex_ai/claude-sonnet-4@20250514", True, True),  # litellm's Anthropic adapter on Vertex AI
    ("bedrock/us.anthropic.claude-3-7-sonnet-20250219", True, True),
    ("openrouter/anthropic/claude-sonnet-4", True, False),  # marks pass through; OpenAI-shaped otherwise
    ("anthropic/claude-opus-4.8:fal-ai", True, False),  # the HF router
    ("huggingface/anthropic/claude-opus-4.8", True, False),
    ("moonshotai/Kimi-K2-Instruct", False, False),
    ("openrouter/openai/gpt-5", False, False),
    ("gemini/gemini-2.5-pro", False, False),
])
def test_claude_is_recognised_wherever_it_is_served(model_id, marks, thinking):
    from agent.llm.prompt_cache import is_anthropic, takes_cache_marks

    model = resolve_model(model_id, env={"HF_TOKEN": "hf_test"})
    assert (takes_cache_marks(model), is_anthropic(model)) == (marks, thinking)


@pytest.mark.parametrize("model_id,key", [
    ("openai/gpt-5.5:fal-ai", True),  # the HF router's OpenAI model (reference §7.2)
    ("gpt-5-mini", True),
    ("openai/gpt-oss-120b:cerebras", False),  # open weights with an OpenAI name, served by others
    ("openai/gpt-oss-20b", False),
    ("moonshotai/Kimi-K2-Instruct", False),
])
def test_only_openai_models_get_a_prompt_cache_key(model_id, key):
    from agent.llm.prompt_cache import prepare

    model = resolve_model(model_id, env={"HF_TOKEN": "hf_test", "OPENAI_API_KEY": "sk-test"})
    _, _, extra = prepare(model, [{"role": "user", "content": "hi"}], None, effort=None, session_key="s-1")
    assert ("prompt_cache_key" in extra) is key


async def test_claude_through_the_hf_router_carries_the_marks_on_the_wire(llm_server):
    model = resolve_model("anthropic/claude-opus-4.8:fal-ai", env={"HF_TOKEN": "hf_test",
                                                                    "HF_ROUTER_BASE_URL": llm_server.base_url})
    llm_server.script(Text("ok", usage=OpenAIUsage(1200, 5, cached_tokens=1000)))
    client = LLMClient(FAST, lambda e: None, session_key=lambda: "session-1")
    history = [{"role": "system", "content": "sys prompt"}, {"role": "user", "content": "hi"}]
    result = await client.stream(model, history, TOOLS)
    body = llm_server.requests[0]
    assert body["cache_control"] == EPHEMERAL and "prompt_cache_key" not in body
    assert body["messages"][0]["content"] == [{"type": "text", "text": "sys prompt", "cache_control": EPHEMERAL}]
    assert body["messages"][-1]["content"][-1]["cache_control"] == EPHEMERAL
    assert body["tools"][-1]["cache_control"] == EPHEMERAL and "cache_control" not in body["tools"][0]
    assert result.usage.cache_read_tokens == 1000 and history[1] == {"role": "user", "content": "hi"}


async def test_openai_through_the_hf_router_gets_the_session_cache_key(llm_server):
    model = resolve_model("openai/gpt-5.5:fal-ai", env={"HF_TOKEN": "hf_test", "HF_ROUTER_BASE_URL": llm_server.base_url})
    llm_server.script(Text("ok"))
    await LLMClient(FAST, lambda e: None, session_key=lambda: "session-1").stream(model, [{"role": "user", "content": "hi"}])
    body = llm_server.requests[0]
    assert body["prompt_cache_key"] == "session-1" and "cache_control" not in body
