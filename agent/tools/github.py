"""The GitHub tools: find example files in a repo, list an owner's repos, read a file.

All three use the GitHub REST API through the session's ``Net`` with ``auth="github"``:
``GITHUB_TOKEN`` (or ``GH_TOKEN``) is attached to the GitHub API origin and nowhere else.
The token is optional; without one GitHub allows 60 requests an hour, which is said only
when a rate-limit answer actually comes. Answers are cached for a few minutes, so reading
the same tree or file twice costs one request.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import re
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import Field

from agent.net import Net, NetError, Response
from agent.tools.base import Tool, ToolContext, ToolParams, ToolResult
from agent.tools.knowledge import budgeted, failed, net_of

CACHE_TTL_S = 300.0
API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

EXAMPLE_DIRS = frozenset({
    "examples", "example", "scripts", "notebooks", "notebook", "tutorials", "tutorial", "cookbook", "cookbooks",
    "recipes", "recipe", "demos", "demo", "samples", "sample", "quickstart", "getting_started", "guides",
    "use_cases", "usecases", "training_scripts",
})
TEST_DIRS = frozenset({"tests", "test", "testing", "benchmarks"})
CODE_SUFFIXES = frozenset({
    ".py", ".ipynb", ".sh", ".md", ".mdx", ".yaml", ".yml", ".toml", ".json", ".cfg", ".js", ".ts", ".rs", ".go",
    ".cpp", ".cc", ".c", ".h", ".cu", ".jl", ".r", ".swift", ".kt", ".java", ".txt",
})


# ---------------------------------------------------------------------------- shared


def split_repo(text: str, default_owner: str | None = None) -> tuple[str, str] | None:
    """(owner, repo) from 'owner/repo', a github.com URL, or a bare name with ``default_owner``."""
    value = text.strip()
    if "://" in value:
        value = urlsplit(value).path
    value = value.strip("/").removesuffix(".git")
    parts = [p for p in value.split("/") if p]
    if len(parts) >= 2 and "://" in text:
        parts = parts[:2]
    if len(parts) == 1 and default_owner:
        parts = [default_owner, parts[0]]
    if len(parts) != 2 or not all(_NAME.match(p) for p in parts):
        return None
    return parts[0], parts[1]


async def gh_get(net: Net, path: str, *, params: dict[str, Any] | None = None, ok: tuple[int, ...] = (),
                 accept: str | None = None, max_bytes: int = 8_000_000, cache: bool = True) -> Response:
    url = path if path.startswith(("http://", "https://")) else f"{net.endpoints.github_api.rstrip('/')}{path}"
    headers = dict(API_HEADERS)
    if accept:
        headers["Accept"] = accept
    return await net.get(url, params=params, auth="github", headers=headers, ok=ok, max_bytes=max_bytes,
                         cache_ttl=CACHE_TTL_S if cache else None)


def gh_error(exc: NetError, net: Net, what: str) -> ToolResult:
    """A GitHub failure as one sentence; the token advice only where it is true."""
    has_token = bool(net.token_for(net.endpoints.github_api, "github"))
    if exc.kind == "rate_limited":
        wait = exc.retry_after
        when = f" It resets in about {max(1, round(wait / 60))} min." if wait else ""
        if has_token:
            text = f"GitHub's API rate limit for this token is used up ({exc.status}).{when}"
        else:
            text = (f"GitHub's API rate limit is used up ({exc.status}): without a token it allows only 60 requests "
                    f"an hour.{when} Set GITHUB_TOKEN (any token, no scopes needed) for 5,000 an hour.")
        return ToolResult(f"ERROR: {what}: {text}", success=False)
    if exc.kind == "auth" or exc.status == 401:
        text = ("GitHub refused the token in GITHUB_TOKEN (401 Bad credentials): fix or unset it." if has_token else
                "GitHub wants a token for this (401): set GITHUB_TOKEN.")
        return ToolResult(f"ERROR: {what}: {text}", success=False)
    return failed(exc, what)


def _fmt_size(n: Any) -> str:
    if not isinstance(n, int):
        return ""
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n} B"


async def _suggest_repos(net: Net, owner: str, name: str) -> list[str]:
    """Repos whose names look like ``name``: the search API's hits (the owner's, then
    anyone's), and near-misses among the owner's repos, which catch typos search does not."""
    found: list[str] = []
    for query in (f"{name} in:name user:{owner}", f"{name} in:name"):
        try:
            r = await gh_get(net, "/search/repositories", params={"q": query, "sort": "stars", "per_page": 10},
                             ok=(422,))
        except NetError:
            break
        found += [i.get("full_name") for i in (r.json().get("items") or [] if r.status == 200 else [])]
        if len(found) >= 3:
            break
    try:
        r = await gh_get(net, f"/users/{owner}/repos", params={"per_page": 100, "sort": "pushed"}, ok=(404,))
        own = [i.get("full_name") for i in r.json()] if r.status == 200 else []
    except NetError:
        own = []

    def closeness(full: str) -> float:
        return difflib.SequenceMatcher(None, name.lower(), full.split("/")[-1].lower()).ratio()

    found += [full for full in own if isinstance(full, str) and closeness(full) >= 0.6]
    names = list(dict.fromkeys(f for f in found if isinstance(f, str)))
    return sorted(names, key=closeness, reverse=True)[:5]


# ---------------------------------------------------------------------------- github_find_examples


class FindExamplesParams(ToolParams):
    repo: str = Field(description="Repository: 'name' (in org), 'owner/name' or a github.com URL, e.g. 'trl'.")
    keyword: str | None = Field(None, description="What the example should be about, e.g. 'sft', 'dpo lora', "
                                                   "'grpo'. Omit to list the repo's example files.")
    org: str = Field("huggingface", description="Owner used when repo has no owner (default huggingface).")
    max_results: int = Field(20, ge=1, le=100, description="Most files to return (default 20).")
    min_score: int = Field(60, ge=0, le=100, description="Lowest fuzzy match score (0-100) for the keyword "
                                                         "(default 60).")


def _pieces(path: str) -> list[str]:
    """The words of a path: each directory, the file's stem, and their '_'/'-'/'.' parts."""
    low = path.lower()
    parts = low.split("/")
    stem = parts[-1].rsplit(".", 1)[0] if "." in parts[-1] else parts[-1]
    whole = parts[:-1] + [stem]
    words = [w for p in whole for w in re.split(r"[_\-.\s]+", p) if w]
    return list(dict.fromkeys(whole + words))


