"""Reasoning effort: the cascade, the probe on model switch, the per-model cache and
runtime healing, against loopback servers answering with the providers' real rejections.

Each rejection text below is what a provider really sent, as reported in public issue
threads (the level named in OpenAI's template is the one the fake was asked for)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from agent.config import Config, LLMSettings
from agent.llm.client import LLMClient
from agent.llm.effort import (
    CACHE_FILE,
    CASCADES,
    EffortCache,
    effective_effort,
    normalise_effort,
    probe_effort,
)
from agent.llm.errors import LLMError, classify
from agent.llm.models import resolve_model
from agent.protocol import Interrupt, New, SetEffort, SetModel, Shutdown, UserInput
from tests.engine_support import collect_until, make_session, of_type
from tests.fakes import Hang, HTTPError, Text
from tests.fakes.anthropic_server import ScriptedAnthropicServer


def openai_unsupported_value(level: str) -> str:
    # OpenAI chat completions, quoted in Kilo-Org/cloud#3807 (there for 'none')
    return (f"Unsupported value: 'reasoning_effort' does not support '{level}' with this model. "
            "Supported values are: 'minimal', 'low', 'medium', and 'high'.")


# OpenAI, for a model without reasoning (gpt-4o-mini), davidmigloz/langchain_dart#712
OPENAI_UNRECOGNIZED = "Unrecognized request argument supplied: reasoning_effort"
# Anthropic, claude-3-5-haiku with thinking on, anthropics/claude-code#12914
ANTHROPIC_NO_THINKING = "'claude-3-5-haiku-20241022' does not support thinking."
# Anthropic, a thinking block whose signature it does not accept, ding113/claude-code-hub#518
ANTHROPIC_BAD_SIGNATURE = "messages.1.content.0: Invalid `signature` in `thinking` block"
# Anthropic, thinking on but the last assistant turn has no thinking block, anthropics/claude-code#11978
ANTHROPIC_THINKING_REQUIRED = (
    "messages.99.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`. When `thinking` is "
    "enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of "
    "`tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid "
    "this requirement, disable `thinking`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)
# Anthropic, thinking off but the last assistant message has thinking, anthropics/claude-code#7946
ANTHROPIC_THINKING_WHEN_DISABLED = (
    "messages.139.content.0: When thinking is disabled, an `assistant` message in the final position cannot "
    "contain `thinking`. To use thinking blocks, enable `thinking` in your request."
)
# sglang behind an OpenAI-compatible proxy, router-for-me/CLIProxyAPI#1572
SGLANG_LITERAL = (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'reasoning_effort'), 'msg': \"Input should "
    "be 'low', 'medium' or 'high'\", 'input': 'xhigh', 'ctx': {'expected': \"'low', 'medium' or 'high'\"}}"
)
# litellm itself, BerriAI/litellm#38263
LITELLM_UNSUPPORTED_PARAMS = (
    "litellm.UnsupportedParamsError: together_ai does not support parameters: ['reasoning_effort'], "
    "for model=Qwen/Qwen3.5-9B."
)
# not an effort problem: Anthropic's minimum thinking budget, themaximalist/llm.js#30
ANTHROPIC_BUDGET_TOO_SMALL = "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"

FAST = LLMSettings(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02)


class Err(Exception):
    def __init__(self, message: str, status: int | None = 400):
        super().__init__(message)
        self.status_code = status


@pytest.mark.parametrize("message,kind", [
    (openai_unsupported_value("xhigh"), "effort_rejected"),
    (SGLANG_LITERAL, "effort_rejected"),
    (OPENAI_UNRECOGNIZED, "effort_unsupported"),
    (LITELLM_UNSUPPORTED_PARAMS, "effort_unsupported"),
    (ANTHROPIC_NO_THINKING, "thinking_unsupported"),
    (ANTHROPIC_BAD_SIGNATURE, "thinking_blocks"),
    (ANTHROPIC_THINKING_WHEN_DISABLED, "thinking_blocks"),
    (ANTHROPIC_THINKING_REQUIRED, "thinking_required"),
    (ANTHROPIC_BUDGET_TOO_SMALL, "bad_request"),
    ("field foo is not allowed", "bad_request"),
])
def test_real_rejections_are_classified(message, kind):
    assert classify(Err(message)).kind == kind


def test_a_server_error_mentioning_effort_is_still_retried():
    info = classify(Err("upstream timed out while applying reasoning_effort", 503))
    assert info.kind == "server" and info.retryable


def test_levels_cascade_and_config_validation():
    assert CASCADES["max"] == ("max", "xhigh", "high", "medium", "low")
    assert CASCADES["minimal"] == ("minimal", "low")
    assert normalise_effort("OFF") is None and normalise_effort("none") is None and normalise_effort(" High ") == "high"
    with pytest.raises(ValueError, match="use one of minimal, low"):
        normalise_effort("ultra")
    assert Config(reasoning_effort="off").reasoning_effort is None
    with pytest.raises(Exception, match="unknown reasoning effort"):
        Config(reasoning_effort="turbo")


def openai_model(server, name="openai/scripted-model"):
    return resolve_model(name, env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-test"})


def make_client(tmp_path, events, *, settings=FAST, cache_path=None):
    cache = EffortCache(cache_path or tmp_path / CACHE_FILE)
    return LLMClient(settings, events.append, efforts=cache)


def efforts_sent(server) -> list:
    return [body.get("reasoning_effort") for body in server.requests]


async def test_probe_walks_the_cascade_and_the_next_session_reads_the_cache(llm_server, tmp_path):
    llm_server.script(
        HTTPError(400, openai_unsupported_value("max")),
        HTTPError(400, openai_unsupported_value("xhigh")),
        Text("pong"),
    )
    events: list = []
    client = make_client(tmp_path, events)
    model = openai_model(llm_server)
    result = await probe_effort(client, model, "max")
    assert (result.effort, result.status, result.requests) == ("high", "accepted", 3)
    assert efforts_sent(llm_server) == ["max", "xhigh", "high"]
    assert all(b["max_tokens"] == 16 and b["messages"] == [{"role": "user", "content": "ping"}] for b in llm_server.requests)
    probes = of_type(events, "llm_call")
    assert [e.kind for e in probes] == ["effort_probe"] * 3 and probes[0].error.startswith("effort_rejected")
    assert "does not take reasoning effort 'max'; using 'high'" in result.describe(model)

    saved = json.loads((tmp_path / CACHE_FILE).read_text())["models"]
    entry = saved[f"{model.id}@{model.api_base}"]
    assert entry["accepted"] == ["high"] and entry["rejected"] == ["max", "xhigh"]
    assert abs(entry["updated"] - time.time()) < 60

    # a new process: the file answers, nothing is asked
    fresh = make_client(tmp_path, [])
    again = await probe_effort(fresh, model, "max")
    assert (again.effort, again.status, again.requests) == ("high", "cached", 0)
    assert fresh.effective_effort(model, "xhigh") == "high"  # xhigh is known refused too
    assert len(llm_server.requests) == 3


async def test_a_week_old_answer_is_asked_again(llm_server, tmp_path):
    now = [1_000_000.0]
    cache = EffortCache(tmp_path / CACHE_FILE, clock=lambda: now[0])
    model = openai_model(llm_server)
    cache.record(model, rejected="xhigh")
    assert effective_effort(model, "xhigh", cache) == "high"
    now[0] += 8 * 24 * 3600
    assert effective_effort(model, "xhigh", cache) == "xhigh"


async def test_a_model_without_reasoning_is_found_in_one_request(llm_server, tmp_path):
    llm_server.script(HTTPError(400, OPENAI_UNRECOGNIZED))
    client = make_client(tmp_path, [])
    model = openai_model(llm_server)
    result = await probe_effort(client, model, "high")
    assert (result.effort, result.status, result.requests) == (None, "no_effort", 1)
    assert client.effective_effort(model, "max") is None
    assert "takes no reasoning effort setting" in result.describe(model)


async def test_runtime_heal_lowers_the_effort_once_and_updates_the_cache(llm_server, tmp_path):
    llm_server.script(HTTPError(400, openai_unsupported_value("xhigh")), Text("fine"))
    events: list = []
    client = make_client(tmp_path, events)
    changed: list = []
    client.on_effort_change = changed.append
    model = openai_model(llm_server)
    result = await client.stream(model, [{"role": "user", "content": "hi"}], reasoning_effort="xhigh")
    assert result.content == "fine"
    assert efforts_sent(llm_server) == ["xhigh", "high"]
    logs = [e.log for e in of_type(events, "tool_log") if e.tool == "system"]
    assert logs == [f"{model.label} does not accept reasoning effort 'xhigh'; retrying with 'high'."]
    assert changed == [model] and client.efforts.state(model, "xhigh") == "rejected"
    # the next call starts at the level that works
    llm_server.script(Text("again"))
    await client.stream(model, [{"role": "user", "content": "hi"}], reasoning_effort="xhigh")
    assert efforts_sent(llm_server)[-1] == "high"


async def test_a_heal_is_not_a_retry(llm_server, tmp_path):
    llm_server.script(HTTPError(400, openai_unsupported_value("max")), HTTPError(503, "overloaded"), Text("ok"))
    client = make_client(tmp_path, [], settings=LLMSettings(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02))
    model = openai_model(llm_server)
    result = await client.stream(model, [{"role": "user", "content": "hi"}], reasoning_effort="max")
    assert result.content == "ok" and result.attempts == 3  # heal + one retry, both allowed
    assert efforts_sent(llm_server) == ["max", "xhigh", "xhigh"]


async def test_runtime_healing_walks_down_the_whole_cascade_and_remembers_it(llm_server, tmp_path):
    """A model that refuses xhigh, then high: the same call steps down twice and succeeds
    on medium (it used to give up after one step), and the next call starts at medium."""
    events: list = []
    client = make_client(tmp_path, events, settings=LLMSettings(max_attempts=1))
    model = openai_model(llm_server)
    llm_server.script(HTTPError(400, openai_unsupported_value("xhigh")), HTTPError(400, openai_unsupported_value("high")),
                      Text("ok at medium"))
    result = await client.stream(model, [{"role": "user", "content": "hi"}], reasoning_effort="xhigh")
    assert result.content == "ok at medium"
    assert efforts_sent(llm_server) == ["xhigh", "high", "medium"]
    assert client.efforts.state(model, "xhigh") == "rejected" and client.efforts.state(model, "high") == "rejected"
    logs = [e.log for e in of_type(events, "tool_log") if e.tool == "system"]
    assert logs == [f"{model.label} does not accept reasoning effort 'xhigh'; retrying with 'high'.",
                    f"{model.label} does not accept reasoning effort 'high'; retrying with 'medium'."]
    llm_server.script(Text("again"))
    await client.stream(model, [{"role": "user", "content": "hi"}], reasoning_effort="xhigh")
    assert efforts_sent(llm_server)[-1] == "medium"
    # a fresh client on the same data dir (the next session) starts there too
    fresh = make_client(tmp_path, [])
    llm_server.script(Text("next session"))
    await fresh.stream(model, [{"role": "user", "content": "hi"}], reasoning_effort="xhigh")
    assert efforts_sent(llm_server)[-1] == "medium"


async def test_router_levels_and_the_direct_path(llm_server, tmp_path):
    # the HF router streams through our direct client and never takes xhigh/max
    model = resolve_model("someorg/reasoner", env={"HF_TOKEN": "hf_test", "HF_ROUTER_BASE_URL": llm_server.base_url})
    llm_server.script(
        HTTPError(400, "Unsupported value: 'reasoning_effort' does not support 'high' with this model. "
                       "Supported values are: 'low' and 'medium'."),
        Text("pong"),
    )
    client = make_client(tmp_path, [])
    assert client.uses_direct_stream(model)
    result = await probe_effort(client, model, "max")
    assert (result.effort, result.requests) == ("medium", 2)
    assert efforts_sent(llm_server) == ["high", "medium"]
    llm_server.script(HTTPError(400, openai_unsupported_value("medium")), Text("ok"))
    events: list = []
    client.emit = events.append
    await client.stream(model, [{"role": "user", "content": "hi"}], reasoning_effort="max")
    assert efforts_sent(llm_server)[-2:] == ["medium", "low"]
    assert any("retrying with 'low'" in e.log for e in of_type(events, "tool_log"))


async def test_thinking_not_supported_via_anthropic(tmp_path, monkeypatch):
    with ScriptedAnthropicServer() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        model = resolve_model("anthropic/claude-sonnet-4-5", env={"ANTHROPIC_API_KEY": "sk-ant-test"})
        server.script(HTTPError(400, ANTHROPIC_NO_THINKING))
        client = make_client(tmp_path, [])
        from agent.llm.runtime import get_litellm

        get_litellm()
        result = await probe_effort(client, model, "high")
        assert (result.effort, result.status) == (None, "no_effort")
        body = server.requests[0]
        assert body["thinking"]["type"] == "enabled" and "max_tokens" in body  # litellm sized it for the budget
        assert body["max_tokens"] > body["thinking"]["budget_tokens"]
        assert client.effective_effort(model, "high") is None


async def test_invalid_signature_strips_thinking_blocks_and_retries(tmp_path, monkeypatch):
    with ScriptedAnthropicServer() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        model = resolve_model("anthropic/claude-sonnet-4-5", env={"ANTHROPIC_API_KEY": "sk-ant-test"})
        server.script(HTTPError(400, ANTHROPIC_BAD_SIGNATURE), Text("done"))
        events: list = []
        client = make_client(tmp_path, events)
        assistant = {
            "role": "assistant", "content": "",
            "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}],
            "thinking_blocks": [{"type": "thinking", "thinking": "from another account", "signature": "c2ln"}],
        }
        history = [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "list files"},
            assistant,
            {"role": "tool", "tool_call_id": "toolu_1", "content": "a.txt"},
        ]
        tools = [{"type": "function", "function": {"name": "bash", "description": "run", "parameters": {"type": "object", "properties": {}}}}]
        result = await client.stream(model, history, tools, reasoning_effort="low")
        assert result.content == "done"
        first, second = server.requests
        assert first["messages"][1]["content"][0]["type"] == "thinking"
        assert [b["type"] for b in second["messages"][1]["content"]] == ["tool_use"]
        assert second.get("thinking", {}).get("type") == "enabled"  # the effort itself stays
        assert "thinking_blocks" not in assistant  # the history no longer carries them
        logs = [e.log for e in of_type(events, "tool_log")]
        assert len(logs) == 1 and "removed 1 and retrying" in logs[0]


async def test_thinking_required_retries_that_request_without_thinking(tmp_path, monkeypatch):
    with ScriptedAnthropicServer() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        model = resolve_model("anthropic/claude-sonnet-4-5", env={"ANTHROPIC_API_KEY": "sk-ant-test"})
        server.script(HTTPError(400, ANTHROPIC_THINKING_REQUIRED), Text("done"))
        client = make_client(tmp_path, [])
        await client.stream(model, [{"role": "user", "content": "hi"}], reasoning_effort="high")
        assert "thinking" in server.requests[0] and "thinking" not in server.requests[1]
        assert client.effective_effort(model, "high") == "high"  # nothing learnt about the model


# --------------------------------------------------------------------------- the session


async def settings_after(session, sub, op):
    session.submit(op)
    events = await collect_until(sub, stop={"settings_changed", "error"})
    return events


async def test_model_switch_probes_once_and_a_new_session_does_not(llm_server, monkeypatch, tmp_path):
    config = Config(reasoning_effort="xhigh", llm=FAST)
    session = make_session(llm_server, monkeypatch, tmp_path, config=config, model_id="demo")
    sub = session.subscribe("t")
    session.start()
    llm_server.script(HTTPError(400, openai_unsupported_value("xhigh")), Text("pong"))
    events = await settings_after(session, sub, SetModel(model="openai/scripted-model"))
    changed = events[-1]
    assert (changed.model, changed.effort, changed.effort_requested) == ("openai/scripted-model", "high", "xhigh")
    assert any("does not take reasoning effort 'xhigh'; using 'high'" in e.log for e in of_type(events, "tool_log"))
    assert [e.kind for e in of_type(events, "llm_call")] == ["effort_probe", "effort_probe"]
    # the user sees the probe while it runs, before its result
    logs = [e.log for e in of_type(events, "tool_log")]
    assert logs[:2] == ["Checking whether openai/scripted-model takes reasoning effort xhigh…",
                        "openai/scripted-model refused effort xhigh; trying high…"]

    llm_server.script(Text("answer"))
    session.submit(UserInput(text="hello"))
    await collect_until(sub)
    assert llm_server.requests[-1]["reasoning_effort"] == "high"
    session.submit(Shutdown())
    await session._runner

    second = make_session(llm_server, monkeypatch, tmp_path, config=config, model_id="demo")
    sub2 = second.subscribe("t")
    second.start()
    before = len(llm_server.requests)
    events = await settings_after(second, sub2, SetModel(model="openai/scripted-model"))
    assert events[-1].effort == "high" and len(llm_server.requests) == before
    assert not any("Checking" in e.log for e in of_type(events, "tool_log"))  # known: nothing to check
    second.submit(Shutdown())
    await second._runner


async def test_effort_command_asks_again_and_off_sends_none(llm_server, monkeypatch, tmp_path):
    session = make_session(llm_server, monkeypatch, tmp_path, config=Config(llm=FAST))
    sub = session.subscribe("t")
    session.start()
    await collect_until(sub, stop={"ready"})
    llm_server.script(Text("pong"))
    events = await settings_after(session, sub, SetEffort(effort="medium"))
    assert events[-1].effort == "medium" and efforts_sent(llm_server) == ["medium"]
    events = await settings_after(session, sub, SetEffort(effort=None))
    assert events[-1].effort is None and len(llm_server.requests) == 1
    events = await settings_after(session, sub, SetEffort(effort="turbo"))
    assert events[-1].type == "error" and "unknown reasoning effort" in events[-1].message.lower()
    session.submit(Shutdown())
    await session._runner


async def test_switch_refused_when_the_probe_shows_the_model_is_unusable(llm_server, monkeypatch, tmp_path):
    session = make_session(llm_server, monkeypatch, tmp_path, config=Config(reasoning_effort="high", llm=FAST),
                           model_id="demo")
    sub = session.subscribe("t")
    session.start()
    llm_server.script(HTTPError(404, "The model `nope` does not exist"))
    events = await settings_after(session, sub, SetModel(model="openai/nope"))
    assert events[-1].type == "error" and "Not switching to openai/nope" in events[-1].message
    assert session.model.id == "demo"
    # busy provider: the switch happens, unverified
    llm_server.script(HTTPError(503, "overloaded"))
    events = await settings_after(session, sub, SetModel(model="openai/scripted-model"))
    assert events[-1].model == "openai/scripted-model" and events[-1].effort == "high"
    assert any("Could not check which reasoning effort" in e.log for e in of_type(events, "tool_log"))
    session.submit(Shutdown())
    await session._runner


async def test_demo_and_local_models_are_not_probed_unless_asked(llm_server, monkeypatch, tmp_path):
    monkeypatch.setenv("OLLAMA_BASE_URL", llm_server.base_url.removesuffix("/v1"))
    session = make_session(llm_server, monkeypatch, tmp_path, config=Config(reasoning_effort="high", llm=FAST),
                           model_id="demo")
    sub = session.subscribe("t")
    session.start()
    events = await settings_after(session, sub, SetModel(model="ollama/qwen3"))
    assert events[-1].effort is None and events[-1].effort_requested == "high" and llm_server.requests == []
    llm_server.script(Text("answer"))
    session.submit(UserInput(text="hi"))
    await collect_until(sub)
    assert "reasoning_effort" not in llm_server.requests[-1]
    # the user asks: now the local server is checked, and gets the level it accepted
    llm_server.script(HTTPError(400, SGLANG_LITERAL), Text("pong"), Text("answer"))
    events = await settings_after(session, sub, SetEffort(effort="xhigh"))
    assert events[-1].effort == "high" and efforts_sent(llm_server)[-2:] == ["xhigh", "high"]
    session.submit(UserInput(text="again"))
    await collect_until(sub)
    assert llm_server.requests[-1]["reasoning_effort"] == "high"
    events = await settings_after(session, sub, SetModel(model="demo"))
    assert events[-1].effort is None
    session.submit(New())
    session.submit(Shutdown())
    await session._runner


async def test_interrupting_the_probe_still_switches(llm_server, monkeypatch, tmp_path):
    session = make_session(llm_server, monkeypatch, tmp_path, config=Config(reasoning_effort="high", llm=FAST),
                           model_id="demo")
    sub = session.subscribe("t")
    session.start()
    llm_server.script(Hang(seconds=30))
    session.submit(SetModel(model="openai/scripted-model"))
    await asyncio.to_thread(llm_server.wait_for_request, 1)
    session.submit(Interrupt())
    events = await collect_until(sub, stop={"settings_changed", "error", "interrupted"})
    assert events[-1].type == "settings_changed" and events[-1].model == "openai/scripted-model"
    assert events[-1].effort == "high"  # unverified: the first real request settles it
    assert any("interrupted" in e.log for e in of_type(events, "tool_log"))
    assert session.client.efforts.entry(session.model) is None  # nothing learnt from an interrupted probe
    session.submit(Shutdown())
    await session._runner


async def test_the_whole_cascade_is_walked_and_every_model_keeps_its_own_answer(llm_server, tmp_path):
    levels = CASCADES["max"]
    llm_server.script(*(HTTPError(400, openai_unsupported_value(level)) for level in levels[:-1]), Text("pong"))
    client = make_client(tmp_path, [])
    first = openai_model(llm_server)
    result = await probe_effort(client, first, "max")
    assert (result.effort, result.status, result.requests) == ("low", "accepted", 5)
    assert efforts_sent(llm_server) == ["max", "xhigh", "high", "medium", "low"]

    # another model refuses every level: it takes none, and that is its answer alone
    other = openai_model(llm_server, "openai/other-model")
    llm_server.script(*(HTTPError(400, openai_unsupported_value(level)) for level in levels))
    result = await probe_effort(client, other, "max")
    assert (result.effort, result.status, result.requests) == (None, "exhausted", 5)
    assert "takes no reasoning effort setting" in result.describe(other)
    assert client.effective_effort(other, "max") is None and client.effective_effort(first, "max") == "low"
    before = len(llm_server.requests)
    assert (await probe_effort(client, first, "max")).status == "cached"
    assert (await probe_effort(client, other, "high")).status == "no_effort"
    assert len(llm_server.requests) == before  # both answers come from the cache now


@pytest.mark.parametrize("model_id", ["vertex_ai/claude-sonnet-4@20250514", "bedrock/us.anthropic.claude-3-7-sonnet-20250219",
                                      "anthropic/claude-opus-4.8:fal-ai"])
async def test_claude_on_other_clouds_is_probed_without_a_token_cap(model_id):
    """A thinking budget must fit under max_tokens: Claude gets no 16-token cap wherever it runs."""
    sent: list = []

    class Recorder:
        efforts = None

        async def stream(self, model, messages, tools, **kw):
            sent.append(kw["max_tokens"])

    await probe_effort(Recorder(), resolve_model(model_id, env={"HF_TOKEN": "hf_test"}), "high")
    assert sent == [None]
