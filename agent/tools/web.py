"""``web_search`` (DuckDuckGo's HTML results, scraped) and ``fetch_url`` (one page as Markdown).

Neither ever carries a token: requests go out with ``auth=None``, so ``Net`` attaches
nothing whatever the host, Hub URLs included (Hub docs have ``fetch_hf_docs``). A search
POSTs DuckDuckGo's form to its html endpoint, as the site's own search box does. Pages are
read up to a byte cap (a PDF or binary file is refused by its Content-Type before its body
is downloaded), converted off the event loop (BeautifulSoup + markdownify, imported on
first use) and returned a window at a time, the whole Markdown spilled to a file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit, urlunsplit

from pydantic import Field

from agent.net import Net, NetError, Response, ResponseCache
from agent.tools.base import Tool, ToolContext, ToolParams, ToolResult
from agent.tools.knowledge import failed, net_of
from agent.tools.output import human_size

SEARCH_CACHE_TTL_S = 3600.0
PAGE_CACHE_TTL_S = 600.0
#: the most of one page fetch_url reads
PAGE_MAX_BYTES = 5_000_000
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


# ---------------------------------------------------------------------------- fetch_url


class FetchUrlParams(ToolParams):
    url: str = Field(description="The http(s) URL of the page to read.")
    max_chars: int = Field(10_000, ge=500, le=20_000,
                           description="Characters of Markdown to return (500-20000, default 10000).")
    offset: int = Field(0, ge=0, description="Character offset to start at, to page through a long page.")


_DROP_TAGS = ("script", "style", "noscript", "template", "nav", "footer", "aside", "svg", "iframe", "form",
              "button", "dialog")
_TEXT_APP_TYPES = ("json", "xml", "yaml", "toml", "javascript", "ecmascript", "x-sh", "x-python", "csv",
                   "x-ndjson", "sql", "graphql")


def _kind(content_type: str, body: bytes) -> str:
    """'html', 'text', 'pdf' or 'binary' from the content type, sniffing when it says nothing useful."""
    ctype = content_type.split(";")[0].strip().lower()
    head = body[:1024].lstrip().lower()
    if ctype in ("text/html", "application/xhtml+xml"):
        return "html"
    if ctype == "application/pdf" or body.startswith(b"%PDF-"):
        return "pdf"
    if ctype.startswith(("image/", "audio/", "video/", "font/", "model/")):
        return "binary"
    if ctype.startswith("text/") or (ctype.startswith("application/") and any(t in ctype for t in _TEXT_APP_TYPES)):
        return "text"
    if b"\x00" in body[:4096]:
        return "binary"
    if ctype in ("", "application/octet-stream", "binary/octet-stream"):
        if head.startswith((b"<!doctype html", b"<html")):
            return "html"
        try:
            body[:4096].decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < 4090:  # not just a character cut at the sniff boundary
                return "binary"
        return "text" if ctype == "" else "binary"
    return "binary"


def refused_by_type(content_type: str) -> str | None:
    """'pdf' or 'binary' when the Content-Type alone settles that fetch_url refuses the answer
    (so its body is never downloaded); None when the body may still be a page (``_kind``)."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype in ("application/pdf", "application/x-pdf"):
        return "pdf"
    if ctype in ("", "application/octet-stream", "binary/octet-stream", "text/html", "application/xhtml+xml"):
        return None
    if ctype.startswith("text/") or (ctype.startswith("application/") and any(t in ctype for t in _TEXT_APP_TYPES)):
        return None
    return "binary"


def _refusal(kind: str, url: str, content_type: str, size: str) -> ToolResult:
    if kind == "pdf":
        return ToolResult(f"ERROR: {url} is a PDF ({size}); fetch_url reads text pages only. For an arXiv paper use "
                          "hf_papers; otherwise download it with bash and extract the text (e.g. pdftotext).",
                          success=False)
    return ToolResult(f"ERROR: {url} is a binary file ({content_type.split(';')[0]}, {size}); fetch_url reads text "
                      "pages only. Download it with bash (curl -L -o FILE URL) if you need it.", success=False)


def _charset(content_type: str) -> str | None:
    m = re.search(r"charset=([\w.:-]+)", content_type, re.I)
    return m.group(1).strip("\"'") if m else None


