"""hf_repo_files: list, read, upload and delete files of a Hub repo (reference §2.13).

Better than the reference: local files and whole folders can be uploaded (large files take
the client's own LFS/Xet path), every upload or delete is exactly one commit, the approval
card shows what the commit will carry (``review``: files, add/update, sizes, visibility and
the README diff) and an approved upload sends only that (files changed on disk since the
review make it upload nothing), links leading out of an uploaded folder are skipped, reads
refuse binaries and oversized files before downloading them, and answers stay within a
budget. ``hf_repo_git`` lives in ``agent/tools/hub_git.py``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, Literal

from pydantic import Field

from agent.protocol import HubWriteFile, HubWriteReview
from agent.tools.base import ApprovalSettings, Tool, ToolContext, ToolParams, ToolResult
from agent.tools.hub_common import (
    NEEDS_TOKEN, HubCallError, NotText, RepoType, download_text, hub_api, hub_call, hub_endpoint, hub_token,
    human_size, repo_url, valid_repo_id, visibility_of,
)
from agent.tools.hub_plan import (
    REVIEW_MAX_FILES, PlanError, UploadPlan, card_diff, changed_since_review, commit_operations, fingerprint,
    match_deletions, plan_upload, repo_path,
)
from agent.tools.knowledge import budgeted

LIST_MAX_ENTRIES = 5_000
#: uploads whose reviewed files are remembered (by tool call id) until they run
REVIEWED_MAX = 64


class HfRepoFilesParams(ToolParams):
    operation: Literal["list", "read", "upload", "delete"] = Field(
        description="list files, read a text file, upload (one commit), or delete files (one commit)")
    repo_id: str = Field(description="Repo id 'namespace/name'")
    repo_type: RepoType = Field("model", description="model, dataset or space")
    revision: str = Field("main", description="Branch, tag or commit to read; the branch to commit to "
                                              "(with create_pr: the PR's base)")
    path: str | None = Field(None, description="list: folder (default: root); read: the file; upload: repo path "
                                               "for `content`; delete: a file, or a folder and everything in it")
    recursive: bool = Field(False, description="list: include everything under sub-folders")
    content: str | None = Field(None, description="upload: text to write at `path`")
    local_path: str | None = Field(None, description="upload: a local file or folder (relative to the working "
                                                     "directory) to upload instead of `content`")
    path_in_repo: str | None = Field(None, description="upload of local_path: the file's repo path (default: its "
                                                       "name) or the folder's destination (default: repo root)")
    patterns: list[str] | None = Field(None, description="delete: globs of repo files to delete (e.g. "
                                                         "['*.bin', 'logs/*']); folder upload: only files matching")
    create_pr: bool = Field(False, description="upload/delete: open a pull request instead of committing to "
                                               "`revision`")
    commit_message: str | None = Field(None, description="upload/delete: the commit title")
    max_chars: int = Field(12_000, ge=500, le=100_000, description="read: characters returned (the rest is saved "
                                                                   "to a file whose path is given)")


class HfRepoFilesTool(Tool):
    name = "hf_repo_files"
    description = (
        "Files of a Hugging Face Hub repo (model, dataset or Space). list: files with sizes. read: a text file "
        "(binaries are refused with their size). upload: text `content` to `path`, or a local file/folder "
        "(`local_path`), as one commit (or a PR with create_pr). delete: a file, folder or glob `patterns`, as "
        "one commit. Uploads and deletes need the user's approval; the user sees the files, sizes and README "
        "diff first. Model/dataset READMEs get an `mlintern` tag and a provenance line."
    )
    Params = HfRepoFilesParams

    def __init__(self) -> None:
        #: (tool call id, its arguments) -> ``fingerprint`` of the upload plan its approval card
        #: showed; arguments the user edited on the card are another key (they saw no review of it)
        self._reviewed: OrderedDict[tuple[str, str], dict[str, tuple[Any, ...]]] = OrderedDict()

    @staticmethod
    def _review_key(ctx: ToolContext, params: Any) -> tuple[str, str]:
        return ctx.tool_call_id, params.model_dump_json()

    def _remember(self, ctx: ToolContext, plan: UploadPlan | None, params: Any) -> None:
        if not ctx.tool_call_id:
            return
        key = self._review_key(ctx, params)
        self._reviewed[key] = fingerprint(plan)
        self._reviewed.move_to_end(key)
        while len(self._reviewed) > REVIEWED_MAX:
            self._reviewed.popitem(last=False)

    def _remember_paths(self, ctx: ToolContext, params: Any, paths: list[str]) -> None:
        if ctx.tool_call_id:
            key = self._review_key(ctx, params)
            self._reviewed[key] = {path: ("delete",) for path in paths}
            self._reviewed.move_to_end(key)
            while len(self._reviewed) > REVIEWED_MAX:
                self._reviewed.popitem(last=False)

    def approval_reason(self, params: Any, settings: ApprovalSettings) -> str | None:
        if params.operation == "upload":
            return f"hf_repo_files upload uploads files to the Hub repo {params.repo_id}"
        if params.operation == "delete":
            return f"hf_repo_files delete deletes files from the Hub repo {params.repo_id}"
        return None

    async def run(self, params: HfRepoFilesParams, ctx: ToolContext) -> ToolResult:
        bad = valid_repo_id(params.repo_id)
        if bad:
            return ToolResult(bad, success=False)
        if params.operation in ("upload", "delete") and not hub_token(ctx):
            return ToolResult(NEEDS_TOKEN, success=False)
        try:
            op = {"list": self._list, "read": self._read, "upload": self._upload, "delete": self._delete}
            return await op[params.operation](params, ctx)
        except HubCallError as exc:
            return ToolResult(f"ERROR: {params.operation} on {params.repo_id}: {exc.message}", success=False)
        except PlanError as exc:
            return ToolResult(f"ERROR: {exc}", success=False)

    # ------------------------------------------------------------------ reading

    async def _list(self, p: HfRepoFilesParams, ctx: ToolContext) -> ToolResult:
        api = hub_api(ctx)
        folder = p.path.strip("/") if p.path and p.path.strip("/") else None

        def entries() -> tuple[list[Any], bool]:
            found = []
            for entry in api.list_repo_tree(p.repo_id, folder, recursive=p.recursive, revision=p.revision,
                                            repo_type=p.repo_type):
                found.append(entry)
                if len(found) >= LIST_MAX_ENTRIES:
                    return found, True
            return found, False

        found, capped = await hub_call(ctx, entries)
        from huggingface_hub.hf_api import RepoFile

        files = [e for e in found if isinstance(e, RepoFile)]
        total = sum(e.size or 0 for e in files)
        where = f"{p.repo_type} {p.repo_id}@{p.revision}" + (f" /{folder}" if folder else "")
        lines = [f"{where}: {len(files)} files ({human_size(total)}), {len(found) - len(files)} folders"
                 + (" (recursive)" if p.recursive else "")]
        for e in found:
            if isinstance(e, RepoFile):
                lfs = " LFS" if getattr(e, "lfs", None) else ""
                lines.append(f"{human_size(e.size):>10}  {e.path}{lfs}")
            else:
                lines.append(f"{'folder':>10}  {e.path}/")
        if capped:
            lines.append(f"(stopped after {LIST_MAX_ENTRIES} entries: list a sub-folder to see more)")
        if not found:
            lines.append("(empty)")
        return budgeted("\n".join(lines), ctx, "hf_repo_files-list")

    async def _read(self, p: HfRepoFilesParams, ctx: ToolContext) -> ToolResult:
        if not p.path:
            return ToolResult("ERROR: read needs `path` (list the repo to see its files).", success=False)
        api = hub_api(ctx)
        try:
            text = await hub_call(ctx, download_text, api, p.repo_id, p.repo_type, p.revision, repo_path(p.path))
        except HubCallError as exc:
            if isinstance(exc.exc, NotText):
                return ToolResult(f"ERROR: {exc.exc}", success=False)
            raise
        if text is None:
            return ToolResult(f"ERROR: {p.path} does not exist in {p.repo_id}@{p.revision}; list the repo to see "
                              "its files.", success=False)
        header = f"{p.repo_id}@{p.revision}:{p.path} ({human_size(len(text.encode()))})\n"
        return budgeted(header + text, ctx, "hf_repo_files-read", max_chars=p.max_chars)

    # ------------------------------------------------------------------ writing

    async def _upload(self, p: HfRepoFilesParams, ctx: ToolContext) -> ToolResult:
        reviewed = self._reviewed.get(self._review_key(ctx, p)) if ctx.tool_call_id else None
        plan: UploadPlan = await asyncio.to_thread(plan_upload, p, ctx.cwd)
        if reviewed is not None:
            # the user approved the files the card listed: anything else is not sent
            changed = changed_since_review(reviewed, fingerprint(plan))
            if changed:
                return ToolResult(changed, success=False)
        for note in plan.skipped_notes():
            ctx.log(note)
        api = hub_api(ctx)
        ctx.log(f"preparing {len(plan.files)} file(s), {human_size(plan.total_bytes)}")
        operations = await asyncio.to_thread(commit_operations, plan)
        # Large files go first through the client's own LFS/Xet upload. Until the commit below
        # is sent nothing is visible in the repo, so an interrupt here leaves no half commit.
        ctx.log("uploading file contents")
        await hub_call(ctx, api.preupload_lfs_files, p.repo_id, additions=operations, repo_type=p.repo_type,
                       revision=p.revision, create_pr=p.create_pr)
        message = p.commit_message or _default_message("Upload", [f.path for f in plan.files])
        ctx.log("committing (one commit: all files or none)")
        info = await hub_call(ctx, api.create_commit, p.repo_id, operations, commit_message=message,
                              repo_type=p.repo_type, revision=p.revision, create_pr=p.create_pr)
        done = _committed(p, info, f"uploaded {len(plan.files)} file(s) ({human_size(plan.total_bytes)})",
                          [f.path for f in plan.files])
        return ToolResult("\n".join([done, *plan.skipped_notes()]))

    async def _delete(self, p: HfRepoFilesParams, ctx: ToolContext) -> ToolResult:
        if not p.path and not p.patterns:
            return ToolResult("ERROR: delete needs `path` (a file or folder) or `patterns` (globs).", success=False)
        api = hub_api(ctx)
        remote = await hub_call(ctx, api.list_repo_files, p.repo_id, revision=p.revision, repo_type=p.repo_type)
        doomed = match_deletions(remote, p.path, p.patterns)
        reviewed = self._reviewed.get(self._review_key(ctx, p)) if ctx.tool_call_id else None
        if reviewed is not None and set(reviewed) != set(doomed):
            # the repo changed since the card: its patterns now match other files than the user saw
            added = sorted(set(doomed) - set(reviewed))
            gone = sorted(set(reviewed) - set(doomed))
            parts = ([f"now also {', '.join(added[:10])}"] if added else []) + \
                    ([f"no longer {', '.join(gone[:10])}"] if gone else [])
            return ToolResult("ERROR: the repo changed since the user approved this delete: it would delete "
                              f"{'; '.join(parts)}. Nothing was deleted; ask again so the user sees the current "
                              "files.", success=False)
        if not doomed:
            what = p.path or ", ".join(p.patterns or [])
            return ToolResult(f"ERROR: nothing in {p.repo_id}@{p.revision} matches {what}; nothing was deleted.",
                              success=False)
        from huggingface_hub import CommitOperationDelete

        operations = [CommitOperationDelete(path_in_repo=path) for path in doomed]
        message = p.commit_message or _default_message("Delete", doomed)
        ctx.log(f"deleting {len(doomed)} file(s) in one commit")
        info = await hub_call(ctx, api.create_commit, p.repo_id, operations, commit_message=message,
                              repo_type=p.repo_type, revision=p.revision, create_pr=p.create_pr)
        return ToolResult(_committed(p, info, f"deleted {len(doomed)} file(s)", doomed))

    # ------------------------------------------------------------------ review

    async def review(self, params: HfRepoFilesParams, ctx: ToolContext) -> HubWriteReview | None:
        p = params
        if p.operation not in ("upload", "delete") or valid_repo_id(p.repo_id):
            return None
        review = HubWriteReview(repo_id=p.repo_id, repo_type=p.repo_type, operation=p.operation,
                                revision=None if p.create_pr else p.revision, create_pr=p.create_pr)
        if not hub_token(ctx):
            review.notes.append("No HF token is set: this call will fail until HF_TOKEN is set.")
        api = hub_api(ctx)
        review.visibility, exists, note = await visibility_of(ctx, api, p.repo_id, p.repo_type)
        if note:
            review.notes.append(note)
        remote: set[str] = set()
        if exists:
            try:
                remote = set(await hub_call(ctx, api.list_repo_files, p.repo_id, revision=p.revision,
                                            repo_type=p.repo_type))
            except HubCallError as exc:
                review.notes.append(f"The repo's files could not be listed, so adds and updates are guesses: "
                                    f"{exc.message}")
        plan: UploadPlan | None = None
        if p.operation == "upload":
            try:
                plan = await asyncio.to_thread(plan_upload, p, ctx.cwd)
            except PlanError as exc:
                review.notes.append(f"This upload cannot run: {exc}")
                self._remember(ctx, None, params)  # files that appear before the run were not seen
                return review
            review.notes.extend(plan.skipped_notes())
            files = [HubWriteFile(path=f.path, change="update" if f.path in remote else "add", size=f.size,
                                  source=f.source) for f in plan.files]
            new_readme = plan.readme
        else:
            try:
                doomed = match_deletions(sorted(remote), p.path, p.patterns)
            except PlanError as exc:
                review.notes.append(f"This delete cannot run: {exc}")
                return review
            files = [HubWriteFile(path=path, change="delete", source="repo") for path in doomed]
            if exists and not doomed:
                review.notes.append("Nothing in the repo matches: the call will fail and delete nothing.")
            new_readme = None
            if exists:  # the files the card lists are the ones a yes may delete
                self._remember_paths(ctx, params, doomed)
        review.total_bytes = sum(f.size or 0 for f in files)
        if len(files) > REVIEW_MAX_FILES:
            rest = files[REVIEW_MAX_FILES:]
            review.notes.append(f"…and {len(rest)} more files ({human_size(sum(f.size or 0 for f in rest))}) "
                                "not listed here.")
            files = files[:REVIEW_MAX_FILES]
        review.files = files
        touches_readme = (p.operation == "upload" and new_readme is not None) or \
                         (p.operation == "delete" and "README.md" in {f.path for f in review.files})
        if touches_readme:
            current = None
            if "README.md" in remote:
                try:
                    current = await hub_call(ctx, download_text, api, p.repo_id, p.repo_type, p.revision, "README.md")
                except HubCallError as exc:
                    review.notes.append(f"The current README could not be read: {exc.message}")
            review.card_diff = card_diff(current, new_readme)
        if p.operation == "upload":
            # remembered only once the card has all it shows (a review that times out shows none)
            self._remember(ctx, plan, params)
        return review


def _default_message(verb: str, paths: list[str]) -> str:
    if len(paths) == 1:
        return f"{verb} {paths[0]} with mlintern"
    return f"{verb} {len(paths)} files with mlintern"


def _committed(p: HfRepoFilesParams, info: Any, what: str, paths: list[str]) -> str:
    shown = ", ".join(paths[:20]) + (f" and {len(paths) - 20} more" if len(paths) > 20 else "")
    if p.create_pr and getattr(info, "pr_url", None):
        return f"Opened pull request #{info.pr_num} on {p.repo_id}: {what}: {shown}.\n{info.pr_url}"
    oid = getattr(info, "oid", "") or ""
    return (f"Committed to {p.repo_id}@{p.revision} ({oid[:10]}): {what}: {shown}.\n"
            f"{getattr(info, 'commit_url', '')}")


# the git tool lives in its own module (this one would pass 400 lines); re-exported here
from agent.tools.hub_git import HfRepoGitTool  # noqa: E402

__all__ = ["HfRepoFilesTool", "HfRepoFilesParams", "HfRepoGitTool", "hub_endpoint", "repo_url"]
