"""web_search and fetch_url against a loopback web (tests/fakes/web_server.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agent.net import Endpoints, Net
from agent.tools.base import SessionToolState, ToolContext
from agent.tools.router import ToolRouter
from agent.tools.web import FetchUrlTool, WebSearchTool, unwrap_result_url
from tests.fakes.web_server import SearchHit, WebEmulator


@pytest.fixture
def web():
    with WebEmulator() as server:
        yield server


def make_net(web: WebEmulator, tmp_path: Path, **overrides: str) -> Net:
    dead = "http://127.0.0.1:9"
    values = dict(hub=dead, datasets_server=dead, github_api=dead, arxiv=dead, ar5iv=dead, semantic_scholar=dead,
                  web_search=web.search_url)
    values.update(overrides)
    return Net(Endpoints(**values), hf_token=lambda: "hf_secret", github_token=lambda: "gh_secret",
               cache_dir=tmp_path / "cache")


@pytest.fixture
async def ctx(web: WebEmulator, tmp_path: Path):
    net = make_net(web, tmp_path)
    yield ToolContext(session_id="t", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(), net=net)
    await net.aclose()


async def search(ctx, query: str, **kw):
    tool = WebSearchTool()
    return await tool.run(tool.Params(query=query, **kw), ctx)


async def fetch(ctx, url: str, **kw):
    tool = FetchUrlTool()
    return await tool.run(tool.Params(url=url, **kw), ctx)


# ---------------------------------------------------------------------------- web_search


async def test_search_unwraps_redirects_dedupes_and_skips_ads(ctx, web):
    result = await search(ctx, "sft trainer")
    assert result.success, result.output
    out = result.output
    # the //duckduckgo.com/l/?uddg= wrapper is gone, the real URL is shown
    assert "(https://huggingface.co/docs/trl/sft_trainer)" in out
    assert "duckduckgo.com" not in out and "Buy GPUs" not in out
    # a direct href is kept as is
    assert "(https://github.com/huggingface/trl)" in out
    # the same page with a #fragment counts once
    assert "#packing" not in out
    assert "SFTTrainer makes it straightforward" in out  # snippet, tags stripped
    assert "Sources" in out and "fetch_url" in out
    # DuckDuckGo's form, POSTed to the html endpoint as the site's own search box does
    assert [(r.method, r.form, r.query) for r in web.requests_to("/html/")] == [("POST", {"q": ["sft trainer"]}, {})]


async def test_search_domain_filters(ctx, web):
    only_hf = await search(ctx, "sft trainer", allowed_domains=["huggingface.co"])
    assert "discuss.huggingface.co" in only_hf.output  # a subdomain matches
    assert "github.com" not in only_hf.output and "reddit" not in only_hf.output
    assert web.requests_to("/html/")[-1].form["q"] == ["sft trainer site:huggingface.co"]

    no_reddit = await search(ctx, "sft trainer", blocked_domains=["https://www.reddit.com/"])
    assert "reddit" not in no_reddit.output.replace("-site:reddit.com", "") and "arxiv.org" in no_reddit.output
    assert web.requests_to("/html/")[-1].form["q"] == ["sft trainer -site:reddit.com"]

    none_left = await search(ctx, "sft trainer", allowed_domains=["example.org"])
    assert none_left.success and "No web results" in none_left.output and "outside the domain filters" in none_left.output


async def test_search_max_results_and_no_results(ctx, web):
    two = await search(ctx, "sft trainer", max_results=2)
    assert "2. [" in two.output and "3. [" not in two.output
    nothing = await search(ctx, "nothing at all")
    assert nothing.success and "No web results" in nothing.output


async def test_search_scripted_results_and_bot_check(ctx, web):
    web.script_results("lora rank", [SearchHit("https://example.com/lora", "LoRA [rank] guide", "Pick r=16.")])
    result = await search(ctx, "lora rank")
    assert "1. [LoRA (rank) guide](https://example.com/lora)" in result.output
    web.bot_check_next()
    blocked = await search(ctx, "fresh query")
    assert not blocked.success and "bot check" in blocked.output


async def test_search_sends_no_token_and_query_is_validated(ctx, web):
    await search(ctx, "sft trainer")
    assert all(r.authorization is None for r in web.requests)
    router = ToolRouter([WebSearchTool()], ungoverned=True)
    assert router.parse("c", "web_search", '{"query": "x"}').error  # minLength 2


async def test_search_refused_and_rate_limited(web, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    net = make_net(web, tmp_path, web_search=f"http://127.0.0.1:{port}/html/")
    ctx = ToolContext(session_id="t", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(), net=net)
    try:
        refused = await search(ctx, "anything")
        assert not refused.success and "refused" in refused.output
        net2 = make_net(web, tmp_path / "b")
        ctx.net = net2
        web.fail_next("/html/", 429, {"error": "slow down"}, {"Retry-After": "90"})
        limited = await search(ctx, "anything")
        assert not limited.success and "429" in limited.output and "90 s" in limited.output
        await net2.aclose()
    finally:
        await net.aclose()


async def test_search_is_cached_but_a_bot_check_is_not(ctx, web):
    web.bot_check_next()
    blocked = await search(ctx, "lora rank")
    assert not blocked.success and "bot check" in blocked.output
    first = await search(ctx, "lora rank")
    again = await search(ctx, "lora rank")
    assert first.success and again.output == first.output
    # the bot check and the first real answer went out; the repeat came from the cache
    assert len(web.requests_to("/html/")) == 2


def test_emulator_search_answers_get_and_post(web):
    import httpx

    get = httpx.get(f"{web.search_url}?q=sft+trainer")
    post = httpx.post(web.search_url, data={"q": "sft trainer"})
    assert get.status_code == post.status_code == 200
    assert "SFT Trainer - Hugging Face TRL" in get.text and get.text == post.text
    assert [r.method for r in web.requests_to("/html/")] == ["GET", "POST"]


def test_unwrap_result_url():
    assert unwrap_result_url("//duckduckgo.com/l/?uddg=https%3A%2F%2Fa.org%2Fx%3Fy%3D1&rut=abc") == "https://a.org/x?y=1"
    assert unwrap_result_url("https://duckduckgo.com/y.js?ad_domain=x") is None
    assert unwrap_result_url("javascript:alert(1)") is None
    assert unwrap_result_url("https://b.org/") == "https://b.org/"


# ---------------------------------------------------------------------------- fetch_url


async def test_fetch_html_drops_chrome_and_returns_markdown(ctx, web):
    result = await fetch(ctx, f"{web.endpoint}/docs/article")
    assert result.success, result.output
    out = result.output
    assert out.startswith("# Fine-tuning with SFT | Example Docs\n")
    for chrome in ("NAVIGATION_MENU_TEXT", "SIDEBAR_TEXT", "FOOTER_TEXT", "SECRET_SCRIPT_TEXT", "color: red",
                   "base64"):
        assert chrome not in out
    assert "# Fine-tuning with SFT" in out and "## Install" in out
    assert "**base model**" in out
    assert f"[packing guide]({web.endpoint}/docs/packing)" in out  # relative link made absolute
    assert "pip install trl" in out and "- Load a dataset" in out
    assert "[image: inline pixel]" in out
    assert result.spill_path is None and "offset=" not in out


async def test_fetch_article_and_og_title(ctx, web):
    result = await fetch(ctx, f"{web.endpoint}/blog/post")
    assert "Our new model" in result.output and "*small*" in result.output
    assert "COMMENTS_TEXT" not in result.output and "Blog home" not in result.output


async def test_fetch_follows_redirect(ctx, web):
    result = await fetch(ctx, f"{web.endpoint}/go/article")
    assert result.success
    assert f"URL: {web.endpoint}/docs/article" in result.output
    assert f"(redirected from {web.endpoint}/go/article)" in result.output
    loop = await fetch(ctx, f"{web.endpoint}/go/loop")
    assert not loop.success and "redirects" in loop.output.lower()


async def test_fetch_text_json_and_charset(ctx, web):
    md = await fetch(ctx, f"{web.endpoint}/docs/readme.md")
    assert md.output.startswith("# Example project\n") and "Run `python train.py`" in md.output
    data = await fetch(ctx, f"{web.endpoint}/docs/data.json")
    assert '"name": "demo"' in data.output
    latin = await fetch(ctx, f"{web.endpoint}/docs/latin1")
    assert latin.output.startswith("# Café") and "Crème brûlée à la carte" in latin.output


async def test_fetch_refuses_binary_and_other_schemes(ctx, web):
    binary = await fetch(ctx, f"{web.endpoint}/files/weights.bin")
    assert not binary.success and "binary file (application/octet-stream" in binary.output
    image = await fetch(ctx, f"{web.endpoint}/files/figure.png")
    assert not image.success and "image/png" in image.output
    web.add_page("/paper.pdf", b"%PDF-1.7\n...", "application/pdf")
    pdf = await fetch(ctx, f"{web.endpoint}/paper.pdf")
    assert not pdf.success and "is a PDF" in pdf.output
    n = len(web.requests)
    for url in ("file:///etc/passwd", "ftp://example.com/x", "example.com/page"):
        refused = await fetch(ctx, url)
        assert not refused.success and "http(s)" in refused.output
    assert len(web.requests) == n


@pytest.mark.parametrize("name, sentence", [
    ("big.zip", "is a binary file (application/zip, 100.0 MB); fetch_url reads text pages only"),
    ("big.pdf", "is a PDF (100.0 MB); fetch_url reads text pages only"),
])
async def test_fetch_refuses_a_big_binary_by_its_headers_without_downloading_it(ctx, web, name, sentence):
    """The Content-Type settles it: the client hangs up after the headers, so the server, which
    writes 64 kB every 20 ms, gets out only the little that fits before the hang-up (reading up
    to the 5 MB page cap would pull over 5 MB)."""
    url = f"{web.endpoint}/files/{name}"
    result = await fetch(ctx, url)
    assert not result.success and result.output.startswith(f"ERROR: {url} {sentence}")
    [stream] = web.streams
    assert stream.done.wait(5), "the server was still writing the file"
    assert stream.length == 100_000_000 and stream.written < 2_000_000


async def test_fetch_huge_page_is_capped_paged_and_spilled(ctx, web):
    result = await fetch(ctx, f"{web.endpoint}/huge", max_chars=2000)
    assert result.success
    assert "only its first 5.0 MB were read" in result.output
    assert result.spill_path and Path(result.spill_path).exists()
    whole = Path(result.spill_path).read_text()
    assert len(whole) > 4_000_000 and "THE_VERY_END" not in whole  # cut at the byte cap
    assert len(result.output) < 2600
    assert "continue with offset=" in result.output
    next_offset = int(result.output.rsplit("offset=", 1)[1].split(";")[0])
    page2 = await fetch(ctx, f"{web.endpoint}/huge", max_chars=2000, offset=next_offset)
    assert f"[characters {next_offset:,}-" in page2.output
    # the second window came from the spilled page: one request to /huge
    assert len(web.requests_to("/huge")) == 1
    past = await fetch(ctx, f"{web.endpoint}/huge", offset=10**8)
    assert not past.success and "past the end" in past.output


async def test_fetch_404_and_refused(ctx, web, tmp_path):
    missing = await fetch(ctx, f"{web.endpoint}/docs/nope")
    assert not missing.success and "404" in missing.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = await fetch(ctx, f"http://127.0.0.1:{port}/x")
    assert not refused.success and "refused" in refused.output


async def test_fetch_never_sends_a_token_even_to_the_hub_or_github(web, tmp_path, monkeypatch):
    """fetch_url is for any page: no token goes with it, even where Net holds one for that origin."""
    monkeypatch.delenv("HF_HUB_OFFLINE")  # the Hub here is the loopback emulator
    net = make_net(web, tmp_path, hub=web.endpoint, github_api=web.endpoint, datasets_server=web.endpoint)
    ctx = ToolContext(session_id="t", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(), net=net)
    try:
        result = await fetch(ctx, f"{web.endpoint}/docs/readme.md")
        assert result.success
        assert net.token_for(f"{web.endpoint}/docs/readme.md", "hf") == "hf_secret"  # the origin is trusted...
    finally:
        await net.aclose()
    assert [r.authorization for r in web.requests] == [None]  # ...and still nothing was sent


async def test_fetch_through_router_schema(ctx, web):
    router = ToolRouter([FetchUrlTool()], ungoverned=True)
    props = router.specs()[0]["function"]["parameters"]["properties"]
    assert set(props) == {"url", "max_chars", "offset"}
    call = router.parse("c", "fetch_url", f'{{"url": "{web.endpoint}/docs/article"}}')
    result = await router.execute(call, ctx)
    assert result.success and "## Install" in result.output
