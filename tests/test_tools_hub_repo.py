"""hf_repo_files and hf_repo_git against the Hub emulator: the real huggingface_hub client on
loopback, so request shapes, error mapping and commits are what the live Hub would see."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path

import pytest

from agent.hub_provenance import PROVENANCE_LINE, PROVENANCE_MARK, with_provenance
from agent.net import Endpoints, Net
from agent.protocol import HubWriteReview
from agent.tools.base import ApprovalSettings, SessionToolState, ToolContext
from agent.tools.hub_repo import HfRepoFilesTool, HfRepoGitTool
from agent.tools.router import ToolRouter

CARD = "---\nlicense: mit\n---\n# Tiny GPT\n\nA small model.\n\nTrained for 3 epochs.\n"


@pytest.fixture(autouse=True)
def hub_cache(hub, tmp_path, monkeypatch):
    """hf_hub_download's cache dir is read from a module constant at call time: keep it in tmp.
    The ``hub`` fixture points ``constants.ENDPOINT`` at the emulator; the file URL template was
    built from the old value at import, and ``hf_hub_url(endpoint=)`` only rewrites URLs that
    start with ``ENDPOINT``, so the template has to follow (as it would with HF_ENDPOINT set)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    return hub


def make_ctx(tmp_path: Path, hub, token: str | None = "hf_test", logs: list[str] | None = None) -> ToolContext:
    cwd = tmp_path / "work"
    cwd.mkdir(exist_ok=True)
    net = Net(Endpoints.resolve({}, env={"HF_ENDPOINT": hub.endpoint}), hf_token=lambda: token,
              cache_dir=tmp_path / "cache")
    return ToolContext(session_id="t", cwd=cwd, spill_dir=tmp_path / "spill", state=SessionToolState(), net=net,
                       log=(logs.append if logs is not None else (lambda line: None)))


async def files(ctx, **kw):
    tool = HfRepoFilesTool()
    return await tool.run(tool.Params(**kw), ctx)


async def git(ctx, **kw):
    tool = HfRepoGitTool()
    return await tool.run(tool.Params(**kw), ctx)


def commit_bodies(hub, repo_id: str, repo_type: str = "model") -> list[list[dict]]:
    kind = {"model": "models", "dataset": "datasets", "space": "spaces"}[repo_type]
    return [r.body for r in hub.requests if r.method == "POST" and r.path.startswith(f"/api/{kind}/{repo_id}/commit/")]


# ---------------------------------------------------------------- list / read


async def test_list_shows_files_folders_and_sizes(tmp_path, hub):
    hub.add_repo("ada/tiny", files={"README.md": CARD, "config.json": "{}", "ckpt/step-1/model.bin": b"\0" * 2048})
    ctx = make_ctx(tmp_path, hub)
    top = await files(ctx, operation="list", repo_id="ada/tiny")
    assert top.success
    assert "2 files" in top.output and "1 folders" in top.output and "ckpt/" in top.output
    assert "model.bin" not in top.output
    deep = await files(ctx, operation="list", repo_id="ada/tiny", recursive=True)
    assert "ckpt/step-1/model.bin" in deep.output and "2.0 kB" in deep.output


async def test_read_returns_text_within_budget_and_refuses_binaries(tmp_path, hub):
    big = "".join(f"line {i}\n" for i in range(5000))
    hub.add_repo("ada/tiny", files={"README.md": CARD, "log.txt": big, "weights.safetensors": b"\0" * 5000,
                                    "blob.dat": b"\0\1\2" * 10})
    ctx = make_ctx(tmp_path, hub)
    ok = await files(ctx, operation="read", repo_id="ada/tiny", path="README.md")
    assert ok.success and "Trained for 3 epochs." in ok.output
    cut = await files(ctx, operation="read", repo_id="ada/tiny", path="log.txt", max_chars=2000)
    assert cut.success and len(cut.output) < 3000 and cut.spill_path
    assert "line 4999" in Path(cut.spill_path).read_text()
    binary = await files(ctx, operation="read", repo_id="ada/tiny", path="weights.safetensors")
    assert not binary.success and "binary" in binary.output and "5.0 kB" in binary.output
    sniffed = await files(ctx, operation="read", repo_id="ada/tiny", path="blob.dat")
    assert not sniffed.success and "binary" in sniffed.output
    missing = await files(ctx, operation="read", repo_id="ada/tiny", path="nope.txt")
    assert not missing.success and "does not exist" in missing.output


