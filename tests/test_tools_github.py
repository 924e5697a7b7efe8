"""The GitHub tools against a loopback GitHub REST API (tests/fakes/github_server.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agent.net import Endpoints, Net
from agent.tools.base import SessionToolState, ToolContext
from agent.tools.github import (GithubFindExamplesTool, GithubListReposTool, GithubReadFileTool, keyword_score,
                                render_notebook, split_repo)
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
