"""hf_inspect_dataset against a loopback dataset viewer (tests/fakes/datasets_server.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agent.net import Endpoints, Net
from agent.tools.base import SessionToolState, ToolContext
from agent.tools.datasets import HfInspectDatasetTool, normalise_dataset_id, summarise_chat
from agent.tools.router import ToolRouter
from tests.fakes.datasets_server import DatasetsServerEmulator
from tests.fakes.web_server import WebEmulator

HUB = "http://127.0.0.1:9"  # the viewer runs on this host: it gets the HF token only as a Hub service


@pytest.fixture
def viewer():
    with DatasetsServerEmulator(hub=HUB) as server:
        yield server


@pytest.fixture
def github_side():
    """Another service on its own origin, to prove the HF token does not go there."""
    with WebEmulator() as web:
        yield web


def make_net(datasets_server: str, tmp_path: Path, token: str | None = "hf_test", github: str = "http://127.0.0.1:9") -> Net:
    endpoints = Endpoints(hub=HUB, datasets_server=datasets_server, github_api=github, arxiv="http://127.0.0.1:9",
                          ar5iv="http://127.0.0.1:9", semantic_scholar="http://127.0.0.1:9",
                          web_search="http://127.0.0.1:9/html/")
    return Net(endpoints, hf_token=lambda: token, github_token=lambda: "gh_secret", cache_dir=tmp_path / "cache")


@pytest.fixture
async def ctx(viewer: DatasetsServerEmulator, tmp_path: Path):
    net = make_net(viewer.endpoint, tmp_path)
    yield ToolContext(session_id="t", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(), net=net)
    await net.aclose()


async def inspect(ctx: ToolContext, dataset: str, **kw):
    tool = HfInspectDatasetTool()
    return await tool.run(tool.Params(dataset=dataset, **kw), ctx)


async def test_chat_dataset_overview(ctx, viewer):
    result = await inspect(ctx, "HuggingFaceH4/chat-demo")
    assert result.success, result.output
    out = result.output
    assert "Dataset viewer: viewer: yes · preview: yes · search: yes · filter: yes · statistics: yes" in out
    assert f"{HUB}/datasets/HuggingFaceH4/chat-demo" in out
    assert "| default | train_sft | 120 |" in out and "| default | test_sft | 20 |" in out
    # schema with types, the chat column as a list of structs
    assert "- messages: list<{content: string, role: string}>" in out
    assert "- score: float64" in out
    # chat column summarised, with the first line of each message, not dumped
    assert "3 messages: system, user, assistant" in out
    assert "system: You are a helpful assistant." in out and "Be concise." not in out
    assert "Details follow. Details follow. Details follow." in out and "chars)" in out
    assert out.count("### Row ") == 3
    assert "## Parquet files (2)" in out and "refs%2Fconvert%2Fparquet/default/train_sft/0000.parquet" in out
    assert 'load_dataset("HuggingFaceH4/chat-demo", split="train_sft")' in out
    assert "License: mit" in out


async def test_requests_and_parallel_first_batch(ctx, viewer):
    await inspect(ctx, "stanfordnlp/imdb-demo", sample_rows=1)
    paths = [r.path for r in viewer.requests]
    assert sorted(paths[:4]) == ["/is-valid", "/parquet", "/size", "/splits"]
    assert sorted(paths[4:]) == ["/first-rows", "/info"]
    rows_req = viewer.requests_to("/first-rows")[0]
    assert rows_req.query == {"dataset": ["stanfordnlp/imdb-demo"], "config": ["plain_text"], "split": ["train"]}
    # the HF token goes to the dataset viewer
    assert {r.token for r in viewer.requests} == {"hf_test"}


async def test_config_split_choice_and_classlabel(ctx, viewer):
    result = await inspect(ctx, "stanfordnlp/imdb-demo", config="plain_text", split="test", sample_rows=2)
    assert result.success
    assert "- label: class_label[neg, pos]" in result.output
    assert "Review 250:" in result.output and "Review 0:" not in result.output
    assert "| unsupervised | unsupervised | 50 |" in result.output
    # long text cut to ~150 chars, with its full length
    review = [l for l in result.output.splitlines() if l.startswith("- text: Review 250:")][0]
    assert review.endswith("… (392 chars)") and len(review) < 190

    bad = await inspect(ctx, "stanfordnlp/imdb-demo", config="nope")
    assert not bad.success and "its configs are: plain_text, unsupervised" in bad.output
    bad_split = await inspect(ctx, "stanfordnlp/imdb-demo", config="plain_text", split="validation")
    assert not bad_split.success and "its splits are: train, test" in bad_split.output


async def test_zero_sample_rows_still_shows_schema(ctx, viewer):
    result = await inspect(ctx, "stanfordnlp/imdb-demo", sample_rows=0)
    assert "## Schema" in result.output and "### Row" not in result.output


async def test_invalid_id_makes_no_request(ctx, viewer):
    for bad in ("imdb", "a/b/c", "org/na me", "../etc", "org/name--x"):
        result = await inspect(ctx, bad)
        assert not result.success and "'org/name'" in result.output
    assert viewer.requests == []
    assert normalise_dataset_id("https://huggingface.co/datasets/org/name/viewer") == "org/name"


async def test_gated_without_token_says_where_to_accept(viewer, tmp_path):
    net = make_net(viewer.endpoint, tmp_path, token=None)
    ctx = ToolContext(session_id="t", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(), net=net)
    try:
        result = await inspect(ctx, "meta-demo/gated-set")
    finally:
        await net.aclose()
    assert not result.success
    assert f"accept the terms at {HUB}/datasets/meta-demo/gated-set" in result.output
    assert "set HF_TOKEN" in result.output
    assert all(r.authorization is None for r in viewer.requests)


async def test_gated_with_token_that_has_not_accepted(viewer, tmp_path):
    viewer.accepted_tokens = {"someone_else"}
    net = make_net(viewer.endpoint, tmp_path, token="hf_test")
    ctx = ToolContext(session_id="t", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(), net=net)
    try:
        result = await inspect(ctx, "meta-demo/gated-set")
    finally:
        await net.aclose()
    assert not result.success
    assert f"accept the terms at {HUB}/datasets/meta-demo/gated-set" in result.output
    # with the right token it works
    viewer.accepted_tokens = {"hf_test"}
    net = make_net(viewer.endpoint, tmp_path / "b", token="hf_test")
    ctx.net = net
    try:
        ok = await inspect(ctx, "meta-demo/gated-set")
    finally:
        await net.aclose()
    assert ok.success, ok.output


async def test_missing_dataset_404(ctx, viewer):
    result = await inspect(ctx, "nobody/nothing-here")
    assert not result.success and "check the spelling" in result.output


async def test_rate_limited_viewer(ctx, viewer):
    viewer.fail_next("/(is-valid|splits)", 429, {"error": "Too many requests"}, {"Retry-After": "120"}, times=2)
    result = await inspect(ctx, "stanfordnlp/imdb-demo")
    assert not result.success
    assert "429" in result.output and "120 s" in result.output


async def test_one_failing_section_is_reported_in_place(ctx, viewer):
    viewer.fail_next("/parquet", 500, {"error": "The server is busier than usual and the response is not ready yet."},
                     {"X-Error-Code": "ResponseNotReady"}, times=2)
    result = await inspect(ctx, "stanfordnlp/imdb-demo")
    assert result.success
    assert "## Parquet files" in result.output and "not available" in result.output
    assert "| plain_text | train | 250 |" in result.output


async def test_refused_connection(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    net = make_net(f"http://127.0.0.1:{port}", tmp_path)
    ctx = ToolContext(session_id="t", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(), net=net)
    try:
        result = await inspect(ctx, "stanfordnlp/imdb-demo")
    finally:
        await net.aclose()
    assert not result.success and "refused" in result.output


async def test_hf_token_never_reaches_github_origin(viewer, github_side, tmp_path):
    """The session's Net holds both tokens; each service sees only its own."""
    net = make_net(viewer.endpoint, tmp_path, github=github_side.endpoint)
    try:
        await net.get(f"{github_side.endpoint}/docs/data.json", auth="github")
        await net.get(f"{github_side.endpoint}/docs/data.json", auth="hf")
    finally:
        await net.aclose()
    tokens = [r.token for r in github_side.requests]
    assert tokens == ["gh_secret", None]


async def test_through_router(ctx, viewer):
    router = ToolRouter([HfInspectDatasetTool()], ungoverned=True)
    spec = router.specs()[0]["function"]
    assert set(spec["parameters"]["properties"]) == {"dataset", "config", "split", "sample_rows"}
    assert spec["parameters"]["required"] == ["dataset"]
    too_many = router.parse("c1", "hf_inspect_dataset", '{"dataset": "stanfordnlp/imdb-demo", "sample_rows": 11}')
    assert too_many.error and "NOT executed" in too_many.error
    call = router.parse("c2", "hf_inspect_dataset", '{"dataset": "stanfordnlp/imdb-demo", "sample_rows": 1}')
    result = await router.execute(call, ctx)
    assert result.success and "### Row 0" in result.output


def test_chat_summary_handles_multimodal_parts():
    text = summarise_chat([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]},
                           {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}])
    assert text.startswith("2 messages: user, assistant")
    assert "user: [image] What is it?" in text and "assistant: [tool calls]" in text