async def test_reads_of_public_repos_need_no_token_but_private_ones_stay_hidden(tmp_path, hub):
    hub.add_repo("ml-team/open", files={"a.txt": "hello"})
    hub.add_repo("ml-team/secret", files={"a.txt": "hidden"}, private=True)
    anon = make_ctx(tmp_path, hub, token=None)
    assert "hello" in (await files(anon, operation="read", repo_id="ml-team/open", path="a.txt")).output
    hidden = await files(anon, operation="list", repo_id="ml-team/secret")
    assert not hidden.success and "not found" in hidden.output.lower()
    assert all(r.token is None for r in hub.requests)


async def test_bad_token_gated_repo_missing_repo_and_refused_connection(tmp_path, hub):
    hub.add_repo("meta/gated", files={"README.md": CARD, "weights.txt": "x"}, gated="manual")
    bad = await files(make_ctx(tmp_path, hub, token="hf_wrong"), operation="list", repo_id="meta/gated")
    assert not bad.success and "401" in bad.output and "HF_TOKEN" in bad.output
    ctx = make_ctx(tmp_path, hub)
    gated = await files(ctx, operation="read", repo_id="meta/gated", path="weights.txt")
    assert not gated.success and "gated" in gated.output and "meta/gated" in gated.output
    missing = await files(ctx, operation="list", repo_id="ada/nothing-here")
    assert not missing.success and "not found" in missing.output.lower()
    bad_rev = await files(ctx, operation="list", repo_id="meta/gated", revision="no-such-branch")
    assert not bad_rev.success and "Revision not found" in bad_rev.output
    dead = make_ctx(tmp_path, hub)
    dead.net = Net(Endpoints.resolve({}, env={"HF_ENDPOINT": "http://127.0.0.1:9"}), hf_token=lambda: "hf_test")
    refused = await git(dead, operation="list_refs", repo_id="ada/tiny")
    assert not refused.success and "refused" in refused.output
    # list_repo_tree alone retries a refused connection for ~20 s inside the client: the
    # reachability check in front of every Hub call answers within seconds instead
    started = time.monotonic()
    listing = await files(dead, operation="list", repo_id="ada/tiny")
    assert not listing.success and "refused" in listing.output and time.monotonic() - started < 5


async def test_rate_limit_is_reported_with_the_wait_the_hub_asked_for(tmp_path, hub):
    hub.add_repo("ada/tiny", files={"a.txt": "x"})
    hub.fail_next_repo_request("GET", r"/refs$", 429, "Too many requests", {"Retry-After": "120"})
    ctx = make_ctx(tmp_path, hub)
    limited = await git(ctx, operation="list_refs", repo_id="ada/tiny")
    assert not limited.success and "429" in limited.output and "120 s" in limited.output
    assert (await git(ctx, operation="list_refs", repo_id="ada/tiny")).success


# ---------------------------------------------------------------- upload / delete


async def test_upload_text_commits_once_and_adds_provenance_to_a_readme(tmp_path, hub):
    hub.add_repo("ada/tiny", files={"README.md": CARD})
    logs: list[str] = []
    ctx = make_ctx(tmp_path, hub, logs=logs)
    out = await files(ctx, operation="upload", repo_id="ada/tiny", path="notes/run.md", content="loss 0.42\n")
    assert out.success and "Committed" in out.output
    assert hub.repo_files("ada/tiny", "model")["notes/run.md"] == b"loss 0.42\n"
    card = CARD.replace("3 epochs", "5 epochs")
    out = await files(ctx, operation="upload", repo_id="ada/tiny", path="README.md", content=card)
    assert out.success
    written = hub.repo_files("ada/tiny", "model")["README.md"].decode()
    assert "Trained for 5 epochs." in written and PROVENANCE_LINE in written and "- mlintern" in written
    assert len(commit_bodies(hub, "ada/tiny")) == 2
    assert any("committing" in line for line in logs)


