"""Every knowledge and Hub tool, with both tokens set, sent at a host that is neither the Hub
nor GitHub: no request it receives carries either token (reference §12 item 7: the token
went to any URL the model named).

The Hub emulator answers on 127.0.0.1; the GitHub API is a recording sink of its own; every
other endpoint (dataset viewer, arXiv, ar5iv, Semantic Scholar, web search) and every URL
the model can name point at a recording sink reached as ``localhost`` - another host name,
so only the Hub's own host would be entitled to the HF token. The check covers headers,
query strings and bodies.
"""

from __future__ import annotations

import json

import pytest

from agent.net import Endpoints, Net
from agent.tools import default_tools
from agent.tools.base import SessionToolState, ToolContext
from agent.tools.router import ToolRouter
from tests.fakes.sink_server import SinkServer

HF, GH = "hf_test", "ghp_hygiene_secret"
#: tools that never make a request of their own (runtime, plan, jobs: covered elsewhere)
OFFLINE_TOOLS = {"bash", "read", "write", "edit", "plan_tool", "hf_jobs", "research"}


def calls_for(sink: str, hub: str) -> list[tuple[str, dict]]:
    page = f"{sink}/blog/post"
    return [
        ("fetch_url", {"url": page}),
        ("fetch_url", {"url": f"{sink}/api/models/meta/llama"}),  # looks like the Hub's API: still not the Hub
        ("fetch_url", {"url": f"{hub}/api/models/ada/x"}),  # the Hub itself, but fetch_url never sends a token
        ("fetch_hf_docs", {"url": f"{sink}/docs/transformers/index"}),
        ("web_search", {"query": "lora rank for 7b"}),
        ("hf_papers", {"operation": "read_paper", "arxiv_id": "2401.00001"}),
        ("hf_papers", {"operation": "citation_graph", "arxiv_id": "2401.00001"}),
        ("hf_papers", {"operation": "snippet_search", "query": "reward model"}),
        ("hf_papers", {"operation": "recommend", "positive_ids": "2401.00001"}),
        ("hf_papers", {"operation": "search", "query": "dpo", "min_citations": 10}),
        ("hf_inspect_dataset", {"dataset": "openai/gsm8k"}),
        ("github_find_examples", {"repo": "trl", "keyword": "sft"}),
        ("github_list_repos", {"owner": "huggingface"}),
        ("github_read_file", {"repo": "huggingface/trl", "path": "README.md"}),
        ("explore_hf_docs", {"endpoint": "trl", "query": "sft"}),
        ("find_hf_api", {"query": "list models"}),
        ("hf_repo_files", {"operation": "list", "repo_id": "ada/x"}),
        ("hf_repo_git", {"operation": "list_refs", "repo_id": "ada/x"}),
    ]


@pytest.fixture
def sink():
    with SinkServer() as server:
        yield server


@pytest.fixture
def github():
    with SinkServer() as server:
        yield server


async def test_no_request_to_another_host_carries_either_token(sink, github, hub, tmp_path):
    other = f"http://localhost:{sink.port}"
    endpoints = Endpoints(hub=hub.endpoint, datasets_server=other, github_api=github.base_url, arxiv=other,
                          ar5iv=other, semantic_scholar=other, web_search=f"{other}/html/", hf_router=other)
    net = Net(endpoints, hf_token=lambda: HF, github_token=lambda: GH, cache_dir=tmp_path / "cache",
              connect_timeout_s=2, read_timeout_s=5)
    router = ToolRouter(default_tools(), ungoverned=True)
    ctx = ToolContext(session_id="t", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(), net=net)
    calls = calls_for(other, hub.endpoint)
    covered = {name for name, _ in calls}
    assert covered | OFFLINE_TOOLS == set(router.names), "a new tool must be added to this test"
    outputs = {}
    try:
        for n, (name, args) in enumerate(calls):
            call = router.parse(f"c{n}", name, json.dumps(args))
            assert call.error is None, call.error
            result = await router.execute(call, ctx)
            outputs[(name, json.dumps(args))] = result.output  # failures are fine: what was sent matters
    finally:
        await net.aclose()
    assert len(sink.requests) >= 10, [r.path for r in sink.requests]  # the tools really went there
    for request in sink.requests:
        seen = " ".join([request.path, request.body.decode("latin-1"), *request.headers.values()])
        assert HF not in seen and GH not in seen, (request.method, request.path, request.headers)
        assert "authorization" not in request.headers, (request.method, request.path)
    # the GitHub API got the GitHub token and nothing of the Hub's
    assert github.requests and all(r.headers.get("authorization") == f"Bearer {GH}" for r in github.requests)
    assert all(HF not in " ".join([r.path, *r.headers.values()]) for r in github.requests)
    # the Hub emulator got the HF token from the Hub tools and never the GitHub one, and the
    # request fetch_url made to it went without any token
    assert any(r.token == HF for r in hub.requests)
    assert all(r.token in (None, HF) for r in hub.requests)
    fetched = [r for r in hub.requests if r.path == "/api/models/ada/x"]
    assert fetched and all(r.token is None for r in fetched)
