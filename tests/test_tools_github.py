"""The GitHub tools against a loopback GitHub REST API (tests/fakes/github_server.py)."""

from __future__ import annotations

import asyncio
import difflib
import gc
import random
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from agent.net import Endpoints, Net
from agent.tools.base import SessionToolState, ToolContext
from agent.tools.github import (GithubFindExamplesTool, GithubListReposTool, GithubReadFileTool, KeywordScorer,
                                keyword_score, rank_tree, render_notebook, split_repo)
from agent.tools.router import ToolRouter
from tests.fakes.datasets_server import DatasetsServerEmulator
from tests.fakes.github_server import FakeRepo, GitHubEmulator
from tests.fakes.web_server import WebEmulator

DEAD = "http://127.0.0.1:9"


@pytest.fixture
def gh():
    with GitHubEmulator() as server:
        yield server


def make_net(api: str, tmp_path: Path, token: str | None = "gh_test", **overrides: str) -> Net:
    values = dict(hub=DEAD, datasets_server=DEAD, github_api=api, arxiv=DEAD, ar5iv=DEAD, semantic_scholar=DEAD,
                  web_search=DEAD + "/html/")
    values.update(overrides)
    return Net(Endpoints(**values), hf_token=lambda: "hf_test", github_token=lambda: token,
               cache_dir=tmp_path / "cache")


def make_ctx(net: Net, tmp_path: Path) -> ToolContext:
    return ToolContext(session_id="t", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(), net=net)


@pytest.fixture
async def ctx(gh: GitHubEmulator, tmp_path: Path):
    net = make_net(gh.endpoint, tmp_path)
    yield make_ctx(net, tmp_path)
    await net.aclose()


@pytest.fixture
async def anon_ctx(gh: GitHubEmulator, tmp_path: Path):
    net = make_net(gh.endpoint, tmp_path / "anon", token=None)
    yield make_ctx(net, tmp_path / "anon")
    await net.aclose()


async def run(tool_cls, ctx, **kw):
    tool = tool_cls()
    return await tool.run(tool.Params(**kw), ctx)


# ---------------------------------------------------------------------------- find_examples


async def test_find_examples_ranks_examples_first(ctx, gh):
    result = await run(GithubFindExamplesTool, ctx, repo="trl", keyword="sft")
    assert result.success, result.output
    lines = [l for l in result.output.splitlines() if l.startswith("- ")]
    paths = [l[2:].split(" ")[0] for l in lines]
    assert paths[0] == "examples/scripts/sft.py"
    assert paths.index("examples/notebooks/sft_tutorial.ipynb") < paths.index("trl/trainer/sft_trainer.py")
    assert paths.index("scripts/make_sft_dataset.py") < paths.index("trl/trainer/sft_trainer.py")
    assert paths.index("trl/trainer/sft_trainer.py") < paths.index("tests/test_sft_trainer.py")
    assert "assets/logo.png" not in result.output and "dpo" not in " ".join(paths)
    assert "https://github.com/huggingface/trl/blob/main/examples/scripts/sft.py" in result.output
    assert 'github_read_file(repo="huggingface/trl"' in result.output
    tree = gh.requests_to("/git/trees/")[0]
    assert tree.path == "/repos/huggingface/trl/git/trees/main" and tree.query == {"recursive": ["1"]}
    assert {r.token for r in gh.requests} == {"gh_test"}


async def test_find_examples_without_keyword_and_fuzzy(ctx, gh):
    listing = await run(GithubFindExamplesTool, ctx, repo="huggingface/trl")
    assert "examples/scripts/dpo.py" in listing.output and "trl/trainer" not in listing.output
    fuzzy = await run(GithubFindExamplesTool, ctx, repo="trl", keyword="reward model")
    assert "examples/scripts/reward_modeling.py" in fuzzy.output
    none = await run(GithubFindExamplesTool, ctx, repo="trl", keyword="zzzqqq")
    assert none.success and "No file in huggingface/trl" in none.output and "examples/ (" in none.output
    assert keyword_score("grpo", "examples/scripts/grpo.py") == 100
    assert keyword_score("sft", "examples/scripts/dpo.py") < 60