async def test_upload_local_folder_sends_exactly_the_matching_files(tmp_path, hub):
    hub.add_repo("ml-team/ds", "dataset", files={"old.txt": "keep"})
    ctx = make_ctx(tmp_path, hub)
    out_dir = ctx.cwd / "out"
    (out_dir / "data").mkdir(parents=True)
    (out_dir / "data" / "train.jsonl").write_text('{"x": 1}\n')
    (out_dir / "data" / "test.jsonl").write_text('{"x": 2}\n')
    (out_dir / "scratch.tmp").write_text("no")
    (out_dir / ".git").mkdir()
    (out_dir / ".git" / "HEAD").write_text("ref: refs/heads/main")
    out = await files(ctx, operation="upload", repo_id="ml-team/ds", repo_type="dataset", local_path="out",
                      path_in_repo="v1", patterns=["*.jsonl", "data/*"])
    assert out.success, out.output
    [body] = commit_bodies(hub, "ml-team/ds", "dataset")
    sent = {item["value"]["path"]: base64.b64decode(item["value"]["content"]) for item in body if item["key"] == "file"}
    assert sent == {"v1/data/test.jsonl": b'{"x": 2}\n', "v1/data/train.jsonl": b'{"x": 1}\n'}
    assert hub.repo_files("ml-team/ds", "dataset")["old.txt"] == b"keep"


async def test_upload_with_create_pr_opens_a_pr_and_leaves_main_alone(tmp_path, hub):
    hub.add_repo("ada/tiny", files={"README.md": CARD})
    ctx = make_ctx(tmp_path, hub)
    (ctx.cwd / "eval.json").write_text('{"acc": 0.9}')
    out = await files(ctx, operation="upload", repo_id="ada/tiny", local_path="eval.json", create_pr=True)
    assert out.success and "pull request #1" in out.output
    assert "eval.json" not in hub.repo_files("ada/tiny", "model")
    assert hub.branch_files("ada/tiny", "refs/pr/1")["eval.json"] == b'{"acc": 0.9}'


async def test_upload_and_delete_need_a_token_and_valid_arguments(tmp_path, hub):
    hub.add_repo("ada/tiny", files={"a.txt": "x"})
    anon = make_ctx(tmp_path, hub, token=None)
    out = await files(anon, operation="upload", repo_id="ada/tiny", path="b.txt", content="y")
    assert not out.success and "HF_TOKEN" in out.output
    ctx = make_ctx(tmp_path, hub)
    both = await files(ctx, operation="upload", repo_id="ada/tiny", path="b.txt", content="y", local_path="x")
    assert not both.success and "exactly one" in both.output
    nowhere = await files(ctx, operation="upload", repo_id="ada/tiny", local_path="missing-dir")
    assert not nowhere.success and "does not exist" in nowhere.output
    escape = await files(ctx, operation="upload", repo_id="ada/tiny", path="../b.txt", content="y")
    assert not escape.success and "not a usable path" in escape.output
    other = await files(ctx, operation="upload", repo_id="someone/else", path="b.txt", content="y")
    assert not other.success
    assert commit_bodies(hub, "ada/tiny") == []


async def test_delete_by_path_and_patterns_in_one_commit(tmp_path, hub):
    hub.add_repo("ada/tiny", files={"README.md": CARD, "ckpt/a.bin": "1", "ckpt/b.bin": "2", "x.log": "l",
                                    "y.log": "l", "keep.txt": "k"})
    ctx = make_ctx(tmp_path, hub)
    out = await files(ctx, operation="delete", repo_id="ada/tiny", path="ckpt", patterns=["*.log"])
    assert out.success and "deleted 4 file(s)" in out.output
    assert sorted(hub.repo_files("ada/tiny", "model")) == ["README.md", "keep.txt"]
    assert len(commit_bodies(hub, "ada/tiny")) == 1
    nothing = await files(ctx, operation="delete", repo_id="ada/tiny", patterns=["*.bin"])
    assert not nothing.success and "nothing" in nothing.output


