"""The Hugging Face router's catalog (prices, windows, tool support per provider), what the
session does with it (prices router calls, so YOLO can spend; flags a model before it is
used), the picker's model lists (recent, local servers, router) and the model name a server
answers with. The router is a scripted loopback server serving the catalog at /v1/models."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from agent.config import Config, LLMSettings
from agent.llm.models import resolve_model
from agent.llm.router_catalog import FRESH_S, RouterCatalog, parse
from agent.protocol import ListModels, SetModel, Shutdown, UserInput
from tests.engine_support import collect_until, make_session, of_type
from tests.fakes import Call, HTTPError, ScriptedLLMServer, Text, ToolCalls


def offer(provider, inp, out, *, live=True, context=131_072, tools=True):
    return {"provider": provider, "status": "live" if live else "staging", "context_length": context,
            "pricing": {"input": inp, "output": out}, "supports_tools": tools, "supports_structured_output": False}


CATALOG = [
    {"id": "acme/Coder-9B", "object": "model", "providers": [offer("novita", 0.2, 0.8), offer("groq", 0.3, 1.2, context=32_768)]},
    {"id": "acme/Chat-1B", "providers": [offer("novita", 0.05, 0.1, tools=False)]},
    {"id": "acme/Retired", "providers": [offer("novita", 1.0, 2.0, live=False)]},
    {"id": "openai/gpt-oss-120b", "providers": [offer("cerebras", 0.25, 0.69)]},
    {"id": "broken-entry"},  # no providers: listed, nobody serves it
    "not a model",
    {"providers": []},  # no id: skipped
]


def catalog_with(tmp_path, data=CATALOG, url="http://router.test/v1/models"):
    cat = RouterCatalog(tmp_path / "router_catalog.json", url)
    cat.accept({"object": "list", "data": data})
    return cat


# --------------------------------------------------------------------------- the catalog alone


def test_parse_keeps_good_entries_and_refuses_what_is_not_a_list():
    models = parse({"data": CATALOG})
    assert set(models) == {"acme/coder-9b", "acme/chat-1b", "acme/retired", "openai/gpt-oss-120b", "broken-entry"}
    groq = models["acme/coder-9b"].offer("GROQ")
    assert (groq.input_per_mtok, groq.output_per_mtok, groq.context_length, groq.live) == (0.3, 1.2, 32_768, True)
    for bad in ({"data": "x"}, [], None, {"models": []}):
        with pytest.raises(ValueError):
            parse(bad)


def test_terms_price_a_pinned_provider_at_its_rates_and_anything_else_at_the_dearest(tmp_path):
    cat = catalog_with(tmp_path)
    pinned = cat.terms("acme/Coder-9B:novita")
    assert (pinned.price.input_per_mtok, pinned.price.output_per_mtok, pinned.window) == (0.2, 0.8, 131_072)
    # the router may pick either provider: the budget is charged the dearest, the window is the smallest
    auto = cat.terms("acme/coder-9b")
    assert (auto.price.input_per_mtok, auto.price.output_per_mtok, auto.window) == (0.3, 1.2, 32_768)
    assert "dearest of 2" in auto.basis and auto == cat.terms("huggingface/acme/Coder-9B:fastest")
    cheap = cat.terms("acme/Coder-9B:cheapest")
    assert cheap.price.input_per_mtok == 0.2
    assert cat.terms("acme/Coder-9B:together").price is None  # a provider that does not serve it
    assert cat.terms("acme/Retired").price is None  # nobody live to price it
    assert cat.terms("acme/unknown") is None


def test_a_live_provider_without_a_price_makes_the_price_unknown(tmp_path):
    cat = catalog_with(tmp_path, [{"id": "a/b", "providers": [offer("x", 0.1, 0.2), {"provider": "y", "status": "live"}]}])
    terms = cat.terms("a/b")
    assert terms.price is None and "state no price" in terms.basis


def test_problems_are_said_in_sentences(tmp_path):
    cat = catalog_with(tmp_path)
    assert cat.problems("acme/Coder-9B") == [] and cat.problems("acme/Coder-9B:groq") == []
    [absent] = cat.problems("acme/Coder-9")
    assert "not in the Hugging Face router's catalog" in absent and "acme/Coder-9B" in absent  # suggested
    assert "supports tool calls" in cat.problems("acme/Chat-1B")[0]
    assert "no live provider" in cat.problems("acme/Retired")[0]
    assert "does not serve" in cat.problems("acme/Coder-9B:together")[0]
    assert "not live" in cat.problems("acme/Retired:novita")[-1]
    assert RouterCatalog(None, "http://x").problems("anything/at-all") == []  # no catalog: nothing to say


def test_the_catalog_is_kept_on_disk_for_its_endpoint_only(tmp_path):
    catalog_with(tmp_path)
    again = RouterCatalog(tmp_path / "router_catalog.json", "http://router.test/v1/models")
    assert again.known and again.fresh() and again.lookup("ACME/coder-9b").id == "acme/Coder-9B"
    other = RouterCatalog(tmp_path / "router_catalog.json", "http://mirror.test/v1/models")
    assert not other.known and other.due()
    (tmp_path / "router_catalog.json").write_text("{half a file")
    broken = RouterCatalog(tmp_path / "router_catalog.json", "http://router.test/v1/models")
    assert not broken.known and broken.terms("acme/Coder-9B") is None


def test_an_old_catalog_is_due_for_a_refresh(tmp_path):
    cat = RouterCatalog(tmp_path / "c.json", "http://r/v1/models")
    cat.accept({"data": CATALOG}, now=0.0)
    assert cat.known and not cat.fresh() and cat.due() and cat.age_s() > FRESH_S


# --------------------------------------------------------------------------- in a session


def router_session(llm_server, monkeypatch, tmp_path, model_id="acme/Coder-9B", **kw):
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.setenv("HF_ROUTER_BASE_URL", llm_server.base_url)
    return make_session(llm_server, monkeypatch, tmp_path, model_id=model_id, **kw)


async def until_priced(sub):
    """The start-up catalog fetch ends with a quiet settings_changed for the router model."""
    while True:
        changed = (await collect_until(sub, stop={"settings_changed"}, timeout=15))[-1]
        if changed.model_priced:
            return changed


async def test_a_router_model_is_priced_from_the_catalog_and_yolo_runs_a_job_within_budget(
        hub, llm_server, monkeypatch, tmp_path):
    """acme/Coder-9B is in no price table: only the router's catalog prices it. With that price
    YOLO launches a job that fits the budget without asking; with the catalog unreachable, the
    same run has unpriced spend and YOLO asks instead."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.script_job(lines=["step 1"], line_delay=0.05)
    job = {"operation": "run", "script": "print('hi')\n", "hardware_flavor": "a10g-small", "timeout": "10m"}

    llm_server.catalog = CATALOG
    llm_server.script(ToolCalls([Call("j1", "hf_jobs", json.dumps(job))]), Text("Launched."))
    s = router_session(llm_server, monkeypatch, tmp_path, approval_mode="yolo", yolo_cap_usd=2.0)
    s.jobs.first_lines_wait_s = 0.1
    sub = s.subscribe("t")
    s.start()
    changed = await until_priced(sub)
    assert changed.context_window == 32_768  # the smallest live provider's window
    s.submit(UserInput(text="train"))
    events = await collect_until(sub)
    assert not of_type(events, "approval_required")
    calls = of_type(events, "llm_call")
    assert calls and all(c.cost_source == "router" and c.cost_usd > 0 for c in calls)
    [started] = [e for e in of_type(events, "tool_output") if e.tool_call_id == "j1"]
    assert started.success, started.output
    done = events[-1]
    assert done.receipt.unknown_cost_calls == 0 and done.receipt.budget_exact
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)

    # the same without a catalog (and none kept): the model call has no price, YOLO asks
    (s.data_dir / "router_catalog.json").unlink()
    llm_server.catalog = HTTPError(503, "router down")
    llm_server.script(ToolCalls([Call("j2", "hf_jobs", json.dumps(job))]), Text("Asked."))
    s2 = router_session(llm_server, monkeypatch, tmp_path, approval_mode="yolo", yolo_cap_usd=2.0)
    sub2 = s2.subscribe("t")
    s2.start()
    s2.submit(UserInput(text="train"))
    events = await collect_until(sub2)
    assert of_type(events, "llm_call")[0].cost_usd is None
    assert events[-1].type == "approval_required" and "no known price" in events[-1].items[0].reason
    s2.submit(Shutdown())
    await asyncio.wait_for(s2._runner, 10)


