"""The GitHub tools: find example files in a repo, list an owner's repos, read a file.

``github_find_examples`` and ``github_list_repos`` live here; how find-examples ranks a repo's
files is in ``agent.tools.github_rank``. ``github_read_file`` lives in ``agent.tools.github_read``
and is re-exported here. What the three share (API calls, the token rule, failures as sentences,
repo names) is in ``agent.tools.github_common``.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field

from agent.net import Net, NetError
from agent.tools.base import Tool, ToolContext, ToolParams, ToolResult
from agent.tools.github_common import NAME, fmt_size, gh_error, gh_get, split_repo, suggest_repos
from agent.tools.github_rank import (KeywordScorer, TreeRanking, example_rank, keyword_score, rank_response,
                                     rank_tree)
from agent.tools.github_read import GithubReadFileTool, ReadFileParams, render_notebook
from agent.tools.knowledge import budgeted, net_of


# ---------------------------------------------------------------------------- github_find_examples


class FindExamplesParams(ToolParams):
    repo: str = Field(description="Repository: 'name' (in org), 'owner/name' or a github.com URL, e.g. 'trl'.")
    keyword: str | None = Field(None, description="What the example should be about, e.g. 'sft', 'dpo lora', "
                                                   "'grpo'. Omit to list the repo's example files.")
    org: str = Field("huggingface", description="Owner used when repo has no owner (default huggingface).")
    max_results: int = Field(20, ge=1, le=100, description="Most files to return (default 20).")
    min_score: int = Field(60, ge=0, le=100, description="Lowest fuzzy match score (0-100) for the keyword "
                                                         "(default 60).")


class GithubFindExamplesTool(Tool):
    name = "github_find_examples"
    description = (
        "Find example scripts and notebooks in a GitHub repository (default owner: huggingface): "
        "ranks the repo's file paths by fuzzy match to a keyword, preferring examples/, scripts/, "
        "notebooks/ and similar directories. Use it before writing training code to find the "
        "library's current, working example; then read it with github_read_file."
    )
    Params = FindExamplesParams

    async def run(self, params: FindExamplesParams, ctx: ToolContext) -> ToolResult:
        parsed = split_repo(params.repo, params.org.strip() or None)
        if parsed is None:
            return ToolResult(f"ERROR: {params.repo!r} is not a GitHub repository; give 'name' (with org) or "
                              "'owner/name'.", success=False)
        owner, name = parsed
        full = f"{owner}/{name}"
        net = net_of(ctx)
        try:
            info = await gh_get(net, f"/repos/{owner}/{name}", ok=(404,))
            if info.status == 404:
                similar = await suggest_repos(net, owner, name)
                hint = f" Similar repositories: {', '.join(similar)}." if similar else \
                    " Check the name (github_list_repos lists an owner's repositories)."
                return ToolResult(f"ERROR: repository {full} was not found on GitHub (or it is private).{hint}",
                                  success=False)
            repo = info.json()
            branch = repo.get("default_branch") or "main"
            tree = await gh_get(net, f"/repos/{owner}/{name}/git/trees/{quote(branch, safe='')}",
                                params={"recursive": 1}, max_bytes=40_000_000)
            keyword = (params.keyword or "").strip()
            # parsing a tree of up to 40 MB and fuzzy-matching tens of thousands of paths would
            # freeze the event loop (and the TUI, and esc) for seconds: it runs in a worker thread
            stop = threading.Event()
            try:
                ranking = await asyncio.to_thread(rank_response, tree, keyword, params.min_score, stop)
            except asyncio.CancelledError:
                stop.set()  # the thread stops at its next check instead of ranking for nobody
                raise
        except NetError as exc:
            return gh_error(exc, net, f"github_find_examples {full}")
        web = (repo.get("html_url") or f"https://github.com/{full}").rstrip("/")
        scored = ranking.scored
        lines = []
        about = f" matching {keyword!r}" if keyword else ""
        if ranking.truncated:
            lines.append("(GitHub cut this repository's file list short: it is very large, so some files are "
                         "missing below.)")
        if ranking.skipped:
            lines.append(f"(This repository has too many files to match them all: {ranking.skipped:,} whose path "
                         "has not even the first three letters of a keyword word were left out.)")
        if not scored:
            where = ", ".join(f"{d}/ ({n} files)" for d, n in sorted(ranking.example_dirs.items())[:10]) or "none"
            lines.append(f"No file in {full} (branch {branch}, {ranking.files:,} files){about} with score >= "
                         f"{params.min_score}. Example directories: {where}. Try another keyword, a lower "
                         "min_score, or no keyword to list the example files.")
            return ToolResult("\n".join(lines))
        shown = scored[: params.max_results]
        lines.append(f"{len(scored)} file(s) in {full} (branch {branch}){about}, best first"
                     f"{f'; showing {len(shown)}' if len(shown) < len(scored) else ''}:")
        for score, path, size in shown:
            tag = f"score {score}, " if keyword else ""
            lines.append(f"- {path} ({tag}{fmt_size(size)}) {web}/blob/{quote(branch)}/{quote(path)}")
        lines.append("")
        lines.append(f'Read one with github_read_file(repo="{full}", path="...").')
        return budgeted("\n".join(lines), ctx, "github_find_examples")


# ---------------------------------------------------------------------------- github_list_repos


class ListReposParams(ToolParams):
    owner: str = Field(description="GitHub organisation or user, e.g. 'huggingface'.")
    owner_type: Literal["org", "user"] = Field("org", description="Whether owner is an org or a user (default org; "
                                                                   "the other is tried if it is not found).")
    sort: Literal["stars", "forks", "updated", "created"] = Field("stars", description="Order by (default stars).")
    order: Literal["desc", "asc"] = Field("desc", description="desc (default) or asc.")
    limit: int = Field(30, ge=1, le=300, description="Most repositories to return (default 30).")


def _next_link(link: str | None) -> str | None:
    for part in (link or "").split(","):
        m = re.search(r'<([^>]+)>\s*;\s*rel="next"', part)
        if m:
            return m.group(1)
    return None


class GithubListReposTool(Tool):
    name = "github_list_repos"
    description = (
        "List a GitHub organisation's or user's repositories with stars, forks, language, last "
        "update and description, sorted by stars, forks, updated or created."
    )
    Params = ListReposParams

    async def run(self, params: ListReposParams, ctx: ToolContext) -> ToolResult:
        owner = params.owner.strip().strip("/").removeprefix("https://github.com/").split("/")[0]
        if not NAME.match(owner):
            return ToolResult(f"ERROR: {params.owner!r} is not a GitHub user or organisation name.", success=False)
        net = net_of(ctx)
        what = f"github_list_repos {owner}"
        note = ""
        try:
            if params.sort in ("stars", "forks"):
                # listings cannot sort by stars: the search API can (``user:`` covers orgs too)
                repos, total = await self._search(net, owner, params)
                if repos is None:
                    return ToolResult(f"ERROR: GitHub has no user or organisation named {owner!r}.", success=False)
            else:
                kinds = [params.owner_type, "user" if params.owner_type == "org" else "org"]
                repos = None
                for kind in kinds:
                    repos = await self._listing(net, owner, kind, params)
                    if repos is not None:
                        if kind != params.owner_type:
                            kinds_named = {"org": "an organisation", "user": "a user"}
                            note = f" ({owner} is {kinds_named[kind]}, not {kinds_named[params.owner_type]})"
                        break
                if repos is None:
                    return ToolResult(f"ERROR: GitHub has no user or organisation named {owner!r}.", success=False)
                total = None
        except NetError as exc:
            return gh_error(exc, net, what)
        repos = repos[: params.limit]
        if not repos:
            return ToolResult(f"{owner} has no public repositories.")
        of = f" of {total:,}" if isinstance(total, int) and total > len(repos) else ""
        lines = [f"{len(repos)}{of} repositories of {owner}{note}, by {params.sort} ({params.order}):", "",
                 "| repo | stars | forks | language | updated | description |", "|---|---|---|---|---|---|"]
        for r in repos:
            flags = "".join(f" ({f})" for f, on in (("fork", r.get("fork")), ("archived", r.get("archived"))) if on)
            desc = (r.get("description") or "").replace("|", "/").replace("\n", " ")
            desc = desc if len(desc) <= 100 else desc[:100].rstrip() + "…"
            lines.append(f"| {r.get('full_name')}{flags} | {r.get('stargazers_count', 0):,} | "
                         f"{r.get('forks_count', 0):,} | {r.get('language') or ''} | "
                         f"{(r.get('pushed_at') or r.get('updated_at') or '')[:10]} | {desc} |")
        return budgeted("\n".join(lines), ctx, "github_list_repos")

    async def _search(self, net: Net, owner: str, params: ListReposParams) -> tuple[list[dict] | None, int | None]:
        repos: list[dict[str, Any]] = []
        total = None
        page = 1
        while len(repos) < params.limit and page <= 10:  # the search API stops at 1,000 results
            r = await gh_get(net, "/search/repositories", ok=(422,), params={
                "q": f"user:{owner} fork:true", "sort": params.sort, "order": params.order,
                "per_page": min(100, params.limit), "page": page})
            if r.status == 422:
                return None, None
            data = r.json()
            total = data.get("total_count")
            items = data.get("items") or []
            repos += items
            if len(items) < min(100, params.limit):
                break
            page += 1
        return repos, total

    async def _listing(self, net: Net, owner: str, kind: str, params: ListReposParams) -> list[dict] | None:
        path = f"/orgs/{owner}/repos" if kind == "org" else f"/users/{owner}/repos"
        url: str | None = path
        query: dict[str, Any] | None = {"sort": params.sort, "direction": params.order, "per_page": 100,
                                        **({"type": "all"} if kind == "org" else {})}
        repos: list[dict[str, Any]] = []
        while url and len(repos) < params.limit:
            r = await gh_get(net, url, params=query, ok=(404,))
            if r.status == 404:
                return None
            repos += r.json()
            url, query = _next_link(r.headers.get("link")), None
        return repos


__all__ = [
    "FindExamplesParams", "GithubFindExamplesTool", "GithubListReposTool", "GithubReadFileTool", "KeywordScorer",
    "ListReposParams", "ReadFileParams", "TreeRanking", "example_rank", "keyword_score", "rank_tree", "render_notebook",
    "split_repo",
]