async def test_an_interrupted_upload_commits_nothing(tmp_path, hub):
    hub.add_repo("ada/tiny", files={})
    ctx = make_ctx(tmp_path, hub)
    (ctx.cwd / "big").mkdir()
    for i in range(30):
        (ctx.cwd / "big" / f"f{i}.txt").write_text("x" * 1000)
    logs: list[str] = []
    ctx.log = logs.append
    task = asyncio.create_task(files(ctx, operation="upload", repo_id="ada/tiny", local_path="big"))
    while not any("uploading" in line for line in logs):
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)  # the preupload thread finishes on its own; no commit may follow it
    assert commit_bodies(hub, "ada/tiny") == []


# ---------------------------------------------------------------- git


async def test_branches_and_tags(tmp_path, hub):
    hub.add_repo("ada/tiny", files={"a.txt": "x"})
    ctx = make_ctx(tmp_path, hub)
    assert (await git(ctx, operation="create_branch", repo_id="ada/tiny", branch="exp")).success
    assert (await git(ctx, operation="create_tag", repo_id="ada/tiny", tag="v1", tag_message="first")).success
    refs = await git(ctx, operation="list_refs", repo_id="ada/tiny")
    assert "exp" in refs.output and "v1" in refs.output
    again = await git(ctx, operation="create_branch", repo_id="ada/tiny", branch="exp")
    assert not again.success and "409" in again.output
    assert (await git(ctx, operation="delete_branch", repo_id="ada/tiny", branch="exp")).success
    assert (await git(ctx, operation="delete_tag", repo_id="ada/tiny", tag="v1")).success
    assert hub.git_refs("ada/tiny") == {"branches": ["main"], "tags": [], "prs": []}
    main = await git(ctx, operation="delete_branch", repo_id="ada/tiny", branch="main")
    assert not main.success and "default branch" in main.output
    need = await git(ctx, operation="create_tag", repo_id="ada/tiny")
    assert not need.success and "`tag`" in need.output


async def test_pull_request_lifecycle(tmp_path, hub):
    hub.add_repo("ada/tiny", files={"a.txt": "x"})
    ctx = make_ctx(tmp_path, hub)
    made = await git(ctx, operation="create_pr", repo_id="ada/tiny", title="Add eval results", description="Evals")
    assert made.success and "#1" in made.output and "refs/pr/1" in made.output
    up = await files(ctx, operation="upload", repo_id="ada/tiny", revision="refs/pr/1", path="eval.md", content="ok")
    assert up.success, up.output
    assert (await git(ctx, operation="comment_pr", repo_id="ada/tiny", pr_num=1, comment="Looks good")).success
    listed = await git(ctx, operation="list_prs", repo_id="ada/tiny")
    assert "#1 [draft] Add eval results" in listed.output
    got = await git(ctx, operation="get_pr", repo_id="ada/tiny", pr_num=1)
    assert "Looks good" in got.output and "eval.md" in got.output and "into refs/heads/main" in got.output
    assert (await git(ctx, operation="change_pr_status", repo_id="ada/tiny", pr_num=1, new_status="open")).success
    merged = await git(ctx, operation="merge_pr", repo_id="ada/tiny", pr_num=1, comment="ship it")
    assert merged.success
    assert hub.repo_files("ada/tiny", "model")["eval.md"] == b"ok"
    assert hub.discussion("ada/tiny", 1)["status"] == "merged"
    second = await git(ctx, operation="create_pr", repo_id="ada/tiny", title="Try again")
    assert (await git(ctx, operation="close_pr", repo_id="ada/tiny", pr_num=2)).success
    assert hub.discussion("ada/tiny", 2)["status"] == "closed"
    closed = await git(ctx, operation="list_prs", repo_id="ada/tiny", status="closed")
    assert "#2" in closed.output and "#1" not in closed.output and second.success
    gone = await git(ctx, operation="get_pr", repo_id="ada/tiny", pr_num=9)
    assert not gone.success and "404" in gone.output