async def test_switching_to_a_router_model_says_what_the_catalog_knows_against_it(llm_server, monkeypatch, tmp_path):
    llm_server.catalog = CATALOG
    s = router_session(llm_server, monkeypatch, tmp_path)
    sub = s.subscribe("t")
    s.start()
    await until_priced(sub)
    s.submit(SetModel(model="acme/Chat-1B"))
    events = await collect_until(sub, stop={"settings_changed"})
    warnings = [e.log for e in of_type(events, "tool_log") if e.log.startswith("⚠")]
    assert warnings and "supports tool calls" in warnings[0]
    assert events[-1].model == "acme/Chat-1B"  # said, then switched: the user decides
    s.submit(SetModel(model="acme/Coder-9"))
    events = await collect_until(sub, stop={"settings_changed", "error"})
    [absent] = [e.log for e in of_type(events, "tool_log") if e.log.startswith("⚠")]
    assert "Did you mean acme/Coder-9B" in absent
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_the_picker_lists_current_recent_local_and_router_models(llm_server, monkeypatch, tmp_path, mlintern_home):
    llm_server.catalog = CATALOG
    dead = closed_port()
    for var in ("OLLAMA_BASE_URL", "LMSTUDIO_BASE_URL", "LLAMACPP_BASE_URL"):
        monkeypatch.setenv(var, dead)
    monkeypatch.delenv("LOCAL_LLM_BASE_URL", raising=False)
    with ScriptedLLMServer(model_name="qwen-local") as local:
        local_url = local.base_url
        monkeypatch.setenv("VLLM_BASE_URL", local_url)
        s = router_session(llm_server, monkeypatch, tmp_path, model_id="demo")
        sub = s.subscribe("t")
        s.start()
        s.submit(SetModel(model="acme/Coder-9B:groq"))  # used once: recent from now on
        await collect_until(sub, stop={"settings_changed"})
        s.submit(SetModel(model="demo"))
        await collect_until(sub, stop={"settings_changed"})
        s.submit(ListModels())
        lists = []
        while not lists or lists[-1].local_pending or lists[-1].router == "loading":
            lists += of_type(await collect_until(sub, stop={"model_list"}), "model_list")
    first, last = lists[0], lists[-1]
    assert first.current == "demo" and first.choices[0].id == "demo" and first.choices[0].source == "current"
    by_id = {c.id: c for c in last.choices}
    recent = by_id["acme/Coder-9B:groq"]
    assert recent.source == "recent" and (recent.input_per_mtok, recent.output_per_mtok) == (0.3, 1.2)
    assert recent.context == 32_768 and recent.tools and "used just now" in recent.detail
    assert [o.provider for o in recent.offers] == ["novita", "groq"]
    local_choice = by_id["vllm/qwen-local"]
    assert local_choice.source == "local" and local_choice.detail == f"vllm at {local_url}"
    assert (local_choice.input_per_mtok, local_choice.price_basis) == (0.0, "local, free")
    assert "nothing at" in last.local_note and dead in last.local_note
    chat = by_id["acme/Chat-1B"]
    assert chat.source == "router" and chat.tools is False and "tool calls" in chat.warning
    assert by_id["acme/Retired"].warning and by_id["acme/Retired"].input_per_mtok is None
    # listed as the router's: the bare id would be OpenAI's own API
    assert "huggingface/openai/gpt-oss-120b" in by_id and "openai/gpt-oss-120b" not in by_id
    assert last.router == "live" and [c.source for c in last.choices][:2] == ["current", "recent"]
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)


