"""``fetch_url``: one web page as Markdown, a window at a time (the reference has no page fetch).

It never carries a token: requests go out with ``auth=None``, so ``Net`` attaches nothing
whatever the host, Hub URLs included (Hub docs have ``fetch_hf_docs``). Pages are read up to
a byte cap (a PDF or binary file is refused by its Content-Type before its body is
downloaded), converted off the event loop (BeautifulSoup + markdownify, imported on first
use) and returned a window at a time, the whole Markdown spilled to a file.
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
from urllib.parse import urljoin, urlsplit

from pydantic import Field

from agent.net import NetError, Response
from agent.tools.base import Tool, ToolContext, ToolParams, ToolResult
from agent.tools.knowledge import failed, net_of
from agent.tools.output import human_size

#: how long a fetched page's Markdown is reused for the next window
PAGE_CACHE_TTL_S = 600.0
#: the most of one page fetch_url reads
PAGE_MAX_BYTES = 5_000_000


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