async def test_find_examples_unknown_repo_suggests(ctx, gh):
    result = await run(GithubFindExamplesTool, ctx, repo="trll", keyword="sft")
    assert not result.success and "huggingface/trll was not found" in result.output
    assert "Similar repositories: huggingface/trl" in result.output
    assert gh.requests_to("/search/repositories")


async def test_find_examples_rate_limited_without_token(anon_ctx, gh):
    gh.exhaust_rate_limit(reset_in=600)
    result = await run(GithubFindExamplesTool, anon_ctx, repo="trl")
    assert not result.success
    assert "60 requests an hour" in result.output and "Set GITHUB_TOKEN" in result.output
    assert "10 min" in result.output
    assert all(r.authorization is None for r in gh.requests)


async def test_rate_limited_with_token_does_not_nag_about_tokens(ctx, gh):
    gh.exhaust_rate_limit()
    result = await run(GithubListReposTool, ctx, owner="huggingface", sort="updated")
    assert not result.success and "for this token" in result.output and "Set GITHUB_TOKEN" not in result.output


async def test_secondary_rate_limit_429(ctx, gh):
    gh.fail_next("/repos/", 429, {"message": "You have exceeded a secondary rate limit."}, {"Retry-After": "120"})
    result = await run(GithubFindExamplesTool, ctx, repo="trl")
    assert not result.success and "rate limit" in result.output and "2 min" in result.output


async def test_bad_token_401(gh, tmp_path):
    net = make_net(gh.endpoint, tmp_path, token="gh_wrong")
    try:
        result = await run(GithubReadFileTool, make_ctx(net, tmp_path), repo="huggingface/trl", path="README.md")
    finally:
        await net.aclose()
    assert not result.success and "GITHUB_TOKEN" in result.output and "Bad credentials" in result.output