async def test_create_repo_is_private_with_a_provenance_card(tmp_path, hub):
    ctx = make_ctx(tmp_path, hub)
    out = await git(ctx, operation="create_repo", repo_id="ada/new-model")
    assert out.success and "private model repo" in out.output
    assert hub.repo_settings("ada/new-model") == {"private": True, "gated": False}
    card = hub.repo_files("ada/new-model", "model")["README.md"].decode()
    assert card.startswith("---\ntags:\n- mlintern\n---\n") and PROVENANCE_MARK in card
    info = await files(ctx, operation="read", repo_id="ada/new-model", path="README.md")
    assert PROVENANCE_MARK in info.output
    pub = await git(ctx, operation="create_repo", repo_id="ml-team/data", repo_type="dataset", private=False,
                    gated="auto")
    assert pub.success and hub.repo_settings("ml-team/data", "dataset") == {"private": False, "gated": "auto"}
    space = await git(ctx, operation="create_repo", repo_id="ada/demo", repo_type="space", space_sdk="gradio")
    assert space.success and "README.md" not in hub.repo_files("ada/demo", "space")
    dup = await git(ctx, operation="create_repo", repo_id="ada/new-model")
    assert not dup.success and "409" in dup.output
    foreign = await git(ctx, operation="create_repo", repo_id="meta/llama-9")
    assert not foreign.success and "403" in foreign.output


async def test_update_repo_visibility_and_gating(tmp_path, hub):
    hub.add_repo("ada/tiny", files={})
    ctx = make_ctx(tmp_path, hub)
    out = await git(ctx, operation="update_repo", repo_id="ada/tiny", private=True, gated="manual")
    assert out.success and "private" in out.output
    assert hub.repo_settings("ada/tiny") == {"private": True, "gated": "manual"}
    assert (await git(ctx, operation="update_repo", repo_id="ada/tiny", gated="false")).success
    assert hub.repo_settings("ada/tiny")["gated"] is False
    empty = await git(ctx, operation="update_repo", repo_id="ada/tiny")
    assert not empty.success
    anon = await git(make_ctx(tmp_path, hub, token=None), operation="update_repo", repo_id="ada/tiny", private=False)
    assert not anon.success and "HF_TOKEN" in anon.output


def test_provenance_is_idempotent_and_keeps_the_users_front_matter():
    once = with_provenance(CARD)
    assert with_provenance(once) == once
    assert once.startswith("---\nlicense: mit\ntags:\n- mlintern\n---\n")
    tagged = with_provenance("---\ntags:\n- llm\n---\nBody\n")
    assert "- llm\n- mlintern" in tagged and tagged.rstrip().endswith(PROVENANCE_LINE)


# ---------------------------------------------------------------- policy and review


def test_gates_match_the_policy():
    from agent.policy import HUB_GATES

    settings = ApprovalSettings()
    for tool, ops in ((HfRepoFilesTool(), ("list", "read", "upload", "delete")),
                      (HfRepoGitTool(), tuple(HfRepoGitTool.Params.model_fields["operation"].annotation.__args__))):
        for op in ops:
            params = tool.Params(operation=op, repo_id="a/b")
            assert bool(tool.approval_reason(params, settings)) == (op in HUB_GATES[tool.name]), (tool.name, op)
    specs = ToolRouter([HfRepoFilesTool(), HfRepoGitTool()], ungoverned=True).specs()
    assert {s["function"]["name"] for s in specs} == {"hf_repo_files", "hf_repo_git"}