def decode_text(body: bytes, content_type: str) -> str:
    from bs4.dammit import UnicodeDammit

    declared = _charset(content_type)
    dammit = UnicodeDammit(body, [declared] if declared else ["utf-8"])
    if dammit.unicode_markup is not None:
        return dammit.unicode_markup
    return body.decode("utf-8", errors="replace")


def html_to_markdown(body: bytes, content_type: str, base_url: str) -> tuple[str, str]:
    """(title, Markdown) of an HTML page: chrome dropped, the main content preferred, links absolute."""
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(body, "html.parser", from_encoding=_charset(content_type))
    title = ""
    if soup.title and soup.title.get_text(strip=True):
        title = soup.title.get_text(" ", strip=True)
    else:
        og = soup.find("meta", attrs={"property": "og:title"})
        if og is not None and og.get("content"):
            title = str(og["content"])
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all(attrs={"role": ("navigation", "banner", "contentinfo", "complementary")}):
        tag.decompose()
    for tag in soup.find_all("header"):
        if tag.find_parent(("main", "article")) is None:
            tag.decompose()
    body_el = soup.body or soup
    root = soup.find("main") or soup.find(attrs={"role": "main"}) or soup.find("article") or body_el
    if root is not body_el and len(root.get_text(strip=True)) < min(500, 0.2 * len(body_el.get_text(strip=True))):
        root = body_el  # a stub <main> around a sliver of the page
    for a in root.find_all("a", href=True):
        href = str(a["href"]).strip()
        if href.lower().startswith(("javascript:", "data:")):
            a.unwrap()
        else:
            a["href"] = urljoin(base_url, href)
    for img in root.find_all("img"):
        src = str(img.get("src") or "")
        if not src or src.startswith("data:"):
            alt = img.get("alt")
            if alt:
                img.replace_with(f"[image: {alt}]")
            else:
                img.decompose()
        else:
            img["src"] = urljoin(base_url, src)
    if not title:
        h1 = root.find("h1")
        title = h1.get_text(" ", strip=True) if h1 is not None else ""
    markdown = MarkdownConverter(heading_style="ATX", bullets="-").convert_soup(root)
    markdown = re.sub(r"[ \t]+\n", "\n", markdown)
    markdown = re.sub(r"\n{3,}", "\n\n", markdown).strip()
    return title, markdown


def _text_title(text: str, url: str) -> str:
    m = re.search(r"^#\s+(.+)$", text[:5000], re.M)
    if m:
        return m.group(1).strip()
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or (urlsplit(url).hostname or url)


def page_markdown(response: Response) -> tuple[str, str]:
    """(title, text) of a page fetch_url may return (raises ValueError for the ones it refuses)."""
    ctype = response.headers.get("content-type", "")
    kind = _kind(ctype, response.content)
    if kind == "html":
        return html_to_markdown(response.content, ctype, response.url)
    if kind == "text":
        text = decode_text(response.content, ctype)
        if "json" in ctype.lower() and not response.truncated:
            try:
                text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            except ValueError:
                pass
        return _text_title(text, response.url), text
    raise ValueError(kind)


def _page_file(spill_dir: Path, url: str) -> Path:
    return spill_dir / f"fetch_url-{hashlib.sha1(url.encode('utf-8', 'replace')).hexdigest()[:12]}.md"


def _spill(text: str, spill_dir: Path, url: str, meta: dict[str, Any]) -> str | None:
    """The whole Markdown in a file named after the URL asked for, with a small sidecar
    (title, final URL, truncation), so the next window of a long page needs no new fetch."""
    try:
        spill_dir.mkdir(parents=True, exist_ok=True)
        path = _page_file(spill_dir, url)
        for target, content in ((path, text), (path.with_suffix(".json"), json.dumps(meta))):
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(content, encoding="utf-8")
            os.replace(tmp, target)
        return str(path)
    except OSError:
        return None


def _spilled(spill_dir: Path, url: str) -> tuple[str, dict[str, Any], str] | None:
    """(text, meta, path) of a page this session spilled recently, or None."""
    path = _page_file(spill_dir, url)
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if time.time() - float(meta.get("ts", 0)) > PAGE_CACHE_TTL_S:
            return None
        return path.read_text(encoding="utf-8"), meta, str(path)
    except (OSError, ValueError, TypeError):
        return None


