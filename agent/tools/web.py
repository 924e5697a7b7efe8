"""``web_search``: DuckDuckGo's HTML results, scraped, with allowed and blocked domains.

It never carries a token (``auth=None``). A search POSTs DuckDuckGo's form to its html
endpoint, as the site's own search box does; results pages are cached for an hour. A page
the model wants to read goes through ``fetch_url`` (agent/tools/web_fetch.py), re-exported
here.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from urllib.parse import parse_qs, urlsplit, urlunsplit

from pydantic import Field

from agent.net import Net, NetError, Response, ResponseCache
from agent.tools.base import Tool, ToolContext, ToolParams, ToolResult
from agent.tools.knowledge import failed, net_of

SEARCH_CACHE_TTL_S = 3600.0
SNIPPET_CHARS = 300

# ---------------------------------------------------------------------------- web_search


class WebSearchParams(ToolParams):
    query: str = Field(min_length=2, description="What to search the web for.")
    allowed_domains: list[str] | None = Field(
        None, description="Only return results from these domains (subdomains included), e.g. ['arxiv.org'].")
    blocked_domains: list[str] | None = Field(
        None, description="Never return results from these domains (subdomains included).")
    max_results: int = Field(8, ge=1, le=20, description="Most results to return (default 8).")


def _domain(value: str) -> str:
    text = value.strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    text = text.split("/")[0].split(":")[0].strip(".")
    return text.removeprefix("www.").removeprefix("*.")


def domain_matches(url: str, domains: list[str]) -> bool:
    host = (urlsplit(url).hostname or "").lower().rstrip(".").removeprefix("www.")
    return any(d and (host == d or host.endswith("." + d)) for d in domains)


def unwrap_result_url(href: str) -> str | None:
    """The target of a DuckDuckGo result link (``//duckduckgo.com/l/?uddg=...``), or the
    link itself when it is direct; None for ads and DuckDuckGo's own pages."""
    href = (href or "").strip()
    if href.startswith("//"):
        href = "https:" + href
    parts = urlsplit(href)
    host = (parts.hostname or "").lower()
    if host == "duckduckgo.com" or host.endswith(".duckduckgo.com"):
        if parts.path.rstrip("/") == "/l":
            target = (parse_qs(parts.query).get("uddg") or [""])[0]
            return target if target.startswith(("http://", "https://")) else None
        return None  # y.js ads, settings, ...
    return href if parts.scheme in ("http", "https") and host else None


def _dedupe_key(url: str) -> str:
    p = urlsplit(url)
    return urlunsplit(("", (p.hostname or "").lower().removeprefix("www."), p.path.rstrip("/"), p.query, ""))


def parse_results(html: str) -> list[tuple[str, str, str]]:
    """(url, title, snippet) in page order, ads skipped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    found: list[tuple[str, str, str]] = []
    blocks = [b for b in soup.select("div.result") if "result--ad" not in (b.get("class") or [])]
    for block in blocks:
        anchor = block.select_one("a.result__a")
        if anchor is None:
            continue
        url = unwrap_result_url(str(anchor.get("href") or ""))
        if url is None:
            continue
        snippet = block.select_one(".result__snippet")
        found.append((url, anchor.get_text(" ", strip=True),
                      snippet.get_text(" ", strip=True) if snippet is not None else ""))
    if not found and not blocks:  # another layout: any result anchor, then any outbound link
        anchors = soup.select("a.result__a") or soup.find_all("a", href=True)
        for anchor in anchors:
            url = unwrap_result_url(str(anchor.get("href") or ""))
            title = anchor.get_text(" ", strip=True)
            if url and title:
                found.append((url, title, ""))
    return found


def _is_bot_check(response: Response, html: str) -> bool:
    return response.status == 202 or "anomaly-modal" in html or "bots use DuckDuckGo" in html


def _search_cache(net: Net, sent: str) -> tuple[ResponseCache, str] | None:
    """Where a search's results page is cached: ``Net`` caches GETs only, and a search is a POST."""
    if net.cache_dir is None:
        return None
    key = hashlib.sha256(json.dumps(["POST", net.endpoints.web_search, {"q": sent}]).encode()).hexdigest()
    return ResponseCache(net.cache_dir), key


async def _results_page(net: Net, sent: str) -> Response:
    """DuckDuckGo's results for ``sent``: its form POSTed to the html endpoint, as the site's
    own search box does (cached; ``run`` keeps a page only once it is not a bot check)."""
    cache = _search_cache(net, sent)
    ttl = min(SEARCH_CACHE_TTL_S, net.max_cache_ttl_s)
    if cache is not None and ttl > 0:
        entry = await asyncio.to_thread(cache[0].get, cache[1], ttl)
        if entry is not None:
            return Response(entry.url, entry.status, entry.headers, entry.content, from_cache=True)
    return await net.request("POST", net.endpoints.web_search, form={"q": sent}, auth=None, max_bytes=2_000_000)


class WebSearchTool(Tool):
    name = "web_search"
    description = (
        "Search the web (DuckDuckGo) for current information: library releases, error messages, "
        "blog posts, benchmarks. Returns titles, URLs and snippets; read a result with fetch_url "
        "before relying on it, and cite the pages you use."
    )
    Params = WebSearchParams

    async def run(self, params: WebSearchParams, ctx: ToolContext) -> ToolResult:
        query = " ".join(params.query.split())
        if len(query) < 2:
            return ToolResult("ERROR: the query is empty; say what to search for.", success=False)
        allowed = [d for d in map(_domain, params.allowed_domains or []) if d]
        blocked = [d for d in map(_domain, params.blocked_domains or []) if d]
        # the engine narrows too, so a filter does not leave an empty page of results
        sent = query
        if allowed:
            sent += " " + " OR ".join(f"site:{d}" for d in allowed[:5])
        if blocked:
            sent += " " + " ".join(f"-site:{d}" for d in blocked[:5])
        net = net_of(ctx)
        try:
            response = await _results_page(net, sent)
        except NetError as exc:
            return failed(exc, "web_search")
        html = response.text
        if _is_bot_check(response, html):
            return ToolResult("ERROR: web_search: DuckDuckGo answered with a bot check instead of results; try "
                              "again in a minute, or fetch_url a page you already know.", success=False)
        cache = _search_cache(net, sent)
        if cache is not None and not response.from_cache and response.status == 200 and not response.truncated:
            await asyncio.to_thread(cache[0].put, cache[1], response)
        hits = await asyncio.to_thread(parse_results, html)
        seen: set[str] = set()
        kept: list[tuple[str, str, str]] = []
        dropped = 0
        for url, title, snippet in hits:
            key = _dedupe_key(url)
            if key in seen:
                continue
            seen.add(key)
            if (allowed and not domain_matches(url, allowed)) or (blocked and domain_matches(url, blocked)):
                dropped += 1
                continue
            kept.append((url, title, snippet))
        kept = kept[:params.max_results]
        if not kept:
            why = f" ({dropped} were outside the domain filters)" if dropped else ""
            return ToolResult(f"No web results for {query!r}{why}. Try other words or fewer filters.")
        lines = [f"Web results for {query!r}:", ""]
        for n, (url, title, snippet) in enumerate(kept, 1):
            title = title.replace("[", "(").replace("]", ")") or url
            lines.append(f"{n}. [{title}]({url})")
            if snippet:
                cut = snippet if len(snippet) <= SNIPPET_CHARS else snippet[:SNIPPET_CHARS].rstrip() + "…"
                lines.append(f"   {cut}")
        lines += ["", "Cite the pages you rely on as Markdown links in a 'Sources' section at the end of your "
                      "answer. Snippets can be stale or wrong: read a page with fetch_url before quoting it."]
        return ToolResult("\n".join(lines))


from agent.tools.web_fetch import FetchUrlTool  # noqa: E402  (one import place for both web tools)

__all__ = ["FetchUrlTool", "WebSearchTool", "domain_matches", "parse_results", "unwrap_result_url"]