async def test_review_of_a_readme_upload_to_a_public_repo(tmp_path, hub):
    hub.add_repo("ada/tiny", files={"README.md": CARD, "config.json": "{}"})
    ctx = make_ctx(tmp_path, hub)
    tool = HfRepoFilesTool()
    new = CARD.replace("3 epochs", "5 epochs")
    params = tool.Params(operation="upload", repo_id="ada/tiny", path="README.md", content=new)
    review = await tool.review(params, ctx)
    assert isinstance(review, HubWriteReview)
    assert review.visibility == "public" and review.revision == "main" and not review.creates_repo
    [f] = review.files
    final = with_provenance(new).encode()
    assert (f.path, f.change, f.size, f.source) == ("README.md", "update", len(final), "content")
    assert review.total_bytes == len(final)
    assert "-Trained for 3 epochs.\n" in review.card_diff and "+Trained for 5 epochs.\n" in review.card_diff
    assert f"+{PROVENANCE_LINE}" in review.card_diff
    assert commit_bodies(hub, "ada/tiny") == [] and not any(r.method in ("PUT", "DELETE") for r in hub.requests)


async def test_review_of_a_folder_upload_caps_the_list(tmp_path, hub, monkeypatch):
    from agent.tools import hub_repo

    monkeypatch.setattr(hub_repo, "REVIEW_MAX_FILES", 3)
    hub.add_repo("ada/tiny", files={"run/f0.txt": "old"}, private=True)
    ctx = make_ctx(tmp_path, hub)
    (ctx.cwd / "run").mkdir()
    for i in range(5):
        (ctx.cwd / "run" / f"f{i}.txt").write_text("y" * (10 + i))
    (ctx.cwd / "run" / "skip.bin").write_bytes(b"\0" * 99)
    tool = HfRepoFilesTool()
    review = await tool.review(tool.Params(operation="upload", repo_id="ada/tiny", local_path="run",
                                           path_in_repo="run", patterns=["*.txt"], create_pr=True), ctx)
    assert review.visibility == "private" and review.create_pr and review.revision is None
    assert [(f.path, f.change, f.size) for f in review.files] == [
        ("run/f0.txt", "update", 10), ("run/f1.txt", "add", 11), ("run/f2.txt", "add", 12)]
    assert review.files[0].source == "run/f0.txt"
    assert review.total_bytes == 10 + 11 + 12 + 13 + 14
    assert any("2 more files" in n for n in review.notes) and review.card_diff is None


async def test_review_of_create_repo_and_of_a_failed_lookup(tmp_path, hub):
    ctx = make_ctx(tmp_path, hub)
    tool = HfRepoGitTool()
    review = await tool.review(tool.Params(operation="create_repo", repo_id="ada/fresh", private=False), ctx)
    assert review.creates_repo and review.visibility == "public"
    assert [(f.path, f.change) for f in review.files] == [("README.md", "add")]
    assert "+- mlintern" in review.card_diff and not hub.repo_exists("ada/fresh", "model")
    assert await tool.review(tool.Params(operation="list_refs", repo_id="ada/fresh"), ctx) is None
    dead = make_ctx(tmp_path, hub)
    dead.net = Net(Endpoints.resolve({}, env={"HF_ENDPOINT": "http://127.0.0.1:9"}), hf_token=lambda: "hf_test")
    ftool = HfRepoFilesTool()
    blind = await ftool.review(ftool.Params(operation="delete", repo_id="ada/tiny", path="x"), dead)
    assert blind.visibility == "unknown" and any("could not be checked" in n for n in blind.notes)


# ---------------------------------------------------------------- what was reviewed is what is sent


def sent_files(hub, repo_id: str) -> dict[str, bytes]:
    return {item["value"]["path"]: base64.b64decode(item["value"]["content"])
            for body in commit_bodies(hub, repo_id) for item in body if item["key"] == "file"}


