"""hf_repo_git: branches, tags, refs, pull requests and repo settings of a Hub repo (§2.14).

``create_repo`` makes a model/dataset repo private unless told otherwise (the Hub's default is
public; an agent's half-finished work should not be), and gives it a README carrying the
provenance tag and line (agent/hub_provenance.py), shown on the approval card first.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from agent.hub_provenance import new_card, provenance_enabled
from agent.protocol import HubWriteFile, HubWriteReview
from agent.tools.base import ApprovalSettings, Tool, ToolContext, ToolParams, ToolResult
from agent.tools.hub_common import (
    NEEDS_TOKEN, HubCallError, RepoType, hub_api, hub_call, hub_endpoint, hub_token, repo_url, valid_repo_id,
    visibility_of,
)
from agent.tools.hub_plan import card_diff
from agent.tools.knowledge import budgeted

Operation = Literal["create_branch", "delete_branch", "create_tag", "delete_tag", "list_refs", "create_pr",
                    "list_prs", "get_pr", "merge_pr", "close_pr", "comment_pr", "change_pr_status", "create_repo",
                    "update_repo"]
GATED_OPS = {"delete_branch": "deletes a branch of", "delete_tag": "deletes a tag of",
             "merge_pr": "merges a pull request into", "create_repo": "creates",
             "update_repo": "changes the visibility or gating of"}
READ_OPS = {"list_refs", "list_prs", "get_pr"}
LIST_PRS_MAX = 50


class HfRepoGitParams(ToolParams):
    operation: Operation = Field(description="What to do")
    repo_id: str = Field(description="Repo id 'namespace/name'")
    repo_type: RepoType = Field("model", description="model, dataset or space")
    branch: str | None = Field(None, description="create_branch/delete_branch: the branch name")
    from_rev: str | None = Field(None, description="create_branch: where it starts (default: main)")
    tag: str | None = Field(None, description="create_tag/delete_tag: the tag name")
    revision: str | None = Field(None, description="create_tag: what to tag (default: main)")
    tag_message: str | None = Field(None, description="create_tag: an annotation")
    title: str | None = Field(None, description="create_pr: the title (3-200 characters)")
    description: str | None = Field(None, description="create_pr: the description")
    pr_num: int | None = Field(None, ge=1, description="get_pr, merge_pr, close_pr, comment_pr, change_pr_status")
    comment: str | None = Field(None, description="comment_pr: the comment; merge/close/status: an optional note")
    status: Literal["open", "closed", "all"] = Field("open", description="list_prs: which ones")
    new_status: Literal["open", "closed"] | None = Field(None, description="change_pr_status: the new status")
    private: bool | None = Field(None, description="create_repo: private (default true); update_repo: new "
                                                   "visibility")
    gated: Literal["auto", "manual", "false"] | None = Field(None, description="create_repo/update_repo: access "
                                                                                "requests ('false' ungates)")
    space_sdk: Literal["gradio", "streamlit", "docker", "static"] | None = Field(
        None, description="create_repo of a Space: its SDK (required)")


def _need(p: HfRepoGitParams, *names: str) -> str | None:
    missing = [n for n in names if getattr(p, n) in (None, "")]
    return f"ERROR: {p.operation} needs {', '.join('`' + n + '`' for n in missing)}." if missing else None


_REQUIRED = {"create_branch": ("branch",), "delete_branch": ("branch",), "create_tag": ("tag",),
             "delete_tag": ("tag",), "create_pr": ("title",), "get_pr": ("pr_num",), "merge_pr": ("pr_num",),
             "close_pr": ("pr_num",), "comment_pr": ("pr_num", "comment"), "change_pr_status": ("pr_num", "new_status")}


class HfRepoGitTool(Tool):
    name = "hf_repo_git"
    description = (
        "Git side of a Hugging Face Hub repo: create/delete branches and tags, list refs, pull requests "
        "(create, list, get, comment, merge, close, change status), create a repo (private by default; model and "
        "dataset repos get a README with an `mlintern` tag and provenance line) and change a repo's visibility "
        "or gating. To put files in a PR, use hf_repo_files upload with create_pr, or with revision "
        "'refs/pr/N'. Deleting branches/tags, merging, creating and updating repos need the user's approval."
    )
    Params = HfRepoGitParams

    def approval_reason(self, params: Any, settings: ApprovalSettings) -> str | None:
        verb = GATED_OPS.get(params.operation)
        return f"hf_repo_git {params.operation} {verb} the Hub repo {params.repo_id}" if verb else None

    async def run(self, params: HfRepoGitParams, ctx: ToolContext) -> ToolResult:
        p = params
        problem = valid_repo_id(p.repo_id) or _need(p, *_REQUIRED.get(p.operation, ()))
        if problem:
            return ToolResult(problem, success=False)
        if p.operation not in READ_OPS and not hub_token(ctx):
            return ToolResult(NEEDS_TOKEN, success=False)
        if p.operation == "create_repo" and p.repo_type == "space" and not p.space_sdk:
            return ToolResult("ERROR: create_repo of a Space needs `space_sdk` (gradio, streamlit, docker or "
                              "static).", success=False)
        if p.operation == "update_repo" and p.private is None and p.gated is None:
            return ToolResult("ERROR: update_repo needs `private` and/or `gated`.", success=False)
        try:
            return await getattr(self, "_" + p.operation)(p, hub_api(ctx), ctx)
        except HubCallError as exc:
            return ToolResult(f"ERROR: {p.operation} on {p.repo_id}: {exc.message}", success=False)

    # ------------------------------------------------------------------ refs

    async def _create_branch(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        await hub_call(ctx, api.create_branch, p.repo_id, branch=p.branch, revision=p.from_rev, repo_type=p.repo_type)
        return ToolResult(f"Created branch {p.branch} of {p.repo_id} from {p.from_rev or 'main'}.")

    async def _delete_branch(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        await hub_call(ctx, api.delete_branch, p.repo_id, branch=p.branch, repo_type=p.repo_type)
        return ToolResult(f"Deleted branch {p.branch} of {p.repo_id}.")

    async def _create_tag(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        await hub_call(ctx, api.create_tag, p.repo_id, tag=p.tag, tag_message=p.tag_message, revision=p.revision,
                       repo_type=p.repo_type)
        return ToolResult(f"Tagged {p.repo_id}@{p.revision or 'main'} as {p.tag}.")

    async def _delete_tag(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        await hub_call(ctx, api.delete_tag, p.repo_id, tag=p.tag, repo_type=p.repo_type)
        return ToolResult(f"Deleted tag {p.tag} of {p.repo_id}.")

    async def _list_refs(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        refs = await hub_call(ctx, api.list_repo_refs, p.repo_id, repo_type=p.repo_type, include_pull_requests=True)
        lines = [f"Refs of {p.repo_type} {p.repo_id}:"]
        for label, items in (("branches", refs.branches), ("tags", refs.tags), ("pull requests", refs.pull_requests)):
            lines.append(f"{label} ({len(items or [])}):")
            lines += [f"  {r.name}  {r.target_commit[:10]}" for r in items or []]
        return budgeted("\n".join(lines), ctx, "hf_repo_git-refs")

    # ------------------------------------------------------------------ pull requests

    async def _create_pr(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        d = await hub_call(ctx, api.create_pull_request, p.repo_id, p.title, description=p.description,
                           repo_type=p.repo_type)
        return ToolResult(f"Opened draft pull request #{d.num} on {p.repo_id}: {d.title}\n{d.url}\n"
                          f"Add files with hf_repo_files upload (revision 'refs/pr/{d.num}').")

    async def _list_prs(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        def first() -> list[Any]:
            found = []
            for d in api.get_repo_discussions(p.repo_id, repo_type=p.repo_type, discussion_type="pull_request",
                                              discussion_status=None if p.status == "all" else p.status):
                found.append(d)
                if len(found) >= LIST_PRS_MAX:
                    break
            return found

        found = await hub_call(ctx, first)
        lines = [f"Pull requests of {p.repo_id} ({p.status}): {len(found)}"
                 + (f" (first {LIST_PRS_MAX})" if len(found) >= LIST_PRS_MAX else "")]
        lines += [f"  #{d.num} [{d.status}] {d.title} by {d.author} ({d.created_at:%Y-%m-%d})" for d in found]
        return budgeted("\n".join(lines), ctx, "hf_repo_git-prs")

    async def _get_pr(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        d = await hub_call(ctx, api.get_discussion_details, p.repo_id, p.pr_num, repo_type=p.repo_type)
        kind = "Pull request" if d.is_pull_request else "Discussion"
        lines = [f"{kind} #{d.num} on {p.repo_id}: {d.title}", f"status: {d.status} · author: {d.author} · "
                 f"opened {d.created_at:%Y-%m-%d %H:%M} UTC" + (f" · into {d.target_branch}" if d.target_branch else "")]
        if d.conflicting_files:
            lines.append(f"conflicts: {', '.join(map(str, d.conflicting_files))}")
        changed = _diff_files(d.diff)
        if changed:
            lines.append(f"files changed ({len(changed)}): {', '.join(changed)}")
        lines.append("")
        for e in d.events:
            when = f"{e.created_at:%Y-%m-%d %H:%M}"
            if e.type == "comment":
                lines.append(f"[{when}] {e.author}: {getattr(e, 'content', '')}")
            elif e.type == "status-change":
                lines.append(f"[{when}] {e.author} set status {getattr(e, 'new_status', '')}")
            elif e.type == "commit":
                lines.append(f"[{when}] {e.author} committed {getattr(e, 'summary', '')}")
            else:
                lines.append(f"[{when}] {e.author}: {e.type}")
        return budgeted("\n".join(lines), ctx, "hf_repo_git-pr")

    async def _merge_pr(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        await hub_call(ctx, api.merge_pull_request, p.repo_id, p.pr_num, comment=p.comment, repo_type=p.repo_type)
        return ToolResult(f"Merged pull request #{p.pr_num} into {p.repo_id}.")

    async def _close_pr(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        await hub_call(ctx, api.change_discussion_status, p.repo_id, p.pr_num, "closed", comment=p.comment,
                       repo_type=p.repo_type)
        return ToolResult(f"Closed pull request #{p.pr_num} on {p.repo_id}.")

    async def _comment_pr(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        await hub_call(ctx, api.comment_discussion, p.repo_id, p.pr_num, p.comment, repo_type=p.repo_type)
        return ToolResult(f"Commented on #{p.pr_num} of {p.repo_id}.")

    async def _change_pr_status(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        await hub_call(ctx, api.change_discussion_status, p.repo_id, p.pr_num, p.new_status, comment=p.comment,
                       repo_type=p.repo_type)
        return ToolResult(f"Set #{p.pr_num} of {p.repo_id} to {p.new_status}.")

    # ------------------------------------------------------------------ repos

    async def _create_repo(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        private = True if p.private is None else p.private
        url = await hub_call(ctx, api.create_repo, p.repo_id, private=private, repo_type=p.repo_type,
                             space_sdk=p.space_sdk if p.repo_type == "space" else None)
        done = [f"Created {'private' if private else 'public'} {p.repo_type} repo {p.repo_id}: {url}"]
        if p.gated is not None:
            await hub_call(ctx, api.update_repo_settings, p.repo_id, gated=_gated(p.gated), repo_type=p.repo_type)
            done.append(f"Access requests: {p.gated}.")
        if p.repo_type != "space" and provenance_enabled():
            from huggingface_hub import CommitOperationAdd

            card = new_card(p.repo_id, p.repo_type).encode()
            try:
                await hub_call(ctx, api.create_commit, p.repo_id, [CommitOperationAdd("README.md", card)],
                               commit_message="Add model card (created with mlintern)", repo_type=p.repo_type)
                done.append("Added a README with the mlintern tag and a provenance line.")
            except HubCallError as exc:
                done.append(f"The repo exists, but its README could not be written: {exc.message}")
        return ToolResult("\n".join(done))

    async def _update_repo(self, p: HfRepoGitParams, api: Any, ctx: ToolContext) -> ToolResult:
        gated = _gated(p.gated) if p.gated is not None else None
        await hub_call(ctx, api.update_repo_settings, p.repo_id, private=p.private, gated=gated, repo_type=p.repo_type)
        changes = []
        if p.private is not None:
            changes.append("private" if p.private else "public")
        if p.gated is not None:
            changes.append("not gated" if p.gated == "false" else f"gated ({p.gated})")
        return ToolResult(f"Updated {p.repo_id}: now {', '.join(changes)}.")

    # ------------------------------------------------------------------ review

    async def review(self, params: HfRepoGitParams, ctx: ToolContext) -> HubWriteReview | None:
        p = params
        if p.operation not in GATED_OPS or valid_repo_id(p.repo_id):
            return None
        api = hub_api(ctx)
        review = HubWriteReview(repo_id=p.repo_id, repo_type=p.repo_type, operation=p.operation)
        if not hub_token(ctx):
            review.notes.append("No HF token is set: this call will fail until HF_TOKEN is set.")
        visibility, exists, note = await visibility_of(ctx, api, p.repo_id, p.repo_type)
        if p.operation == "create_repo":
            review.creates_repo = True
            review.visibility = "public" if p.private is False else "private"
            if exists:
                review.notes.append("A repo with this id already exists: the call will fail.")
            if p.repo_type == "space":
                review.notes.append(f"Space SDK: {p.space_sdk or 'missing (required)'}.")
            elif provenance_enabled():
                card = new_card(p.repo_id, p.repo_type)
                review.files = [HubWriteFile(path="README.md", change="add", size=len(card.encode()),
                                             source="generated model card")]
                review.total_bytes = len(card.encode())
                review.card_diff = card_diff(None, card)
            if p.gated is not None:
                review.notes.append(f"Access requests: {p.gated}.")
            return review
        review.visibility = visibility
        if note:
            review.notes.append(note)
        if p.operation == "update_repo":
            if p.private is not None:
                review.notes.append(f"Visibility: {visibility} → {'private' if p.private else 'public'}.")
            if p.gated is not None:
                review.notes.append(f"Access requests: → {'off' if p.gated == 'false' else p.gated}.")
        elif p.operation == "delete_branch":
            review.revision = p.branch
            review.notes.append(f"Deletes branch {p.branch}: commits only on it can no longer be reached.")
        elif p.operation == "delete_tag":
            review.revision = p.tag
            review.notes.append(f"Deletes tag {p.tag} (the commits stay).")
        elif p.operation == "merge_pr" and p.pr_num and exists:
            await self._review_merge(p, api, ctx, review)
        return review

    async def _review_merge(self, p: HfRepoGitParams, api: Any, ctx: ToolContext, review: HubWriteReview) -> None:
        try:
            d = await hub_call(ctx, api.get_discussion_details, p.repo_id, p.pr_num, repo_type=p.repo_type)
        except HubCallError as exc:
            review.notes.append(f"Pull request #{p.pr_num} could not be read: {exc.message}")
            return
        target = (d.target_branch or "refs/heads/main").removeprefix("refs/heads/")
        review.revision = target
        review.notes.append(f"#{d.num} “{d.title}” by {d.author} ({d.status}) into {target}.")
        if d.conflicting_files:
            review.notes.append(f"Conflicts: {', '.join(map(str, d.conflicting_files))}.")
        review.files = [HubWriteFile(path=path, change="update", source=f"PR #{d.num}") for path in _diff_files(d.diff)]


def _gated(value: str) -> str | bool:
    return False if value == "false" else value


def _diff_files(diff: str | None) -> list[str]:
    return sorted(set(re.findall(r"^diff --git a/(\S+) b/", diff or "", re.M)))


__all__ = ["HfRepoGitTool", "HfRepoGitParams", "hub_endpoint", "repo_url"]