def _window(text: str, offset: int, max_chars: int) -> tuple[str, int]:
    """``text[offset:end]`` with ``end`` pulled back to a line break when one is near."""
    end = offset + max_chars
    if end >= len(text):
        return text[offset:], len(text)
    cut = text.rfind("\n", offset + max_chars * 3 // 4, end)
    end = cut + 1 if cut > 0 else end
    return text[offset:end], end


class FetchUrlTool(Tool):
    name = "fetch_url"
    description = (
        "Read one web page (http/https) as Markdown: docs, READMEs, blog posts, GitHub pages, "
        "JSON or plain text. Navigation and page chrome are dropped. Long pages come in windows: "
        "call again with the offset it gives to read on. Binary files (images, archives, PDFs) "
        "are refused. For Hugging Face documentation prefer fetch_hf_docs."
    )
    Params = FetchUrlParams

    async def run(self, params: FetchUrlParams, ctx: ToolContext) -> ToolResult:
        url = params.url.strip()
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            what = f"a {parts.scheme}: URL" if parts.scheme else "not a full URL"
            return ToolResult(f"ERROR: fetch_url reads http(s) pages only; {url!r} is {what}. Use read for local "
                              "files.", success=False)
        page = await asyncio.to_thread(_spilled, ctx.spill_dir, url) if params.offset else None
        if page is None:
            fetched = await self._fetch(url, ctx)
            if isinstance(fetched, ToolResult):
                return fetched
            text, meta = fetched
            spill = None
        else:
            text, meta, spill = page
        if params.offset and params.offset >= len(text):
            return ToolResult(f"ERROR: offset {params.offset:,} is past the end of this page ({len(text):,} "
                              "characters of Markdown).", success=False)
        head = [f"# {meta['title']}" if meta["title"] else "# (untitled page)", f"URL: {meta['url']}"]
        if meta["url"] != url:
            head.append(f"(redirected from {url})")
        if meta["truncated"]:
            head.append(f"Note: the page is larger than {human_size(PAGE_MAX_BYTES)}; only its first "
                        f"{human_size(PAGE_MAX_BYTES)} were read, so the end of the page is missing.")
        chunk, end = _window(text, params.offset, params.max_chars)
        footer = ""
        if params.offset or end < len(text):
            if spill is None:
                spill = await asyncio.to_thread(_spill, text, ctx.spill_dir, url, meta)
            footer = f"[characters {params.offset:,}-{end:,} of {len(text):,}"
            if end < len(text):
                footer += f"; continue with offset={end}"
            footer += f"; the whole page is in {spill}]" if spill else "]"
        body = "\n".join(head) + "\n\n" + chunk.strip("\n") + ("\n\n" + footer if footer else "")
        return ToolResult(body, spill_path=spill)

    async def _fetch(self, url: str, ctx: ToolContext) -> tuple[str, dict[str, Any]] | ToolResult:
        """(Markdown, meta) of the page, or the error result."""
        net = net_of(ctx)
        refused: list[tuple[str, str, str]] = []

        def by_headers(headers: dict[str, str]) -> str | None:
            kind = refused_by_type(headers.get("content-type", ""))
            if kind is None:
                return None
            length = headers.get("content-length", "")
            refused.append((kind, headers.get("content-type", ""), human_size(int(length)) if length.isdigit()
                            else "size unknown"))
            return f"fetch_url refuses {kind} content"

        try:
            response = await net.get(url, auth=None, max_bytes=PAGE_MAX_BYTES, cache_ttl=PAGE_CACHE_TTL_S,
                                     reject=by_headers,
                                     headers={"Accept": "text/html,application/xhtml+xml,text/markdown,text/plain,"
                                                        "application/json;q=0.9,*/*;q=0.5"})
        except NetError as exc:
            if exc.kind == "rejected" and refused:
                return _refusal(refused[-1][0], exc.url, refused[-1][1], refused[-1][2])
            return failed(exc, "fetch_url")
        ctype = response.headers.get("content-type", "") or "no content type"
        try:
            title, text = await asyncio.to_thread(page_markdown, response)
        except ValueError as exc:
            return _refusal(str(exc), response.url, ctype,
                            human_size(len(response.content)) + ("+" if response.truncated else ""))
        return text, {"title": title, "url": response.url, "truncated": response.truncated, "ts": time.time()}