async def test_a_router_that_fails_leaves_the_kept_catalog_and_says_why(llm_server, monkeypatch, tmp_path):
    s = router_session(llm_server, monkeypatch, tmp_path, model_id="demo")
    old = RouterCatalog(s.data_dir / "router_catalog.json", llm_server.base_url + "/models")
    old.accept({"data": CATALOG}, now=1.0)  # kept from long ago
    llm_server.catalog = HTTPError(500, "boom")
    s.client.catalog = RouterCatalog(s.data_dir / "router_catalog.json", llm_server.base_url + "/models")
    sub = s.subscribe("t")
    s.start()
    s.submit(ListModels(refresh=True))
    lists = []
    while not lists or lists[-1].router == "loading":
        lists += of_type(await collect_until(sub, stop={"model_list"}), "model_list")
    assert lists[-1].router == "cached" and "did not answer" in lists[-1].router_note
    assert any(c.id == "acme/Coder-9B" for c in lists[-1].choices)
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)


async def test_the_catalog_endpoint_comes_from_the_config(llm_server, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_ROUTER_BASE_URL", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    llm_server.catalog = CATALOG
    config = Config(llm=LLMSettings(max_attempts=1), endpoints={"hf_router": llm_server.base_url})
    s = make_session(llm_server, monkeypatch, tmp_path, config=config, model_id="acme/Coder-9B")
    assert s.model.api_base == llm_server.base_url
    sub = s.subscribe("t")
    s.start()
    await until_priced(sub)
    assert llm_server.catalog_requests == 1
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)