async def test_refused_connection(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    net = make_net(f"http://127.0.0.1:{port}", tmp_path)
    try:
        result = await run(GithubFindExamplesTool, make_ctx(net, tmp_path), repo="trl")
    finally:
        await net.aclose()
    assert not result.success and "refused" in result.output


def synthetic_paths(n: int, seed: int = 7) -> list[str]:
    """``n`` plausible file paths of a big monorepo (deterministic)."""
    rnd = random.Random(seed)
    words = ("model modeling config trainer training data dataset loader utils tokenizer attention layer vision "
             "audio text image processor pipeline generation beam sampling loss optimizer scheduler warmup callback "
             "metric eval benchmark run script cli convert checkpoint lora adapter peft quant gptq flash rotary "
             "embedding encoder decoder causal speech whisper llama mistral bert gpt vit clip diffusion reward "
             "policy value ppo rloo kto orpo sft dpo grpo online offline distill").split()
    exts = [".py"] * 6 + [".md", ".json", ".yaml", ".ipynb", ".sh", ".png", ".bin"]
    tops = ["src/lib", "tests", "docs/source/en", "examples/pytorch", "scripts", "benchmarks", "utils", "notebooks"]
    found: set[str] = set()
    while len(found) < n:
        dirs = [rnd.choice(tops)] + ["_".join(rnd.sample(words, rnd.randint(1, 2))) for _ in range(rnd.randint(0, 3))]
        found.add("/".join(dirs + ["_".join(rnd.sample(words, rnd.randint(1, 4))) + rnd.choice(exts)]))
    return sorted(found)


def naive_keyword_score(keyword: str, path: str) -> int:
    """The plain definition the fast scorer must reproduce: every keyword word against every path word."""
    tokens = [t for t in re.split(r"[\s_\-/.,]+", keyword.lower()) if t]
    if not tokens:
        return 0
    parts = path.lower().split("/")
    stem = parts[-1].rsplit(".", 1)[0] if "." in parts[-1] else parts[-1]
    whole = parts[:-1] + [stem]
    pieces = list(dict.fromkeys(whole + [w for p in whole for w in re.split(r"[_\-.\s]+", p) if w]))
    total = 0.0
    for token in tokens:
        best = 0.0
        for piece in pieces:
            if token == piece:
                best = 100.0
                break
            best = max(best, 90.0 if len(token) >= 3 and token in piece
                       else difflib.SequenceMatcher(None, token, piece).ratio() * 100)
        total += best
    joined = re.sub(r"[\s_\-]+", "_", keyword.lower().strip())
    ratio = difflib.SequenceMatcher(None, joined, re.sub(r"[\s_\-]+", "_", stem)).ratio() * 100
    return round(max(total / len(tokens), ratio))


def test_fast_scorer_gives_the_plain_scores():
    paths = synthetic_paths(400, seed=3) + ["examples/scripts/grpo.py", "a/.py", "x"]
    for keyword in ("dpo lora training", "sft", "reward model", "zzzqqq", "sft sft lora", "Data-Loader", "x"):
        for floor in (0, 60, 85):
            scorer = KeywordScorer(keyword)
            for path in paths:
                plain = naive_keyword_score(keyword, path)
                assert scorer.score(path, floor) == (plain if plain >= floor else None), (keyword, floor, path)


async def test_find_examples_in_a_huge_tree_keeps_the_event_loop_responsive(ctx, gh):
    """30,000 paths ranked for a three-word keyword (5.9 s on the loop before): the parse and the
    fuzzy matching run in a worker thread, so the loop (the TUI, esc) keeps waking up on time.
    The tree is fetched once before the measured call: the emulator's own ``json.dumps`` of the
    8 MB answer holds the GIL for ~70 ms, a cost of the test server, not of the tool."""
    files = {p: b"" for p in synthetic_paths(30_000)}
    files["examples/scripts/dpo_lora_training.py"] = b"print('dpo')\n"
    gh.add(FakeRepo("huggingface", "monorepo", files))
    listing = await run(GithubFindExamplesTool, ctx, repo="monorepo")
    assert listing.success and " file(s) in huggingface/monorepo" in listing.output
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    # the test process holds every earlier test's objects: a full collection of that heap, which
    # the 30,000 parsed paths can set off, holds the GIL for most of a second on a loaded machine
    # (the app's own heap is a fraction of it, and mlintern_tui/heap.py tunes when it collects)
    gc.collect()
    gc.freeze()
    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    try:
        result = await run(GithubFindExamplesTool, ctx, repo="monorepo", keyword="dpo lora training")
    finally:
        done.set()
        await task
        gc.unfreeze()
    assert result.success, result.output
    first = next(l for l in result.output.splitlines() if l.startswith("- "))
    assert first.startswith("- examples/scripts/dpo_lora_training.py (score 100")
    assert len(gaps) > 5  # the call took a while, and the ticker ran all along
    # work done on the loop would show as one gap about as long as the call; on a loaded machine a
    # scheduling hiccup can be half a second, so the bound is relative to the call's length
    total = sum(gaps)
    assert max(gaps) < max(0.2, total / 4), f"the event loop stalled for {max(gaps):.3f} s of {total:.3f} s"


def test_rank_tree_caps_fuzzy_matching_and_stops_when_told():
    tree = {"tree": [{"path": p, "type": "blob", "size": 10} for p in synthetic_paths(3000)], "truncated": True}
    full = rank_tree(tree, "dpo lora", 60)
    assert full.files == 3000 and full.truncated and full.skipped == 0 and full.scored
    capped = rank_tree(tree, "dpo lora", 60, max_fuzzy=500)
    assert capped.skipped > 0
    assert {p for _, p, _ in capped.scored} <= {p for _, p, _ in full.scored}
    stop = threading.Event()
    stop.set()
    assert rank_tree(tree, "dpo lora", 60, stop=stop).scored == []


# ---------------------------------------------------------------------------- list_repos


async def test_list_repos_by_stars_uses_search(ctx, gh):
    result = await run(GithubListReposTool, ctx, owner="huggingface")
    assert result.success, result.output
    rows = [l for l in result.output.splitlines() if l.startswith("| huggingface/")]
    assert [r.split(" ")[1] for r in rows] == ["huggingface/transformers", "huggingface/peft", "huggingface/trl",
                                               "huggingface/trl-old-fork"]
    assert "| huggingface/transformers | 150,000 | 30,000 | Python |" in result.output
    assert "trl-old-fork (fork)" in result.output
    q = gh.requests_to("/search/repositories")[0].query
    assert q["q"] == ["user:huggingface fork:true"] and q["sort"] == ["stars"] and q["order"] == ["desc"]
    asc = await run(GithubListReposTool, ctx, owner="huggingface", order="asc", limit=1)
    assert "huggingface/trl-old-fork" in asc.output and "transformers" not in asc.output


async def test_list_repos_paginates_by_link_header(ctx, gh):
    for i in range(230):
        gh.add(FakeRepo("bigorg", f"repo{i:03d}", {"README.md": b"x"}, stars=i, created_at=f"2021-01-01T00:{i // 60:02d}:{i % 60:02d}Z"))
    result = await run(GithubListReposTool, ctx, owner="bigorg", sort="created", limit=250)
    assert result.success
    assert result.spill_path  # 230 rows are over the answer's budget: all of them are in the spill file
    rows = [l for l in Path(result.spill_path).read_text().splitlines() if l.startswith("| bigorg/")]
    assert len(rows) == 230 and rows[0].startswith("| bigorg/repo229 ")
    pages = gh.requests_to("/orgs/bigorg/repos")
    assert len(pages) == 3 and pages[1].query["page"] == ["2"] and pages[2].query["page"] == ["3"]
    # the limit stops the paging early
    gh_count = len(gh.requests_to("/orgs/bigorg/repos"))
    small = await run(GithubListReposTool, ctx, owner="bigorg", sort="updated", limit=50)
    assert len([l for l in small.output.splitlines() if l.startswith("| bigorg/")]) == 50
    assert len(gh.requests_to("/orgs/bigorg/repos")) == gh_count + 1


async def test_list_repos_user_fallback_and_unknown_owner(ctx, gh):
    user = await run(GithubListReposTool, ctx, owner="ada", sort="updated")
    assert user.success and "ada/notes" in user.output and "is a user, not an organisation" in user.output
    missing = await run(GithubListReposTool, ctx, owner="no-such-owner", sort="updated")
    assert not missing.success and "no user or organisation" in missing.output
    missing_stars = await run(GithubListReposTool, ctx, owner="no-such-owner")
    assert not missing_stars.success and "no user or organisation" in missing_stars.output


# ---------------------------------------------------------------------------- read_file


async def test_read_file_first_300_lines_numbered(ctx, gh):
    result = await run(GithubReadFileTool, ctx, repo="huggingface/trl", path="examples/scripts/sft.py")
    assert result.success
    out = result.output
    assert "huggingface/trl/examples/scripts/sft.py @ default branch (400 lines" in out
    assert "  1| # line 1\n" in out and "300| # line 300" in out and "# line 301" not in out
    assert "[lines 1-300 of 400; next: line_start=301]" in out
    more = await run(GithubReadFileTool, ctx, repo="huggingface/trl", path="examples/scripts/sft.py",
                     line_start=390, line_end=500)
    assert "390| # line 390" in more.output and "400| # line 400" in more.output and "[lines 390-400 of 400]" in more.output
    past = await run(GithubReadFileTool, ctx, repo="huggingface/trl", path="examples/scripts/sft.py", line_start=401)
    assert not past.success


async def test_read_file_at_ref(ctx, gh):
    result = await run(GithubReadFileTool, ctx, repo="https://github.com/huggingface/trl", path="README.md", ref="v0.1")
    assert "# TRL v0.1" in result.output and "@ v0.1" in result.output
    assert gh.requests_to("/contents/README.md")[-1].query == {"ref": ["v0.1"]}


async def test_read_notebook_as_markdown(ctx, gh):
    result = await run(GithubReadFileTool, ctx, repo="huggingface/trl", path="examples/notebooks/sft_tutorial.ipynb")
    assert result.success and "outputs omitted" in result.output
    assert "# Fine-tune a model" in result.output and "With **TRL**." in result.output
    assert "```python" in result.output and "from trl import SFTTrainer" in result.output
    assert "trainer.train()" in result.output and "raw cell text" in result.output
    assert "NOTEBOOK_OUTPUT_TEXT" not in result.output and '"cell_type"' not in result.output


def test_render_notebook_nbformat3():
    nb = b'{"metadata": {"language": "julia"}, "worksheets": [{"cells": [{"cell_type": "heading", "level": 2, ' \
         b'"source": ["Intro"]}, {"cell_type": "code", "input": ["println(1)"], "outputs": []}]}]}'
    text = render_notebook(nb)
    assert "## Intro" in text and "```python\nprintln(1)\n```" in text


async def test_read_large_file_falls_back_to_raw(ctx, gh):
    gh.content_limit = 1000
    result = await run(GithubReadFileTool, ctx, repo="huggingface/trl", path="data/big.jsonl", line_end=3)
    assert result.success, result.output
    assert '1| {"i": 0}' in result.output and "of 3,000" in result.output
    raw = gh.requests_to("/contents/data/big.jsonl")
    assert len(raw) == 2 and raw[1].headers["accept"] == "application/vnd.github.raw"
    assert raw[1].token == "gh_test"


async def test_read_directory_binary_and_missing(ctx, gh):
    listing = await run(GithubReadFileTool, ctx, repo="huggingface/trl", path="examples")
    assert "is a directory" in listing.output and "- notebooks/" in listing.output and "- README.md" in listing.output
    root = await run(GithubReadFileTool, ctx, repo="huggingface/trl", path="")
    assert "- trl/" in root.output
    binary = await run(GithubReadFileTool, ctx, repo="huggingface/trl", path="assets/logo.png")
    assert "binary file" in binary.output
    missing = await run(GithubReadFileTool, ctx, repo="huggingface/trl", path="examples/nope.py")
    assert not missing.success and "does not exist in huggingface/trl" in missing.output
    assert 'path="examples"' in missing.output
    no_repo = await run(GithubReadFileTool, ctx, repo="huggingface/nope", path="x.py")
    assert not no_repo.success and "repository huggingface/nope was not found" in no_repo.output
    bad = await run(GithubReadFileTool, ctx, repo="trl", path="x.py")
    assert not bad.success and "'owner/name'" in bad.output


async def test_tokens_go_only_to_their_own_service(gh, tmp_path):
    """One Net with both tokens: GitHub sees only GITHUB_TOKEN, the dataset viewer only the HF
    token, and an ordinary web server neither."""
    with DatasetsServerEmulator() as viewer, WebEmulator() as web:
        net = make_net(gh.endpoint, tmp_path, datasets_server=viewer.endpoint, web_search=web.search_url)
        ctx = make_ctx(net, tmp_path)
        try:
            from agent.tools.datasets import HfInspectDatasetTool
            from agent.tools.web import FetchUrlTool, WebSearchTool

            assert (await run(GithubReadFileTool, ctx, repo="huggingface/trl", path="README.md")).success
            assert (await run(HfInspectDatasetTool, ctx, dataset="stanfordnlp/imdb-demo")).success
            assert (await run(WebSearchTool, ctx, query="sft trainer")).success
            assert (await run(FetchUrlTool, ctx, url=f"{web.endpoint}/docs/article")).success
            # a page on the GitHub API origin fetched with fetch_url still carries nothing
            await run(FetchUrlTool, ctx, url=f"{gh.endpoint}/repos/huggingface/trl")
        finally:
            await net.aclose()
        assert {r.authorization for r in gh.requests[:-1]} == {"Bearer gh_test"}
        assert gh.requests[-1].authorization is None
        assert {r.authorization for r in viewer.requests} == {"Bearer hf_test"}
        assert {r.authorization for r in web.requests} == {None}


async def test_schemas_through_router(ctx, gh):
    router = ToolRouter([GithubFindExamplesTool(), GithubListReposTool(), GithubReadFileTool()], ungoverned=True)
    specs = {s["function"]["name"]: s["function"]["parameters"] for s in router.specs()}
    assert set(specs["github_find_examples"]["properties"]) == {"repo", "keyword", "org", "max_results", "min_score"}
    assert specs["github_list_repos"]["properties"]["sort"]["enum"] == ["stars", "forks", "updated", "created"]
    assert set(specs["github_read_file"]["required"]) == {"repo", "path"}
    call = router.parse("c", "github_read_file", '{"repo": "huggingface/trl", "path": "README.md"}')
    assert (await router.execute(call, ctx)).success
    assert split_repo("https://github.com/huggingface/trl.git") == ("huggingface", "trl")
    assert split_repo("a/b/c") is None