def keyword_score(keyword: str, path: str) -> int:
    """0-100: how well every word of the keyword matches some word of the path."""
    tokens = [t for t in re.split(r"[\s_\-/.,]+", keyword.lower()) if t]
    if not tokens:
        return 0
    pieces = _pieces(path)
    total = 0.0
    for token in tokens:
        best = 0.0
        for piece in pieces:
            if token == piece:
                best = 100.0
                break
            if len(token) >= 3 and token in piece:
                best = max(best, 90.0)
            else:
                best = max(best, difflib.SequenceMatcher(None, token, piece).ratio() * 100)
        total += best
    score = total / len(tokens)
    joined = re.sub(r"[\s_\-]+", "_", keyword.lower().strip())
    stem = path.lower().rsplit("/", 1)[-1].rsplit(".", 1)[0]
    whole = difflib.SequenceMatcher(None, joined, re.sub(r"[\s_\-]+", "_", stem)).ratio() * 100
    return round(max(score, whole))


def example_rank(path: str) -> int:
    """2 under a top-level examples/, 1 under another example-ish directory, 0 otherwise."""
    dirs = path.lower().split("/")[:-1]
    if dirs and dirs[0] in ("examples", "example"):
        return 2
    return 1 if any(d in EXAMPLE_DIRS for d in dirs) else 0


