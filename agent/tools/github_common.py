"""What the GitHub tools share: API calls, repo names, failures as sentences, sizes.

Every call goes through the session's ``Net`` with ``auth="github"``: ``GITHUB_TOKEN`` (or
``GH_TOKEN``) is attached to the GitHub API origin and nowhere else. The token is optional;
without one GitHub allows 60 requests an hour, which is said (``gh_error``) only when a
rate-limit answer actually comes. Answers are cached for a few minutes, so reading the same
tree or file twice costs one request.
"""

from __future__ import annotations

import difflib
import re
from typing import Any
from urllib.parse import urlsplit

from agent.net import Net, NetError, Response
from agent.tools.base import ToolResult
from agent.tools.knowledge import failed
from agent.tools.output import human_size

CACHE_TTL_S = 300.0
API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


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
    if len(parts) != 2 or not all(NAME.match(p) for p in parts):
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


def fmt_size(n: Any) -> str:
    """A file size, or nothing when GitHub gave none (the line then leaves it out)."""
    return human_size(n, unknown="")


async def suggest_repos(net: Net, owner: str, name: str) -> list[str]:
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


__all__ = ["API_HEADERS", "CACHE_TTL_S", "NAME", "fmt_size", "gh_error", "gh_get", "split_repo", "suggest_repos"]