async def test_files_changed_after_the_review_make_the_upload_send_nothing(tmp_path, hub):
    hub.add_repo("ada/tiny", files={})
    ctx = make_ctx(tmp_path, hub)
    ctx.tool_call_id = "call-1"
    run_dir = ctx.cwd / "run"
    run_dir.mkdir()
    (run_dir / "model.txt").write_text("weights v1")
    (run_dir / "notes.txt").write_text("fine")
    tool = HfRepoFilesTool()
    params = tool.Params(operation="upload", repo_id="ada/tiny", local_path="run")
    review = await tool.review(params, ctx)
    assert sorted(f.path for f in review.files) == ["model.txt", "notes.txt"]
    (run_dir / "model.txt").write_text("weights v2, retrained")
    (run_dir / "wandb_api_key.txt").write_text("secret")
    out = await tool.run(params, ctx)
    assert not out.success
    assert ("2 files changed since the user approved this upload: model.txt (modified), wandb_api_key.txt (new) "
            "- nothing was uploaded; ask again so the user sees the current files") in out.output
    assert commit_bodies(hub, "ada/tiny") == []
    assert not any("/preupload/" in r.path for r in hub.requests)
    # a same-size rewrite is caught by its mtime, a deleted file by its absence
    (run_dir / "wandb_api_key.txt").unlink()
    (run_dir / "model.txt").write_text("weights v1")
    ctx.tool_call_id = "call-2"
    await tool.review(params, ctx)
    (run_dir / "notes.txt").unlink()
    (run_dir / "model.txt").write_text("weights v3")
    os.utime(run_dir / "model.txt", ns=(1, 1))
    out = await tool.run(params, ctx)
    assert not out.success and "model.txt (modified), notes.txt (removed)" in out.output
    assert commit_bodies(hub, "ada/tiny") == []
    # a folder that did not exist at review time was not seen either
    ctx.tool_call_id = "call-3"
    later = tool.Params(operation="upload", repo_id="ada/tiny", local_path="later")
    assert any("cannot run" in n for n in (await tool.review(later, ctx)).notes)
    (ctx.cwd / "later").mkdir()
    (ctx.cwd / "later" / "a.txt").write_text("a")
    out = await tool.run(later, ctx)
    assert not out.success and "1 file changed since the user approved this upload: a.txt (new)" in out.output
    assert commit_bodies(hub, "ada/tiny") == []


async def test_an_unchanged_folder_uploads_after_its_review_and_unreviewed_calls_run_as_planned(tmp_path, hub):
    hub.add_repo("ada/tiny", files={})
    ctx = make_ctx(tmp_path, hub)
    ctx.tool_call_id = "call-1"
    (ctx.cwd / "run").mkdir()
    (ctx.cwd / "run" / "model.txt").write_text("weights")
    (ctx.cwd / "run" / "README.md").write_text("# Tiny\n")
    tool = HfRepoFilesTool()
    params = tool.Params(operation="upload", repo_id="ada/tiny", local_path="run")
    await tool.review(params, ctx)
    out = await tool.run(params, ctx)
    assert out.success, out.output
    sent = sent_files(hub, "ada/tiny")
    assert sent["model.txt"] == b"weights" and PROVENANCE_MARK in sent["README.md"].decode()
    # text content: reviewed and unchanged (its hash) uploads too
    ctx.tool_call_id = "call-2"
    text = tool.Params(operation="upload", repo_id="ada/tiny", path="notes.md", content="hello")
    await tool.review(text, ctx)
    assert (await tool.run(text, ctx)).success
    # a call with no review (allowed by a rule) uploads what is there when it runs
    ctx.tool_call_id = "call-3"
    (ctx.cwd / "run" / "extra.txt").write_text("more")
    assert (await tool.run(params, ctx)).success
    assert "extra.txt" in hub.repo_files("ada/tiny", "model")
    # the memory of reviews stays bounded
    for i in range(100):
        ctx.tool_call_id = f"many-{i}"
        await tool.review(text, ctx)
    ids = {call_id for call_id, _ in tool._reviewed}
    assert len(tool._reviewed) == 64 and "many-99" in ids and "many-0" not in ids


