"""``hf_papers`` against loopback emulators of the Hub, arXiv, ar5iv and Semantic Scholar.

Nothing reaches the internet: every endpoint is a server on 127.0.0.1 answering in the real
service's shapes, and the tool runs through the real ``Net`` (tokens, cache, errors).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from agent.net import Endpoints, Net
from agent.tools.base import SessionToolState, ToolContext
from agent.tools.papers import HfPapersParams, HfPapersTool
from agent.tools.router import ToolRouter
from tests.fakes.arxiv_server import ArxivEmulator, latexml_page
from tests.fakes.s2_server import SemanticScholarEmulator

MISTRAL = "2310.06825"
LLAMA = "2302.13971"
OLD = "2101.00001"  # no HTML on arXiv, only on ar5iv

LONG_PARAGRAPH = "Ablation details. " + "We vary the window size and the number of layers. " * 400


def mistral_page() -> str:
    return latexml_page(
        "Mistral 7B",
        "We introduce Mistral 7B, a 7-billion-parameter language model engineered for performance and efficiency.",
        [
            ("1", "Introduction", ["Large models are costly [1]. We use $W=4096$ as the window."]),
            ("2", "Architectural details", ["The model is a transformer."],
             [("2.1", "Sliding Window Attention", ["Each token attends to at most $W$ tokens of the previous layer."]),
              ("2.2", "Rolling Buffer Cache", ["A fixed cache size bounds memory."])]),
            ("3", "Experiments", ["Mistral 7B beats Llama 2 13B on all benchmarks [2]."]),
            ("4", "Ablations", [LONG_PARAGRAPH]),
            ("A", "Additional results", ["More tables."]),
        ],
        authors=("Albert Q. Jiang", "Alexandre Sablayrolles"),
        references=("Vaswani et al. Attention is all you need.", "Touvron et al. Llama 2."),
        equation=r"\mathrm{softmax}(QK^T)V",
    )


@pytest.fixture
def arxiv():
    with ArxivEmulator() as server:
        server.add_paper(MISTRAL, mistral_page())
        yield server


@pytest.fixture
def ar5iv():
    with ArxivEmulator(flavor="ar5iv") as server:
        server.add_paper(OLD, latexml_page("An Older Paper", "Old abstract.", [("1", "Intro", ["Old intro text."])]))
        yield server


@pytest.fixture
def s2():
    with SemanticScholarEmulator() as server:
        mistral = server.add_paper("Mistral 7B", arxiv_id=MISTRAL, date="2023-10-10", citation_count=900,
                                   abstract="A 7B language model with sliding window attention.",
                                   authors=("Albert Q. Jiang",), tldr="A fast 7B model.",
                                   snippets=(("2.1 Sliding Window Attention",
                                              "Sliding window attention lets each token attend to W tokens."),))
        llama = server.add_paper("LLaMA: Open and Efficient Foundation Language Models", arxiv_id=LLAMA,
                                 date="2023-02-27", citation_count=5000, abstract="Open foundation language models.")
        small = server.add_paper("A small follow-up on sliding window attention", arxiv_id="2401.00002",
                                 date="2024-01-02", citation_count=3, abstract="Sliding window attention, revisited.")
        big = server.add_paper("Mixtral of Experts", arxiv_id="2401.04088", date="2024-01-08", citation_count=700,
                               abstract="A sparse mixture of experts language model.")
        survey = server.add_paper("A survey of efficient transformers", date="2022-05-01", citation_count=50,
                                  abstract="Efficient attention for language models.", fields=("Computer Science",))
        server.cite(small, mistral, intents=("methodology",), contexts=("We build on sliding window attention.",))
        server.cite(big, mistral, influential=True, intents=("background",))
        server.cite(survey, mistral)
        server.cite(mistral, llama, influential=True)
        server.ids = {"mistral": mistral, "llama": llama, "small": small, "big": big}
        yield server


@pytest.fixture
def seeded_hub(hub):
    hub.add_paper(MISTRAL, "Mistral 7B", "We introduce Mistral 7B, a 7B language model.", daily="2023-10-11",
                  upvotes=180, comments=4, ai_summary="Mistral 7B outperforms Llama 2 13B.",
                  ai_keywords=("sliding window attention", "grouped-query attention"),
                  github="https://github.com/mistralai/mistral-src", github_stars=9000,
                  authors=("Albert Q. Jiang", "Alexandre Sablayrolles"))
    hub.add_paper("2310.11111", "Diffusion for everyone", "A diffusion model paper.", daily="2023-10-11", upvotes=40)
    hub.add_paper("2310.22222", "Speculative decoding at scale", "Faster decoding.", daily="2023-10-12", upvotes=90)
    hub.add_paper(LLAMA, "LLaMA: Open and Efficient Foundation Language Models", "Open language models.", upvotes=300)
    hub.add_paper_repo("model", "mistralai/Mistral-7B-v0.1", papers=(MISTRAL,), downloads=500_000, likes=3000,
                       pipeline_tag="text-generation")
    hub.add_paper_repo("model", "someone/mistral-finetune", papers=(MISTRAL,), downloads=1_000, likes=5)
    hub.add_paper_repo("model", "other/unrelated", papers=(LLAMA,), downloads=9_999_999)
    hub.add_paper_repo("dataset", "ml-team/sliding-eval", papers=(MISTRAL,), downloads=42, likes=2)
    hub.add_collection("ada/efficient-llms-65f0", "Efficient LLMs", "ada", papers=(MISTRAL, LLAMA),
                       repos=(("model", "mistralai/Mistral-7B-v0.1"),), upvotes=12, description="Small fast models.")
    return hub


def make_net(hub_url: str, arxiv_url: str, ar5iv_url: str, s2_url: str, cache: Path, token: str | None = "hf_test",
             sleeps: list[float] | None = None):
    endpoints = Endpoints(hub=hub_url, datasets_server="http://127.0.0.1:9", github_api="http://127.0.0.1:9",
                          arxiv=arxiv_url, ar5iv=ar5iv_url, semantic_scholar=s2_url, web_search="http://127.0.0.1:9")

    async def sleep(seconds: float) -> None:  # waits are recorded, not slept: the tests stay fast
        if sleeps is not None:
            sleeps.append(seconds)

    return Net(endpoints, hf_token=lambda: token, cache_dir=cache, connect_timeout_s=2.0, read_timeout_s=5.0,
               sleep=sleep)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
async def ctx(tmp_path, seeded_hub, arxiv, ar5iv, s2, sleeps, monkeypatch):
    monkeypatch.delenv("S2_API_KEY", raising=False)
    net = make_net(seeded_hub.endpoint, arxiv.endpoint, ar5iv.endpoint, s2.endpoint, tmp_path / "cache", sleeps=sleeps)
    context = ToolContext(session_id="t", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(),
                          net=net)
    yield context
    await net.aclose()


async def papers(ctx: ToolContext, **kw):
    return await HfPapersTool().run(HfPapersParams(**kw), ctx)


def paths(server, prefix: str = "") -> list[str]:
    return [r.path for r in server.requests if r.path.startswith(prefix)]


# ---------------------------------------------------------------- Hub operations


async def test_trending_lists_daily_papers_most_upvoted_first(ctx, seeded_hub):
    result = await papers(ctx, operation="trending", limit=2)
    assert result.success, result.output
    lines = result.output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("1. "))
    assert "**Mistral 7B**" in lines[first] and "arXiv 2310.06825" in lines[first] and "▲ 180" in lines[first]
    assert lines[first + 1].strip() == "Mistral 7B outperforms Llama 2 13B."
    assert "2. **Speculative decoding at scale**" in result.output
    assert "Diffusion" not in result.output  # limit=2
    call = next(r for r in seeded_hub.requests if r.path == "/api/daily_papers")
    assert call.query == {"limit": ["2"], "sort": ["trending"]}
    assert call.token == "hf_test"


async def test_trending_by_date_and_keyword(ctx, seeded_hub):
    day = await papers(ctx, operation="trending", date="2023-10-11")
    assert "Mistral 7B" in day.output and "Diffusion for everyone" in day.output
    assert "Speculative" not in day.output
    assert day.output.index("Mistral 7B") < day.output.index("Diffusion")
    keyword = await papers(ctx, operation="trending", query="diffusion")
    assert "Diffusion for everyone" in keyword.output and "Mistral" not in keyword.output
    none = await papers(ctx, operation="trending", query="quantum gravity")
    assert none.success and "No daily papers matching 'quantum gravity'" in none.output


async def test_search_on_the_hub_without_filters(ctx, seeded_hub, s2):
    result = await papers(ctx, operation="search", query="language models")
    assert result.success
    assert "LLaMA: Open and Efficient Foundation Language Models" in result.output
    assert f"/papers/{LLAMA}" in result.output
    call = next(r for r in seeded_hub.requests if r.path == "/api/papers/search")
    assert call.query["q"] == ["language models"]
    assert not paths(s2, "/graph")


async def test_search_falls_back_to_semantic_scholar_when_the_hub_has_nothing(ctx, seeded_hub, s2):
    result = await papers(ctx, operation="search", query="mixture of experts")
    assert result.success
    assert "# Nothing on Hugging Face papers; Semantic Scholar papers matching 'mixture of experts'" in result.output
    assert "**Mixtral of Experts** — arXiv 2401.04088" in result.output
    assert any(r.path == "/api/papers/search" for r in seeded_hub.requests)
    assert [r.query["query"] for r in s2.requests if r.path == "/graph/v1/paper/search"] == [["mixture of experts"]]


async def test_search_with_filters_uses_semantic_scholar(ctx, seeded_hub, s2):
    result = await papers(ctx, operation="search", query="language model", date_from="2023-06-01",
                          min_citations=100, categories="cs.CL")
    assert result.success, result.output
    assert "Mistral 7B" in result.output and "Mixtral of Experts" in result.output
    assert "LLaMA" not in result.output  # published before date_from
    call = next(r for r in s2.requests if r.path == "/graph/v1/paper/search")
    assert call.query["publicationDateOrYear"] == ["2023-06-01:"]
    assert call.query["minCitationCount"] == ["100"]
    assert call.query["fieldsOfStudy"] == ["Computer Science"]
    assert not any(r.path == "/api/papers/search" for r in seeded_hub.requests)

    by_citations = await papers(ctx, operation="search", query="attention", sort_by="citationCount")
    call = next(r for r in s2.requests if r.path == "/graph/v1/paper/search/bulk")
    assert call.query["sort"] == ["citationCount:desc"]
    assert by_citations.output.index("Mistral 7B") < by_citations.output.index("A small follow-up")


async def test_paper_details_merges_hub_and_semantic_scholar(ctx):
    result = await papers(ctx, operation="paper_details", arxiv_id=f"https://arxiv.org/abs/{MISTRAL}v2")
    assert result.success, result.output
    out = result.output
    assert out.startswith("# Mistral 7B")
    assert "▲ 180 upvotes" in out and "Citations: 900" in out and "(1 influential)" in out
    assert "Authors: Albert Q. Jiang, Alexandre Sablayrolles" in out
    assert "Code: https://github.com/mistralai/mistral-src (★ 9,000)" in out
    assert "TL;DR: A fast 7B model." in out and "## Abstract" in out
    assert f"read_paper arxiv_id={MISTRAL}" in out


async def test_paper_details_unknown_paper_is_a_clear_error(ctx):
    result = await papers(ctx, operation="paper_details", arxiv_id="2499.99999")
    assert not result.success
    assert "no paper with arXiv id 2499.99999 on the Hugging Face Hub or Semantic Scholar" in result.output


async def test_find_models_datasets_collections_and_all(ctx, seeded_hub):
    models = await papers(ctx, operation="find_models", arxiv_id=MISTRAL)
    assert models.success
    assert models.output.index("mistralai/Mistral-7B-v0.1") < models.output.index("someone/mistral-finetune")
    assert "500,000 downloads" in models.output and "text-generation" in models.output
    assert "other/unrelated" not in models.output
    call = next(r for r in seeded_hub.requests if r.path == "/api/models")
    assert call.query == {"filter": [f"arxiv:{MISTRAL}"], "sort": ["downloads"], "limit": ["10"]}

    datasets = await papers(ctx, operation="find_datasets", arxiv_id=MISTRAL)
    assert f"{seeded_hub.endpoint}/datasets/ml-team/sliding-eval" in datasets.output

    collections = await papers(ctx, operation="find_collections", arxiv_id=MISTRAL, sort="trending")
    assert "**Efficient LLMs**" in collections.output and "by ada" in collections.output
    assert f"{seeded_hub.endpoint}/collections/ada/efficient-llms-65f0" in collections.output
    call = next(r for r in seeded_hub.requests if r.path == "/api/collections")
    assert call.query["item"] == [f"papers/{MISTRAL}"] and call.query["sort"] == ["trending"]

    everything = await papers(ctx, operation="find_all_resources", arxiv_id=LLAMA)
    assert "other/unrelated" in everything.output
    assert "Datasets citing arXiv 2302.13971: none on the Hub" in everything.output
    assert "Efficient LLMs" in everything.output


# ---------------------------------------------------------------- full text


async def test_read_paper_without_section_gives_abstract_and_contents(ctx, arxiv):
    result = await papers(ctx, operation="read_paper", arxiv_id=MISTRAL)
    assert result.success, result.output
    out = result.output
    assert out.startswith("# Mistral 7B")
    assert "Source: arXiv HTML" in out
    assert "We introduce Mistral 7B, a 7-billion-parameter language model" in out
    for entry in ("- 1 Introduction", "- 2 Architectural details", "  - 2.1 Sliding Window Attention",
                  "- 4 Ablations", "- A Additional results", "- References"):
        assert entry in out, entry
    assert "HTML (experimental)" not in out  # page chrome is not a section
    assert paths(arxiv) == [f"/html/{MISTRAL}"]


async def test_read_paper_by_number_and_by_title(ctx):
    sub = await papers(ctx, operation="read_paper", arxiv_id=MISTRAL, section="2.1")
    assert sub.success, sub.output
    assert sub.output.startswith("# Mistral 7B — 2.1 Sliding Window Attention")
    assert "Each token attends to at most $W$ tokens" in sub.output
    assert "Rolling Buffer" not in sub.output.split("Next section")[0]
    assert "Next section: 2.2 Rolling Buffer Cache" in sub.output

    whole = await papers(ctx, operation="read_paper", arxiv_id=MISTRAL, section="2")
    assert "### 2.1 Sliding Window Attention" in whole.output and "### 2.2 Rolling Buffer Cache" in whole.output

    intro = await papers(ctx, operation="read_paper", arxiv_id=MISTRAL, section="introduction")
    assert "— 1 Introduction" in intro.output
    assert "We use $W=4096$ as the window." in intro.output
    assert "$$ \\mathrm{softmax}(QK^T)V $$ (1)" in intro.output  # the display equation, as TeX
    assert "[1]" in intro.output and "#bib" not in intro.output  # citations without in-page links

    by_words = await papers(ctx, operation="read_paper", arxiv_id=MISTRAL, section="rolling cache")
    assert "— 2.2 Rolling Buffer Cache" in by_words.output
    appendix = await papers(ctx, operation="read_paper", arxiv_id=MISTRAL, section="Appendix A")
    assert "— A Additional results" in appendix.output and "More tables." in appendix.output


async def test_read_paper_unknown_section_lists_the_sections(ctx):
    result = await papers(ctx, operation="read_paper", arxiv_id=MISTRAL, section="related work")
    assert not result.success
    assert "no section 'related work'" in result.output and "- 3 Experiments" in result.output


async def test_read_paper_long_section_is_capped_and_spilled(ctx):
    result = await papers(ctx, operation="read_paper", arxiv_id=MISTRAL, section="4")
    assert result.success
    assert len(result.output) < 9_000
    assert "Section cut at" in result.output
    assert result.output.split("\n\n[Section cut")[0].endswith("layers.")  # at a sentence end
    spilled = Path(result.output.split("The whole section is in ")[1].split(" (read it")[0])
    assert spilled.read_text().count("We vary the window size") == 400


async def test_read_paper_falls_back_to_ar5iv_when_arxiv_has_no_html(ctx, arxiv, ar5iv):
    result = await papers(ctx, operation="read_paper", arxiv_id=OLD, section="1")
    assert result.success, result.output
    assert "Source: ar5iv" in result.output and "Old intro text." in result.output
    assert paths(arxiv) == [f"/html/{OLD}"]
    assert paths(ar5iv) == [f"/html/{OLD}"]


async def test_read_paper_with_no_html_anywhere(ctx):
    result = await papers(ctx, operation="read_paper", arxiv_id="2402.77777")
    assert not result.success
    assert "arXiv has no HTML version of 2402.77777 and ar5iv has none" in result.output
    assert "snippet_search" in result.output


async def test_full_text_comes_from_the_cache_the_second_time(ctx, arxiv):
    await papers(ctx, operation="read_paper", arxiv_id=MISTRAL)
    again = await papers(ctx, operation="read_paper", arxiv_id=MISTRAL, section="3")
    assert "Mistral 7B beats Llama 2 13B" in again.output
    assert len(paths(arxiv)) == 1


def test_ar5iv_abs_redirects_to_html(ar5iv):
    import httpx

    r = httpx.get(f"{ar5iv.endpoint}/abs/{OLD}", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == f"/html/{OLD}"


# ---------------------------------------------------------------- Semantic Scholar operations


async def test_citation_graph_both_directions(ctx, s2):
    result = await papers(ctx, operation="citation_graph", arxiv_id=MISTRAL)
    assert result.success, result.output
    out = result.output
    cited_by, refs = out.split("## References")
    assert "Cited by (papers citing it): 3 of the first 3" in cited_by
    # influential first, then by citations
    assert cited_by.index("Mixtral of Experts") < cited_by.index("A survey") < cited_by.index("A small follow-up")
    assert "influential" in cited_by and "intent: methodology" in cited_by
    assert "> We build on sliding window attention." in cited_by
    assert "A survey of efficient transformers** — S2 " in cited_by  # no arXiv id: the S2 id instead
    assert "LLaMA" in refs
    edge_calls = [r for r in s2.requests if r.path.endswith(("/citations", "/references"))]
    assert {r.path for r in edge_calls} == {f"/graph/v1/paper/arXiv:{MISTRAL}/citations",
                                            f"/graph/v1/paper/arXiv:{MISTRAL}/references"}

    newest = await papers(ctx, operation="citation_graph", arxiv_id=MISTRAL, direction="citations",
                          sort_by="publicationDate", limit=1)
    assert "Mixtral of Experts" in newest.output and "A survey" not in newest.output
    assert "## References" not in newest.output


async def test_citation_graph_unknown_paper(ctx):
    result = await papers(ctx, operation="citation_graph", arxiv_id="2499.99999", direction="citations")
    assert not result.success and "Semantic Scholar has no paper with arXiv id 2499.99999" in result.output


async def test_snippet_search_within_a_paper(ctx, s2):
    result = await papers(ctx, operation="snippet_search", query="sliding window attention", arxiv_id=MISTRAL)
    assert result.success, result.output
    assert "**Mistral 7B** — arXiv 2310.06825 · section: 2.1 Sliding Window Attention" in result.output
    assert "> Sliding window attention lets each token attend to W tokens." in result.output
    call = next(r for r in s2.requests if r.path == "/graph/v1/snippet/search")
    assert call.query["paperIds"] == [f"arXiv:{MISTRAL}"] and call.query["limit"] == ["10"]


async def test_recommend_posts_positive_and_negative_ids(ctx, s2):
    result = await papers(ctx, operation="recommend", positive_ids=f"{MISTRAL}, arXiv:2401.04088",
                          negative_ids=LLAMA, limit=5)
    assert result.success, result.output
    assert "A small follow-up on sliding window attention" in result.output
    call = next(r for r in s2.requests if r.path == "/recommendations/v1/papers")
    assert call.method == "POST"
    assert "json" in call.headers.get("content-type", "")
    assert call.json == {"positivePaperIds": [f"arXiv:{MISTRAL}", "arXiv:2401.04088"],
                         "negativePaperIds": [f"arXiv:{LLAMA}"]}
    assert call.query["limit"] == ["5"]


# ---------------------------------------------------------------- failures


async def test_validation_per_operation(ctx, seeded_hub, s2):
    cases = [
        (dict(operation="read_paper"), "`arxiv_id` is required"),
        (dict(operation="citation_graph", arxiv_id="not-an-id"), "is not an arXiv id"),
        (dict(operation="search"), "`query` is required"),
        (dict(operation="snippet_search", query="  "), "`query` is required"),
        (dict(operation="recommend"), "`positive_ids` (or `arxiv_id`) is required"),
        (dict(operation="trending", date="2024-01"), "`date` must be a day"),
        (dict(operation="recommend", positive_ids="hello world"), "not paper ids: 'hello world'"),
    ]
    before = len(seeded_hub.requests) + len(s2.requests)
    for kwargs, expected in cases:
        result = await papers(ctx, **kwargs)
        assert not result.success and expected in result.output, (kwargs, result.output)
    assert len(seeded_hub.requests) + len(s2.requests) == before  # nothing was sent


async def test_through_the_router(ctx):
    router = ToolRouter([HfPapersTool()], ungoverned=True)
    params = router.specs()[0]["function"]["parameters"]
    assert params["required"] == ["operation"] and params["additionalProperties"] is False
    assert params["properties"]["limit"]["maximum"] == 50 and params["properties"]["limit"]["default"] == 10
    assert "find_all_resources" in params["properties"]["operation"]["enum"]
    for raw, word in (('{"operation": "trending", "limit": 51}', "limit"),
                      ('{"operation": "trending", "surprise": 1}', "surprise"),
                      ('{"operation": "read_paper", "date": "yesterday"}', "date")):
        call = router.parse("c1", "hf_papers", raw)
        assert call.error and "NOT executed" in call.error and word in call.error, call.error
    call = router.parse("c2", "hf_papers", f'{{"operation": "read_paper", "arxiv_id": "{MISTRAL}", "section": "3"}}')
    assert call.error is None
    result = await router.execute(call, ctx)
    assert result.success and "Mistral 7B beats Llama 2 13B on all benchmarks [2]." in result.output


async def test_hub_401_is_reported(tmp_path, seeded_hub, arxiv, ar5iv, s2):
    net = make_net(seeded_hub.endpoint, arxiv.endpoint, ar5iv.endpoint, s2.endpoint, tmp_path / "c", token="hf_bad")
    ctx = ToolContext(session_id="t", cwd=tmp_path, spill_dir=tmp_path / "s", state=SessionToolState(), net=net)
    try:
        result = await papers(ctx, operation="trending")
    finally:
        await net.aclose()
    assert not result.success
    assert "401 Unauthorized" in result.output and "HF_TOKEN" in result.output


async def test_s2_429_with_long_retry_after_is_reported_at_once(ctx, s2):
    s2.rate_limit(retry_after="120")
    started = time.monotonic()
    result = await papers(ctx, operation="citation_graph", arxiv_id=MISTRAL, direction="citations")
    assert time.monotonic() - started < 2.0
    assert not result.success
    assert "rate-limiting" in result.output and "120 s" in result.output and "S2_API_KEY" in result.output
    sent = len(s2.requests)
    again = await papers(ctx, operation="snippet_search", query="attention")
    assert not again.success and "asked us to wait" in again.output
    assert len(s2.requests) == sent  # the wait is honoured without hammering the server


async def test_s2_bare_429_is_retried_once_after_a_short_wait(ctx, s2, sleeps):
    s2.rate_limit(retry_after=None)
    result = await papers(ctx, operation="snippet_search", query="sliding window")
    assert result.success and "Mistral 7B" in result.output
    assert sleeps == [1.5]
    assert [r.path for r in s2.requests].count("/graph/v1/snippet/search") == 2
    s2.rate_limit(retry_after=None)
    s2.rate_limit(retry_after=None)
    again = await papers(ctx, operation="snippet_search", query="window attention")
    assert not again.success and "rate-limiting" in again.output and "try again later" in again.output


async def test_read_paper_on_plain_html_without_latexml(ctx, ar5iv):
    ar5iv.add_paper("2102.00003", "<html><head><title>Plain paper</title></head><body><h1>Plain paper</h1>"
                                  "<h2>Abstract</h2><p>Plain abstract.</p><h2>1 Introduction</h2><p>Intro text.</p>"
                                  "<h3>1.1 Setting</h3><p>Setting text.</p><h2>2 Method</h2><p>Method text.</p>"
                                  "</body></html>")
    toc = await papers(ctx, operation="read_paper", arxiv_id="2102.00003")
    assert "Plain abstract." in toc.output and "  - 1.1 Setting" in toc.output and "- 2 Method" in toc.output
    intro = await papers(ctx, operation="read_paper", arxiv_id="2102.00003", section="1")
    assert "Intro text." in intro.output and "Setting text." in intro.output and "Method text." not in intro.output


async def test_refused_connection_is_reported_quickly(tmp_path, seeded_hub, arxiv, ar5iv):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    net = make_net(seeded_hub.endpoint, arxiv.endpoint, ar5iv.endpoint, closed, tmp_path / "c")
    ctx = ToolContext(session_id="t", cwd=tmp_path, spill_dir=tmp_path / "s", state=SessionToolState(), net=net)
    started = time.monotonic()
    try:
        result = await papers(ctx, operation="recommend", positive_ids=MISTRAL)
    finally:
        await net.aclose()
    assert time.monotonic() - started < 3.0
    assert not result.success and "connection was refused" in result.output


async def test_stopped_hub_is_reported_quickly(ctx, seeded_hub):
    seeded_hub.stop()
    started = time.monotonic()
    result = await papers(ctx, operation="find_models", arxiv_id=MISTRAL)
    assert time.monotonic() - started < 3.0
    assert not result.success and "Cannot reach" in result.output


async def test_paper_details_survives_semantic_scholar_being_down(ctx, s2):
    s2.stop()
    result = await papers(ctx, operation="paper_details", arxiv_id=MISTRAL)
    assert result.success
    assert "▲ 180 upvotes" in result.output and "Citation counts unavailable" in result.output


# ---------------------------------------------------------------- token hygiene


async def test_hf_token_goes_only_to_the_hub_and_the_s2_key_only_to_s2(ctx, seeded_hub, arxiv, ar5iv, s2,
                                                                       monkeypatch):
    monkeypatch.setenv("S2_API_KEY", "s2-secret")
    for kwargs in (dict(operation="trending"), dict(operation="paper_details", arxiv_id=MISTRAL),
                   dict(operation="read_paper", arxiv_id=OLD), dict(operation="citation_graph", arxiv_id=MISTRAL),
                   dict(operation="recommend", positive_ids=MISTRAL),
                   dict(operation="snippet_search", query="sliding window"),
                   dict(operation="find_all_resources", arxiv_id=MISTRAL)):
        assert (await papers(ctx, **kwargs)).success, kwargs
    hub_calls = [r for r in seeded_hub.requests if r.path.startswith("/api/")]
    assert hub_calls and all(r.token == "hf_test" for r in hub_calls)
    for server in (arxiv, ar5iv, s2):
        assert server.requests
        for request in server.requests:
            assert "authorization" not in request.headers
            assert "hf_test" not in " ".join(request.headers.values())
    assert all(r.headers.get("x-api-key") == "s2-secret" for r in s2.requests)
    assert not any("x-api-key" in r.headers for r in arxiv.requests + ar5iv.requests)


# ---------------------------------------------------------------- the emulator speaks the client's dialect


async def test_huggingface_hub_client_reads_the_emulated_routes(seeded_hub):
    import asyncio

    from huggingface_hub import HfApi

    api = HfApi(endpoint=seeded_hub.endpoint, token="hf_test")

    def calls():
        daily = list(api.list_daily_papers(date="2023-10-11", sort="trending"))
        found = list(api.list_papers(query="language models"))
        info = api.paper_info(MISTRAL)
        models = list(api.list_models(filter=f"arxiv:{MISTRAL}", sort="downloads", limit=5))
        datasets = list(api.list_datasets(filter=f"arxiv:{MISTRAL}"))
        collections = list(api.list_collections(item=f"papers/{MISTRAL}", limit=5))
        return daily, found, info, models, datasets, collections

    daily, found, info, models, datasets, collections = await asyncio.to_thread(calls)
    assert [p.id for p in daily] == [MISTRAL, "2310.11111"]
    assert daily[0].upvotes == 180 and daily[0].authors[0].name == "Albert Q. Jiang"
    assert LLAMA in [p.id for p in found]
    assert info.title == "Mistral 7B" and info.github_repo.endswith("mistral-src")
    assert [m.id for m in models] == ["mistralai/Mistral-7B-v0.1", "someone/mistral-finetune"]
    assert [d.id for d in datasets] == ["ml-team/sliding-eval"]
    assert collections[0].slug == "ada/efficient-llms-65f0" and collections[0].items[0].item_type == "paper"
