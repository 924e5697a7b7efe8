"""explore_hf_docs, fetch_hf_docs and find_hf_api against the Hub emulator on 127.0.0.1.

The emulator serves the docs the way the Hub does (a sidebar in the HTML, each page as
``.md``) and records every request with the token it carried, so the tests check what
was sent, not only what came back.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from pathlib import Path

import pytest

from agent.docs_index import DocPage as IndexPage
from agent.docs_index import DocsIndex, DocsIndexError, fts_queries
from agent.net import Endpoints, Net
from agent.tools.base import SessionToolState, ToolContext
from agent.tools.docs import (
    ExploreHfDocsParams,
    ExploreHfDocsTool,
    FetchHfDocsParams,
    FetchHfDocsTool,
    hub_docs_url,
)
from agent.tools.hf_api import FindHfApiParams, FindHfApiTool
from agent.tools.router import ToolRouter, tool_spec
from tests.fakes.hub_docs import DocPage
from tests.fakes.hub_server import HubEmulator


def make_ctx(tmp_path: Path, hub_url: str, token: str | None = "hf_test", logs: list[str] | None = None) -> ToolContext:
    net = Net(Endpoints.resolve({}, env={"HF_ENDPOINT": hub_url}), hf_token=lambda: token,
              cache_dir=tmp_path / "http-cache", connect_timeout_s=2.0, read_timeout_s=5.0)
    return ToolContext(session_id="t", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(),
                       net=net, log=(logs.append if logs is not None else (lambda line: None)))


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    return tmp_path / "index" / "docs-index.sqlite"


@pytest.fixture
def other():
    """A second loopback server standing for 'anywhere that is not the Hub'."""
    with HubEmulator() as server:
        yield server


async def explore(ctx: ToolContext, index_path: Path, **kw):
    tool = kw.pop("tool", None) or ExploreHfDocsTool(index_path=index_path)
    return await tool.run(ExploreHfDocsParams(**kw), ctx)


def docs_requests(hub: HubEmulator) -> list:
    return [r for r in hub.requests if r.path.startswith("/docs/")]


# ---- explore_hf_docs: ranking ----------------------------------------------------------------


async def test_title_match_beats_a_single_mention(hub, tmp_path, index_path):
    result = await explore(make_ctx(tmp_path, hub.endpoint), index_path, endpoint="trl", query="DPO")
    assert result.success, result.output
    order = [line.split(". ", 1)[1].split("  (score")[0] for line in result.output.splitlines()
             if line[:1].isdigit() and ". " in line]
    assert order[0] == "DPO Trainer"
    assert "Logging" in order  # it mentions DPO once, so it is found, but below
    assert order.index("Logging") > 0
    assert f"{hub.endpoint}/docs/trl/dpo_trainer" in result.output
    assert "**DPO**" in result.output  # the snippet marks the match


async def test_stemming_finds_other_forms_of_a_word(hub, tmp_path, index_path):
    result = await explore(make_ctx(tmp_path, hub.endpoint), index_path, endpoint="trl", query="training")
    # the Quickstart says only "train", never "training"
    assert f"{hub.endpoint}/docs/trl/quickstart" in result.output, result.output


async def test_all_words_rank_before_some_words(hub, tmp_path, index_path):
    result = await explore(make_ctx(tmp_path, hub.endpoint), index_path, endpoint="trl", query="how to use packing with SFTConfig")
    first = next(line for line in result.output.splitlines() if line.startswith("1. "))
    assert "SFT Trainer" in first


@pytest.mark.parametrize("query", [
    'SFTConfig "packing', "fine-tuning: AND OR NOT (x*", "NEAR(dpo, sft)", '"', "***", "title:DPO",
    "dpo^2 {col} -beta", "AND", "Ünïcödé ß 中文",
])
async def test_queries_with_fts5_syntax_never_raise(hub, tmp_path, index_path, query):
    result = await explore(make_ctx(tmp_path, hub.endpoint), index_path, endpoint="trl", query=query)
    assert result.success, result.output


def test_fts_queries_quote_every_word():
    all_words, any_word = fts_queries('how to "chat template" fine-tuning NOT x"y')
    assert all_words == '"chat template" "fine-tuning" "NOT" "x" "y"'
    assert any_word.count(" OR ") == 4
    assert fts_queries("  ?? ") is None
    assert fts_queries("how to") == ('"how" "to"', '"how" OR "to"')  # only stopwords: keep them


# ---- explore_hf_docs: the index on disk ----------------------------------------------------


async def test_index_is_built_once_and_reused_from_disk(hub, tmp_path, index_path):
    logs: list[str] = []
    ctx = make_ctx(tmp_path, hub.endpoint, logs=logs)
    first = await explore(ctx, index_path, endpoint="trl", query="GRPO")
    assert first.success, first.output
    fetched = docs_requests(hub)
    assert len([r for r in fetched if r.path.endswith(".md")]) == 8
    assert "indexing trl: 8/8 pages" in logs

    # a new tool instance (a new session) answers from the file without a single request
    second = await explore(make_ctx(tmp_path, hub.endpoint), index_path, endpoint="trl", query="reward functions")
    assert "GRPO Trainer" in second.output
    listing = await explore(make_ctx(tmp_path, hub.endpoint), index_path, endpoint="trl")
    assert "Pages 1-8 of 8" in listing.output and "Trainers" in listing.output
    assert docs_requests(hub) == fetched

    # asked to, or once older than its TTL, the section is fetched again
    await explore(ctx, index_path, endpoint="trl", query="x", refresh=True)
    assert len(docs_requests(hub)) == 2 * len(fetched)
    rebuilt = await explore(ctx, index_path, endpoint="trl", query="GRPO",
                            tool=ExploreHfDocsTool(index_path=index_path, ttl_s=0))
    assert len(docs_requests(hub)) == 3 * len(fetched)
    assert rebuilt.output.count("GRPO Trainer") == 1  # replaced, not added twice
    conn = sqlite3.connect(index_path)
    conn.execute("INSERT INTO docs (docs) VALUES ('integrity-check')")  # raises if the FTS index drifted
    assert conn.execute("SELECT count(*) FROM pages").fetchone()[0] == 8
    conn.close()


async def test_listing_pages_in_sidebar_order_with_offset(hub, tmp_path, index_path):
    ctx = make_ctx(tmp_path, hub.endpoint)
    result = await explore(ctx, index_path, endpoint="trl", max_results=3)
    assert "Pages 1-3 of 8" in result.output
    assert result.output.index("TRL - Transformer") < result.output.index("Installation") < result.output.index("Quickstart")
    assert "offset=3" in result.output
    rest = await explore(ctx, index_path, endpoint="trl", max_results=50, offset=3)
    assert "Pages 4-8 of 8" in rest.output and "SFT Trainer" in rest.output and "Installation" not in rest.output


async def test_sidebar_links_elsewhere_are_never_fetched_and_token_stays_on_hub(hub, other, tmp_path, index_path):
    hub.add_docs_link("trl", f"{other.endpoint}/docs/trl/evil", "Looks like a docs page")
    hub.add_docs_link("trl", "https://github.com/huggingface/trl", "GitHub")
    result = await explore(make_ctx(tmp_path, hub.endpoint), index_path, endpoint="trl", query="sft")
    assert result.success, result.output
    assert other.requests == []
    assert {r.token for r in hub.requests} == {"hf_test"}
    assert "Looks like a docs page" not in (await explore(make_ctx(tmp_path, hub.endpoint), index_path,
                                                          endpoint="trl", max_results=50)).output


async def test_a_missing_page_costs_only_that_page(hub, tmp_path, index_path):
    hub.fail_docs(r"/docs/trl/logging\.md$", 404, "gone")
    result = await explore(make_ctx(tmp_path, hub.endpoint), index_path, endpoint="trl", query="logging")
    assert result.success
    assert "1 page(s) of 'trl' could not be fetched" in result.output
    assert "Logging" in result.output  # still found by its sidebar title


async def test_composite_section_searches_every_part(hub, tmp_path, index_path):
    hub.set_docs({
        "optimum": [DocPage("Get started", "index", "Optimum", "# Optimum\n\nHardware acceleration.\n")],
        "optimum-neuron": [DocPage("Guides", "export", "Export to Neuron", "# Export to Neuron\n\nCompile for Inferentia.\n")],
    })
    result = await explore(make_ctx(tmp_path, hub.endpoint), index_path, endpoint="optimum", query="inferentia")
    assert result.success, result.output
    assert "Export to Neuron" in result.output and "Section: optimum-neuron / Guides" in result.output
    assert "skipped" in result.output  # the parts the emulator does not have (404)
    before = len(hub.requests)
    again = await explore(make_ctx(tmp_path, hub.endpoint), index_path, endpoint="optimum", query="hardware")
    assert "Optimum" in again.output and "skipped" not in again.output
    assert len(hub.requests) == before  # the missing parts are remembered too


def test_aliases_and_schema():
    assert ExploreHfDocsParams(endpoint="tgi").endpoint == "text-generation-inference"
    spec = tool_spec(ExploreHfDocsTool())
    params = spec["function"]["parameters"]
    assert "trl" in params["properties"]["endpoint"]["enum"]
    assert params["additionalProperties"] is False
    assert ToolRouter([ExploreHfDocsTool()], ungoverned=True).parse("c", "explore_hf_docs", '{"endpoint": "nope"}').error


# ---- explore_hf_docs: failures ---------------------------------------------------------------


async def test_unknown_section_is_a_404_sentence(hub, tmp_path, index_path):
    result = await explore(make_ctx(tmp_path, hub.endpoint), index_path, endpoint="peft", query="lora")
    assert not result.success
    assert "404" in result.output and "peft" in result.output


async def test_refused_token_is_a_401_sentence(hub, tmp_path, index_path):
    result = await explore(make_ctx(tmp_path, hub.endpoint, token="hf_bad"), index_path, endpoint="trl", query="dpo")
    assert not result.success
    assert "401" in result.output and "HF_TOKEN" in result.output


async def test_rate_limit_keeps_the_old_index_or_fails_clearly(hub, tmp_path, index_path):
    ctx = make_ctx(tmp_path, hub.endpoint)
    hub.fail_docs(r"\.md$", 429, "slow down", {"Retry-After": "120"})
    result = await explore(ctx, index_path, endpoint="trl", query="dpo")
    assert not result.success
    assert "429" in result.output and "120 s" in result.output
    assert DocsIndex(index_path).section("trl") is None  # nothing half-built was stored
    before = len(hub.requests)
    assert not (await explore(ctx, index_path, endpoint="trl", query="dpo")).success
    assert len(hub.requests) == before  # inside the Retry-After window: no new request at all

    # with an index already on disk, a rate-limited refresh answers from it and says so
    fresh = make_ctx(tmp_path, hub.endpoint)
    hub.fail_docs(r"\.md$", 0, times=0)
    ok = await explore(fresh, index_path, endpoint="trl", query="dpo",
                       tool=ExploreHfDocsTool(index_path=tmp_path / "other.sqlite"))
    assert ok.success, ok.output
    hub.fail_docs(r"/docs/trl/index$", 429, "slow down", {"Retry-After": "60"})
    stale = await explore(fresh, index_path, endpoint="trl", query="dpo", refresh=True,
                          tool=ExploreHfDocsTool(index_path=tmp_path / "other.sqlite"))
    assert stale.success, stale.output
    assert "could not be refreshed" in stale.output and "DPO Trainer" in stale.output


async def test_refused_connection_and_offline_mode(tmp_path, index_path, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    result = await explore(make_ctx(tmp_path, f"http://127.0.0.1:{port}"), index_path, endpoint="trl", query="x")
    assert not result.success and "refused" in result.output
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = await explore(make_ctx(tmp_path, f"http://127.0.0.1:{port}"), index_path, endpoint="trl", query="x")
    assert not offline.success and "offline mode" in offline.output


# ---- the index file damaged or locked ----------------------------------------------------------

GARBAGE = b"this is not an SQLite file\n" * 400


def corrupt_copies(index_path: Path) -> list[Path]:
    found = index_path.parent.glob(f"{index_path.name}.corrupt-*")
    return sorted(p for p in found if not p.name.endswith(("-wal", "-shm")))


def assert_rebuilt(index_path: Path, logs: list[str]) -> None:
    """The garbage was moved aside (not deleted), a working index is in its place, and one log line said so."""
    copies = corrupt_copies(index_path)
    assert len(copies) == 1 and copies[0].read_bytes() == GARBAGE
    conn = sqlite3.connect(index_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] > 0
    conn.close()
    rebuilt = [line for line in logs if "rebuilt" in line]
    assert len(rebuilt) == 1 and "file is not a database" in rebuilt[0] and copies[0].name in rebuilt[0]


async def test_explore_rebuilds_a_garbage_index_file(hub, tmp_path, index_path):
    index_path.parent.mkdir(parents=True)
    index_path.write_bytes(GARBAGE)
    logs: list[str] = []
    result = await explore(make_ctx(tmp_path, hub.endpoint, logs=logs), index_path, endpoint="trl", query="GRPO")
    assert result.success, result.output
    assert "GRPO Trainer" in result.output
    assert_rebuilt(index_path, logs)

    # a file damaged under a tool that already used it (same instance, file overwritten in place)
    tool = ExploreHfDocsTool(index_path=tmp_path / "second" / "docs-index.sqlite")
    first = await explore(make_ctx(tmp_path, hub.endpoint), tool.index.path, endpoint="trl", query="x", tool=tool)
    assert first.success
    before = len(docs_requests(hub))
    tool.index.path.write_bytes(GARBAGE)
    logs2: list[str] = []
    again = await explore(make_ctx(tmp_path, hub.endpoint, logs=logs2), tool.index.path, endpoint="trl",
                          query="reward functions", tool=tool)
    assert again.success and "GRPO Trainer" in again.output
    assert len(docs_requests(hub)) > before  # the section was fetched again into the new file
    assert_rebuilt(tool.index.path, logs2)


async def test_fetch_treats_a_garbage_index_as_a_miss(hub, tmp_path, index_path):
    index_path.parent.mkdir(parents=True)
    index_path.write_bytes(GARBAGE)
    logs: list[str] = []
    result = await FetchHfDocsTool(index_path=index_path).run(
        FetchHfDocsParams(url=f"{hub.endpoint}/docs/trl/sft_trainer"), make_ctx(tmp_path, hub.endpoint, logs=logs))
    assert result.success, result.output
    assert "packing=True" in result.output
    assert [r.path for r in hub.requests] == ["/docs/trl/sft_trainer.md"]
    assert_rebuilt(index_path, logs)


async def test_fetch_reads_the_page_whatever_is_wrong_with_the_index(hub, tmp_path, monkeypatch):
    def broken(self, url):
        raise DocsIndexError("The docs index (x) could not be used: disk I/O error.")

    monkeypatch.setattr(DocsIndex, "page_text", broken)
    result = await FetchHfDocsTool(index_path=tmp_path / "i.sqlite").run(
        FetchHfDocsParams(url=f"{hub.endpoint}/docs/trl/sft_trainer"), make_ctx(tmp_path, hub.endpoint))
    assert result.success and "packing=True" in result.output


async def test_find_api_rebuilds_a_garbage_index_file(hub, tmp_path):
    index_path = tmp_path / "api.sqlite"
    index_path.write_bytes(GARBAGE)
    logs: list[str] = []
    result = await find(make_ctx(tmp_path, hub.endpoint, logs=logs), tmp_path, query="stream space logs")
    assert result.success, result.output
    assert result.output.split("## ")[1].startswith("GET /api/spaces/{repo_id}/logs/{kind}")
    assert_rebuilt(index_path, logs)

    # the same tool, its spec already read, after the file is damaged again: indexes the spec anew
    tool = FindHfApiTool(index_path=index_path)
    ctx = make_ctx(tmp_path, hub.endpoint)
    assert (await tool.run(FindHfApiParams(query="whoami"), ctx)).success
    index_path.write_bytes(GARBAGE)
    again = await tool.run(FindHfApiParams(query="create a new repository"), ctx)
    assert again.success and again.output.split("## ")[1].startswith("POST /api/repos/create")


def test_index_keeps_only_the_newest_damaged_copies(tmp_path):
    index = DocsIndex(tmp_path / "docs-index.sqlite")
    for i in range(4):
        index.path.write_bytes(GARBAGE + bytes([i]))
        assert index.section("trl") is None
        assert len(index.take_notices()) == 1
    copies = corrupt_copies(index.path)
    assert len(copies) == 2 and copies[-1].read_bytes().endswith(bytes([3]))


def test_a_locked_index_is_retried_then_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(DocsIndex, "busy_timeout_s", 0.05)
    monkeypatch.setattr(DocsIndex, "lock_pause_s", 0.05)
    index = DocsIndex(tmp_path / "docs-index.sqlite")
    index.replace_section("trl", [IndexPage("u1", "One", "", "# One\nfirst")], "src")
    other = sqlite3.connect(index.path, isolation_level=None, check_same_thread=False)  # another program, mid-write
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DocsIndexError, match="locked: another program is writing to it"):
            index.replace_section("trl", [], "src")
        assert index.section("trl").pages == 1  # readers are not blocked (WAL)
        # released while the index waits: the write goes through
        threading.Timer(0.08, lambda: other.execute("COMMIT")).start()
        monkeypatch.setattr(DocsIndex, "lock_attempts", 10)
        index.replace_section("trl", [], "src")
        assert index.section("trl").pages == 0
    finally:
        other.close()
    assert corrupt_copies(index.path) == [] and index.take_notices() == []


async def test_explore_with_a_locked_index_is_a_sentence(hub, tmp_path, index_path, monkeypatch):
    monkeypatch.setattr(DocsIndex, "busy_timeout_s", 0.05)
    monkeypatch.setattr(DocsIndex, "lock_pause_s", 0.01)
    DocsIndex(index_path).section("trl")  # make the file
    other = sqlite3.connect(index_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        result = await explore(make_ctx(tmp_path, hub.endpoint), index_path, endpoint="trl", query="dpo")
    finally:
        other.close()
    assert not result.success
    assert result.output.startswith("ERROR: The docs index") and "locked" in result.output
    assert "Traceback" not in result.output and corrupt_copies(index_path) == []


# ---- fetch_hf_docs ---------------------------------------------------------------------------


async def test_fetch_pages_through_a_long_page_in_slices(hub, tmp_path):
    paragraphs = [f"## Part {i}\n\n" + f"Paragraph {i} says something about training. " * 20 for i in range(40)]
    long_page = "# A long page\n\n" + "\n\n".join(paragraphs) + "\n"
    hub.set_docs({"trl": [DocPage("Guides", "long", "A long page", long_page)]})
    ctx = make_ctx(tmp_path, hub.endpoint)
    tool = FetchHfDocsTool(index_path=tmp_path / "idx.sqlite")
    offset, pieces, spill = 0, [], None
    for _ in range(30):
        result = await tool.run(FetchHfDocsParams(url=f"{hub.endpoint}/docs/trl/long", offset=offset,
                                                  max_chars=5_000), ctx)
        assert result.success, result.output
        assert len(result.output) < 5_000 + 400
        header, rest = result.output.split("\n\n", 1)
        if "more characters: call fetch_hf_docs with offset=" in rest:
            body, note = rest.rsplit("\n\n[", 1)
            spill = result.spill_path
            assert spill and Path(spill).read_text() == long_page
            pieces.append(body)
            offset = int(note.split("offset=")[1].split(".")[0])
        else:
            pieces.append(rest.removesuffix("\n\n[end of page]"))
            break
    assert "".join(pieces) == long_page
    assert len(pieces) > 5
    assert all(r.path == "/docs/trl/long.md" and r.token == "hf_test" for r in hub.requests)
    assert len(hub.requests) == 1  # the later slices come from the disk cache

    past = await tool.run(FetchHfDocsParams(url=f"{hub.endpoint}/docs/trl/long", offset=10**7), ctx)
    assert not past.success and "past the end" in past.output


async def test_fetch_short_page_and_public_hub_links(hub, tmp_path):
    ctx = make_ctx(tmp_path, hub.endpoint)
    tool = FetchHfDocsTool(index_path=tmp_path / "idx.sqlite")
    result = await tool.run(FetchHfDocsParams(url="https://huggingface.co/docs/trl/sft_trainer#packing"), ctx)
    assert result.success, result.output
    assert "packing=True" in result.output and result.spill_path is None
    assert [r.path for r in hub.requests] == ["/docs/trl/sft_trainer.md"]  # read from the configured Hub


@pytest.mark.parametrize("bad", ["{other}/docs/trl/sft_trainer", "{hub}/api/whoami-v2", "{hub}/docs/../api/whoami-v2",
                                 "file:///etc/passwd", "https://evil.example/docs/trl/sft_trainer", "{hub}/docs"])
async def test_fetch_refuses_anything_but_hub_docs_without_a_request(hub, other, tmp_path, bad):
    url = bad.format(other=other.endpoint, hub=hub.endpoint)
    result = await FetchHfDocsTool(index_path=tmp_path / "idx.sqlite").run(FetchHfDocsParams(url=url),
                                                                          make_ctx(tmp_path, hub.endpoint))
    assert not result.success
    assert "fetch_url" in result.output
    assert hub.requests == [] and other.requests == []


def test_hub_docs_url_normalises():
    hub = "http://127.0.0.1:9"
    assert hub_docs_url("/docs/trl/sft_trainer.md", hub) == (f"{hub}/docs/trl/sft_trainer", f"{hub}/docs/trl/sft_trainer.md")
    assert hub_docs_url("https://hf.co/docs/hub//repositories/?x=1", hub) == (
        f"{hub}/docs/hub/repositories", f"{hub}/docs/hub/repositories.md")


async def test_fetch_missing_page_points_at_explore(hub, tmp_path):
    result = await FetchHfDocsTool(index_path=tmp_path / "i.sqlite").run(
        FetchHfDocsParams(url=f"{hub.endpoint}/docs/trl/nope"), make_ctx(tmp_path, hub.endpoint))
    assert not result.success and "404" in result.output and "explore_hf_docs" in result.output


async def test_fetch_uses_the_docs_index_when_the_page_is_in_it(hub, tmp_path, index_path):
    ctx = make_ctx(tmp_path, hub.endpoint)
    await explore(ctx, index_path, endpoint="trl", query="dpo")
    before = len(hub.requests)
    result = await FetchHfDocsTool(index_path=index_path).run(FetchHfDocsParams(url=f"{hub.endpoint}/docs/trl/dpo_trainer"), ctx)
    assert "chosen" in result.output
    assert len(hub.requests) == before


# ---- find_hf_api -----------------------------------------------------------------------------


async def find(ctx, tmp_path, **kw):
    return await FindHfApiTool(index_path=tmp_path / "api.sqlite").run(FindHfApiParams(**kw), ctx)


async def test_find_api_by_query_renders_a_curl_without_the_token(hub, tmp_path):
    result = await find(make_ctx(tmp_path, hub.endpoint), tmp_path, query="stream space logs")
    assert result.success, result.output
    first = result.output.split("## ")[1]
    assert first.startswith("GET /api/spaces/{repo_id}/logs/{kind}")
    assert f'curl -X GET "{hub.endpoint}/api/spaces/openai-community/gpt2/logs/build"' in first
    assert 'Authorization: Bearer $HF_TOKEN' in first
    assert "hf_test" not in result.output
    assert "path `repo_id` (string, required)" in first  # a $ref parameter, resolved
    assert "text/event-stream" in first


async def test_find_api_request_body_and_response_schema(hub, tmp_path):
    result = await find(make_ctx(tmp_path, hub.endpoint), tmp_path, query="create a new repository")
    first = result.output.split("## ")[1]
    assert first.startswith("POST /api/repos/create")
    assert "-H \"Content-Type: application/json\"" in first and '"name": "<string, required>"' in first
    models = await find(make_ctx(tmp_path, hub.endpoint), tmp_path, query="model info")
    assert "array of ModelInfo" in models.output or "ModelInfo" in models.output


async def test_find_api_by_tag_and_unknown_tag(hub, tmp_path):
    ctx = make_ctx(tmp_path, hub.endpoint)
    spaces = await find(ctx, tmp_path, tag="Spaces")
    assert spaces.success
    assert "## GET /api/spaces/{repo_id}/logs/{kind}" in spaces.output and "## POST /api/spaces/{repo_id}/restart" in spaces.output
    assert "/api/models" not in spaces.output
    within = await find(ctx, tmp_path, tag="spaces", query="restart")
    assert within.output.split("## ")[1].startswith("POST /api/spaces/{repo_id}/restart")
    assert "logs" not in within.output
    unknown = await find(ctx, tmp_path, tag="webhooks")
    assert not unknown.success and "models (2)" in unknown.output and "spaces (2)" in unknown.output
    neither = await find(ctx, tmp_path)
    assert not neither.success
    nothing = await find(ctx, tmp_path, query='"zzz" OR :')
    assert nothing.success and "No Hub API endpoint matches" in nothing.output


async def test_find_api_spec_is_cached_on_disk(hub, tmp_path):
    ctx = make_ctx(tmp_path, hub.endpoint)
    await find(ctx, tmp_path, query="whoami")
    again = await find(make_ctx(tmp_path, hub.endpoint), tmp_path, query="who am i token user")
    assert "GET /api/whoami-v2" in again.output
    assert [r.path for r in hub.requests] == ["/.well-known/openapi.json"]


async def test_find_api_failures(hub, tmp_path):
    hub.fail_docs(r"openapi", 404, "no spec here")
    missing = await find(make_ctx(tmp_path, hub.endpoint), tmp_path, query="models")
    assert not missing.success and "404" in missing.output and "API spec" in missing.output
    hub.fail_docs(r"openapi", 429, "slow", {"Retry-After": "90"})
    limited = await find(make_ctx(tmp_path, hub.endpoint), tmp_path, query="models")
    assert not limited.success and "429" in limited.output
    hub.set_openapi({"not": "a spec"})
    broken = await find(make_ctx(tmp_path / "b", hub.endpoint), tmp_path, query="models")
    assert not broken.success and "could not be read" in broken.output


async def test_find_api_through_the_router(hub, tmp_path):
    router = ToolRouter([FindHfApiTool(index_path=tmp_path / "r.sqlite")], ungoverned=True)
    call = router.parse("c1", "find_hf_api", json.dumps({"query": "list datasets"}))
    result = await router.execute(call, make_ctx(tmp_path, hub.endpoint))
    assert result.success and "GET /api/datasets" in result.output