def _is_code(path: str, size: Any) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    return suffix in CODE_SUFFIXES and (not isinstance(size, int) or size <= 2_000_000)


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
                similar = await _suggest_repos(net, owner, name)
                hint = f" Similar repositories: {', '.join(similar)}." if similar else \
                    " Check the name (github_list_repos lists an owner's repositories)."
                return ToolResult(f"ERROR: repository {full} was not found on GitHub (or it is private).{hint}",
                                  success=False)
            repo = info.json()
            branch = repo.get("default_branch") or "main"
            tree = (await gh_get(net, f"/repos/{owner}/{name}/git/trees/{quote(branch, safe='')}",
                                 params={"recursive": 1}, max_bytes=40_000_000)).json()
        except NetError as exc:
            return gh_error(exc, net, f"github_find_examples {full}")
        blobs = [(e["path"], e.get("size")) for e in tree.get("tree") or []
                 if e.get("type") == "blob" and isinstance(e.get("path"), str)]
        web = (repo.get("html_url") or f"https://github.com/{full}").rstrip("/")
        keyword = (params.keyword or "").strip()
        scored: list[tuple[int, int, str, Any]] = []
        joined = re.sub(r"[\s_\-]+", "_", keyword.lower())

        def stem_closeness(path: str) -> float:  # ties go to the file named most like the keyword
            stem = path.lower().rsplit("/", 1)[-1].rsplit(".", 1)[0]
            return difflib.SequenceMatcher(None, joined, stem).ratio()

        for path, size in blobs:
            if not _is_code(path, size):
                continue
            rank = example_rank(path)
            if keyword:
                score = keyword_score(keyword, path)
                if score < params.min_score:
                    continue
            elif rank == 0:
                continue
            else:
                score = 0
            is_test = any(d in TEST_DIRS for d in path.lower().split("/")[:-1])
            scored.append((score + 8 * rank - (15 if is_test else 0), score, path, size))
        scored.sort(key=lambda s: (-s[0], -stem_closeness(s[2]), s[2].count("/"), s[2]))
        lines = []
        about = f" matching {keyword!r}" if keyword else ""
        if tree.get("truncated"):
            lines.append("(GitHub cut this repository's file list short: it is very large, so some files are "
                         "missing below.)")
        if not scored:
            dirs: dict[str, int] = {}
            for path, _ in blobs:
                top = [d for d in path.split("/")[:-1] if d.lower() in EXAMPLE_DIRS]
                if top:
                    key = path[: path.lower().index(top[0].lower()) + len(top[0])]
                    dirs[key] = dirs.get(key, 0) + 1
            where = ", ".join(f"{d}/ ({n} files)" for d, n in sorted(dirs.items())[:10]) or "none"
            lines.append(f"No file in {full} (branch {branch}, {len(blobs):,} files){about} with score >= "
                         f"{params.min_score}. Example directories: {where}. Try another keyword, a lower "
                         "min_score, or no keyword to list the example files.")
            return ToolResult("\n".join(lines))
        shown = scored[: params.max_results]
        lines.append(f"{len(scored)} file(s) in {full} (branch {branch}){about}, best first"
                     f"{f'; showing {len(shown)}' if len(shown) < len(scored) else ''}:")
        for _, score, path, size in shown:
            tag = f"score {score}, " if keyword else ""
            lines.append(f"- {path} ({tag}{_fmt_size(size)}) {web}/blob/{quote(branch)}/{quote(path)}")
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
        if not _NAME.match(owner):
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


# ---------------------------------------------------------------------------- github_read_file


class ReadFileParams(ToolParams):
    repo: str = Field(description="Repository as 'owner/name', e.g. 'huggingface/trl'.")
    path: str = Field(description="File (or directory) path in the repository, e.g. 'examples/scripts/sft.py'.")
    ref: str | None = Field(None, description="Branch, tag or commit; default: the default branch.")
    line_start: int | None = Field(None, ge=1, description="First line to show (1-based); default 1.")
    line_end: int | None = Field(None, ge=1, description="Last line to show; default line_start + 299.")


DEFAULT_LINES = 300
LINE_CHARS = 500


def render_notebook(raw: bytes) -> str:
    """A Jupyter notebook as Markdown: markdown cells as they are, code cells fenced in the
    kernel's language, outputs left out."""
    nb = json.loads(raw)
    meta = nb.get("metadata") or {}
    lang = ((meta.get("kernelspec") or {}).get("language") or (meta.get("language_info") or {}).get("name")
            or "python")
    cells = nb.get("cells")
    if cells is None:  # nbformat 3
        cells = [c for ws in nb.get("worksheets") or [] for c in ws.get("cells") or []]
    out: list[str] = []
    for cell in cells:
        source = cell.get("source", cell.get("input", ""))
        text = "".join(source) if isinstance(source, list) else str(source)
        kind = cell.get("cell_type")
        if kind == "code":
            out.append(f"```{lang}\n{text.rstrip()}\n```")
        elif kind == "heading":  # nbformat 3
            out.append("#" * int(cell.get("level") or 1) + " " + text.strip())
        else:
            out.append(text.strip())
    return "\n\n".join(out) + "\n"