async def test_links_out_of_an_uploaded_folder_are_skipped_and_named(tmp_path, hub):
    hub.add_repo("ada/tiny", files={})
    ctx = make_ctx(tmp_path, hub)
    ctx.tool_call_id = "call-1"
    secret = tmp_path / "home" / ".ssh"
    secret.mkdir(parents=True)
    (secret / "id_rsa").write_text("PRIVATE KEY")
    run_dir = ctx.cwd / "run"
    (run_dir / "sub").mkdir(parents=True)
    (run_dir / "model.txt").write_text("weights")
    (run_dir / "sub" / "data.txt").write_text("data")
    (run_dir / "config.json").symlink_to(secret / "id_rsa")
    (run_dir / "ssh").symlink_to(secret)
    (run_dir / "alias.txt").symlink_to(run_dir / "model.txt")
    (run_dir / "sub" / "up.txt").symlink_to("../model.txt")
    tool = HfRepoFilesTool()
    params = tool.Params(operation="upload", repo_id="ada/tiny", local_path="run")
    review = await tool.review(params, ctx)
    assert sorted(f.path for f in review.files) == ["alias.txt", "model.txt", "sub/data.txt", "sub/up.txt"]
    assert "skipped: config.json is a link to a file outside the folder" in review.notes
    assert "skipped: ssh is a link to a folder outside the folder" in review.notes
    out = await tool.run(params, ctx)
    assert out.success, out.output
    assert "skipped: config.json is a link to a file outside the folder" in out.output
    sent = sent_files(hub, "ada/tiny")
    assert sent == {"alias.txt": b"weights", "model.txt": b"weights", "sub/data.txt": b"data",
                    "sub/up.txt": b"weights"}
    assert not any(b"PRIVATE" in body for body in sent.values())
    # a local_path that is itself a link out of the working directory is refused
    (ctx.cwd / "keys").symlink_to(secret)
    (ctx.cwd / "key.txt").symlink_to(secret / "id_rsa")
    for path in ("keys", "key.txt", "keys/id_rsa"):
        refused = await files(ctx, operation="upload", repo_id="ada/tiny", local_path=path)
        assert not refused.success and "outside the working directory" in refused.output, path
    blocked = await tool.review(tool.Params(operation="upload", repo_id="ada/tiny", local_path="key.txt"), ctx)
    assert any("outside the working directory" in n for n in blocked.notes) and not blocked.files
    # one inside it is fine
    (ctx.cwd / "latest").symlink_to(run_dir)
    inside = await files(ctx, operation="upload", repo_id="ada/tiny", local_path="latest", path_in_repo="v2")
    assert inside.success and "v2/model.txt" in hub.repo_files("ada/tiny", "model")
    assert "PRIVATE" not in str(hub.repo_files("ada/tiny", "model"))


async def test_a_delete_whose_matches_changed_since_the_review_deletes_nothing(tmp_path, hub):
    """The card listed what the patterns matched then; a file pushed since (another checkpoint)
    would be deleted unseen: the delete refuses instead, and an unchanged one goes through."""
    hub.add_repo("ada/tiny", files={"README.md": CARD, "ckpt/a.bin": "1", "keep.txt": "k"})
    ctx = make_ctx(tmp_path, hub)
    ctx.tool_call_id = "del-1"
    tool = HfRepoFilesTool()
    params = tool.Params(operation="delete", repo_id="ada/tiny", patterns=["ckpt/*"])
    review = await tool.review(params, ctx)
    assert [f.path for f in review.files] == ["ckpt/a.bin"]
    hub.add_repo("ada/tiny", files={"README.md": CARD, "ckpt/a.bin": "1", "ckpt/b.bin": "2", "keep.txt": "k"})
    refused = await tool.run(params, ctx)
    assert not refused.success and "ckpt/b.bin" in refused.output and "Nothing was deleted" in refused.output
    assert "ckpt/a.bin" in hub.repo_files("ada/tiny", "model")
    ctx.tool_call_id = "del-2"
    await tool.review(params, ctx)
    done = await tool.run(params, ctx)
    assert done.success and sorted(hub.repo_files("ada/tiny", "model")) == ["README.md", "keep.txt"]