# --------------------------------------------------------------------------- the name a server answers with


@pytest.mark.parametrize("transport", ["direct", "litellm"])
async def test_the_model_is_named_as_its_server_names_it(llm_server, monkeypatch, tmp_path, transport):
    monkeypatch.setenv("VLLM_BASE_URL", llm_server.base_url)
    llm_server.served_model = "SmolLM2-135M-Instruct.Q4_1.gguf"
    llm_server.script(Text("one"), Text("two"))
    config = Config(llm=LLMSettings(max_attempts=1, transport=transport))
    s = make_session(llm_server, monkeypatch, tmp_path, config=config, model_id="vllm/smollm2")
    sub = s.subscribe("t")
    s.start()
    s.submit(UserInput(text="hi"))
    events = await collect_until(sub)
    assert of_type(events, "llm_call")[0].served_model == "SmolLM2-135M-Instruct.Q4_1.gguf"
    [said] = [e.log for e in of_type(events, "tool_log") if "answers as" in e.log]
    assert said == "vllm/smollm2 answers as SmolLM2-135M-Instruct.Q4_1.gguf (the name its server gives)."
    assert [e.served_model for e in of_type(events, "settings_changed")] == ["SmolLM2-135M-Instruct.Q4_1.gguf"]
    s.submit(UserInput(text="again"))
    events = await collect_until(sub)
    assert not [e for e in of_type(events, "tool_log") if "answers as" in e.log]  # said once
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)


def test_a_server_echoing_the_id_is_not_renamed():
    from agent.llm.client import served_name

    router = resolve_model("moonshotai/Kimi-K2-Instruct:groq", env={"HF_TOKEN": "t"})
    assert served_name(router, "moonshotai/kimi-k2-instruct") is None
    assert served_name(router, "moonshotai/Kimi-K2-Instruct:groq") is None
    claude = resolve_model("anthropic/claude-sonnet-4-5", env={"ANTHROPIC_API_KEY": "k"})
    assert served_name(claude, "claude-sonnet-4-5") is None
    assert served_name(claude, "claude-sonnet-4-5-20250929") == "claude-sonnet-4-5-20250929"
    assert served_name(resolve_model("demo"), "anything") is None


def test_headless_says_the_name_the_server_answers_with(llm_server, mlintern_home):
    from tests.test_headless_cli import run

    llm_server.served_model = "SmolLM2-135M-Instruct.Q4_1.gguf"
    llm_server.script(Text("Hello from the small model."))
    proc = run(["-p", "hi", "-m", "llamacpp/smollm2"], mlintern_home, {"LLAMACPP_BASE_URL": llm_server.base_url})
    assert proc.returncode == 0, proc.stderr
    assert "Hello from the small model." in proc.stdout
    assert "llamacpp/smollm2 answers as SmolLM2-135M-Instruct.Q4_1.gguf" in proc.stderr