class GithubReadFileTool(Tool):
    name = "github_read_file"
    description = (
        "Read a file from a GitHub repository (first 300 lines by default, numbered; use "
        "line_start/line_end for more). Notebooks come as Markdown without outputs; a directory "
        "path lists its entries."
    )
    Params = ReadFileParams

    async def run(self, params: ReadFileParams, ctx: ToolContext) -> ToolResult:
        parsed = split_repo(params.repo)
        if parsed is None:
            return ToolResult(f"ERROR: {params.repo!r} is not a GitHub repository; give it as 'owner/name'.",
                              success=False)
        owner, name = parsed
        full = f"{owner}/{name}"
        path = params.path.strip().strip("/")
        if ".." in path.split("/"):
            return ToolResult(f"ERROR: {params.path!r} is not a path inside the repository.", success=False)
        if params.line_start and params.line_end and params.line_end < params.line_start:
            return ToolResult("ERROR: line_end is before line_start.", success=False)
        net = net_of(ctx)
        what = f"github_read_file {full}/{path}"
        route = f"/repos/{owner}/{name}/contents/{quote(path)}" if path else f"/repos/{owner}/{name}/contents"
        query = {"ref": params.ref} if params.ref else None
        at = params.ref or "the default branch"
        try:
            r = await gh_get(net, route, params=query, ok=(404,))
            if r.status == 404:
                repo = await gh_get(net, f"/repos/{owner}/{name}", ok=(404,))
                if repo.status == 404:
                    return ToolResult(f"ERROR: repository {full} was not found on GitHub (or it is private).",
                                      success=False)
                parent = path.rsplit("/", 1)[0] if "/" in path else ""
                return ToolResult(f"ERROR: {path!r} does not exist in {full} at {at}. List the directory with "
                                  f'github_read_file(repo="{full}", path="{parent}") or search with '
                                  f'github_find_examples(repo="{full}", keyword=...).', success=False)
            data = r.json()
            if isinstance(data, list):
                return self._directory(data, full, path, at, ctx)
            kind = data.get("type")
            if kind == "symlink":
                return ToolResult(f"{full}/{path} is a symlink to {data.get('target')!r}; read that path instead.")
            if kind == "submodule":
                return ToolResult(f"{full}/{path} is a git submodule pointing at {data.get('submodule_git_url')}.")
            raw, cut = await self._content(net, route, query, data)
        except NetError as exc:
            return gh_error(exc, net, what)
        except (binascii.Error, ValueError) as exc:
            return ToolResult(f"ERROR: {what}: GitHub sent content that could not be decoded ({exc}).", success=False)
        size = data.get("size") if isinstance(data.get("size"), int) else len(raw)
        if b"\x00" in raw[:8192]:
            return ToolResult(f"{full}/{path} is a binary file ({_fmt_size(size)}); not shown. Download: "
                              f"{data.get('download_url') or data.get('html_url')}")
        if path.lower().endswith(".ipynb"):
            try:
                text = render_notebook(raw)
                kind_note = "notebook as Markdown, outputs omitted"
            except (ValueError, AttributeError, TypeError):
                text, kind_note = raw.decode("utf-8", errors="replace"), "notebook JSON (could not be rendered)"
        else:
            text, kind_note = raw.decode("utf-8", errors="replace"), ""
        lines = text.splitlines()
        total = len(lines)
        start = params.line_start or 1
        end = params.line_end or (start + DEFAULT_LINES - 1)
        if total and start > total:
            return ToolResult(f"ERROR: {full}/{path} has {total} lines; line_start {start} is past the end.",
                              success=False)
        end = min(end, total)
        width = len(str(max(end, 1)))
        body = []
        for n in range(start, end + 1):
            line = lines[n - 1]
            if len(line) > LINE_CHARS:
                line = line[:LINE_CHARS] + f"… [{len(line):,} chars]"
            body.append(f"{n:>{width}}| {line}")
        ref_shown = params.ref or "default branch"
        info = ", ".join(x for x in (f"{total:,} lines", _fmt_size(size), kind_note) if x)
        head = [f"{full}/{path} @ {ref_shown} ({info})", str(data.get("html_url") or "")]
        if cut:
            head.append(f"(only the first {_fmt_size(len(raw))} of this file were read)")
        foot = []
        if total == 0:
            foot.append("(empty file)")
        elif start > 1 or end < total:
            foot.append(f"[lines {start}-{end} of {total:,}"
                        + (f"; next: line_start={end + 1}]" if end < total else "]"))
        text_out = "\n".join([h for h in head if h] + [""] + body + ([""] + foot if foot else []))
        return budgeted(text_out, ctx, "github_read_file", max_chars=20_000)

    async def _content(self, net: Net, route: str, query: dict[str, Any] | None,
                       data: dict[str, Any]) -> tuple[bytes, bool]:
        """The file's bytes; files over 1 MB come without content, so ask for the raw media type."""
        content = data.get("content") or ""
        if data.get("encoding") == "base64" and (content or not data.get("size")):
            return base64.b64decode(content), False
        raw = await gh_get(net, route, params=query, accept="application/vnd.github.raw", max_bytes=20_000_000)
        return raw.content, raw.truncated

    def _directory(self, entries: list[dict[str, Any]], full: str, path: str, at: str, ctx: ToolContext) -> ToolResult:
        order = {"dir": 0, "file": 1}
        entries = sorted(entries, key=lambda e: (order.get(e.get("type"), 2), str(e.get("name")).lower()))
        lines = [f"{full}/{path or ''} is a directory at {at} ({len(entries)} entries):"]
        for e in entries:
            kind = e.get("type")
            suffix = "/" if kind == "dir" else " -> submodule" if kind == "submodule" else ""
            size = f"  {_fmt_size(e.get('size'))}" if kind == "file" else ""
            lines.append(f"- {e.get('name')}{suffix}{size}")
        lines.append(f'Read a file with github_read_file(repo="{full}", path="{path + "/" if path else ""}NAME").')
        return budgeted("\n".join(lines), ctx, "github_read_file")
