"""A loopback web: a DuckDuckGo-HTML-shaped search page and ordinary pages for ``fetch_url``.

Built on ``RoutedEmulator`` (tests/fakes/_routed.py), as are the dataset viewer and GitHub
emulators: a route table, every request recorded with its headers, ``fail_next`` to script
error answers.

Usage::

    with WebEmulator() as web:
        web.endpoint                       # http://127.0.0.1:PORT
        web.search_url                     # the MLINTERN_WEB_SEARCH_URL to use (…/html/)
        web.script_results("trl sft", [SearchHit(url, title, snippet), ...])
        web.add_page("/docs/page", body, "text/html; charset=utf-8")
        web.requests                       # [Recorded(method, path, query, headers, body)]
        web.streams                        # [StreamLog(path, length, written, done)]

The search answers ``POST /html/`` with the form field ``q`` (what the site's own search box
sends) and ``GET /html/?q=`` alike. The page follows html.duckduckgo.com: ``div.result``
blocks with ``a.result__a``
(the href is a ``//duckduckgo.com/l/?uddg=<encoded>&rut=…`` redirect for most hits),
``a.result__url`` and ``a.result__snippet``; an ad block (``result--ad``) first; a query
the emulator knows nothing about gets ``div.no-results``. ``bot_check_next()`` answers the
next search with DuckDuckGo's 202 "anomaly" page.

Built-in pages: ``/docs/article`` (HTML with nav, footer, aside, script and a ``<main>``),
``/docs/readme.md`` (text/markdown), ``/docs/data.json``, ``/docs/latin1`` (ISO-8859-1
without a UTF-8 fallback), ``/files/weights.bin`` (application/octet-stream),
``/files/figure.png``, ``/go/article`` (302 to ``/docs/article``), ``/go/loop`` (redirects
forever), ``/huge`` (an HTML page of ``huge_bytes``), ``/blog/post`` (an ``<article>``),
``/files/big.zip`` and ``/files/big.pdf`` (``big_file_bytes`` of application/zip or
application/pdf, streamed slowly: ``streams`` shows how much a client actually pulled).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

from tests.fakes._routed import Call, Fail, RawResponse, Recorded, RoutedEmulator, Streamed


@dataclass(frozen=True)
class SearchHit:
    url: str
    title: str
    snippet: str
    wrapped: bool = True  # href through DuckDuckGo's //duckduckgo.com/l/?uddg= redirect


DEFAULT_HITS = (
    SearchHit("https://huggingface.co/docs/trl/sft_trainer", "SFT Trainer - Hugging Face TRL",
              "The <b>SFTTrainer</b> makes it straightforward to supervised fine-tune open LLMs."),
    SearchHit("https://github.com/huggingface/trl", "GitHub - huggingface/trl: Train transformer language models",
              "TRL is a cutting-edge library designed for post-training foundation models.", wrapped=False),
    SearchHit("https://huggingface.co/docs/trl/sft_trainer#packing", "SFT Trainer - packing",
              "Duplicate of the first page with a fragment."),
    SearchHit("https://discuss.huggingface.co/t/sft-loss/123", "SFT loss does not go down - Forums",
              "I am fine-tuning with <b>SFTTrainer</b> and the loss is flat."),
    SearchHit("https://www.reddit.com/r/LocalLLaMA/comments/abc/sft_tips", "SFT tips : r/LocalLLaMA",
              "Some tips on learning rates for SFT."),
    SearchHit("https://arxiv.org/abs/2305.18290", "Direct Preference Optimization",
              "We introduce DPO, a stable alternative to RLHF."),
)


def _hit_href(hit: SearchHit) -> str:
    if not hit.wrapped:
        return hit.url
    return f"//duckduckgo.com/l/?uddg={quote(hit.url, safe='')}&amp;rut=f00d{abs(hash(hit.url)) % 10**8:08d}"


def results_page(query: str, hits: list[SearchHit] | tuple[SearchHit, ...]) -> str:
    q = html.escape(query)
    blocks = [
        # an ad, which a scraper must skip
        '<div class="result results_links results_links_deep result--ad">'
        '<div class="links_main links_deep result__body"><h2 class="result__title">'
        '<a rel="nofollow" class="result__a" href="https://duckduckgo.com/y.js?ad_domain=ads.example&amp;u3=x">'
        'Buy GPUs now</a></h2><a class="result__snippet" href="https://duckduckgo.com/y.js?x=1">Ad text</a>'
        '</div></div>'
    ]
    for hit in hits:
        href = _hit_href(hit)
        shown = html.escape(urlsplit(hit.url).netloc + urlsplit(hit.url).path)
        blocks.append(
            '<div class="result results_links results_links_deep web-result ">'
            '<div class="links_main links_deep result__body">'
            f'<h2 class="result__title"><a rel="nofollow" class="result__a" href="{href}">{html.escape(hit.title)}</a></h2>'
            '<div class="result__extras"><div class="result__extras__url">'
            f'<a class="result__url" href="{href}">{shown}</a></div></div>'
            f'<a class="result__snippet" href="{href}">{hit.snippet}</a>'
            '<div class="clear"></div></div></div>'
        )
    body = "\n".join(blocks) if hits else '<div class="no-results">No results.</div>'
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
        f"<title>{q} at DuckDuckGo</title></head><body>"
        f'<form id="search_form" action="/html/" method="post"><input name="q" value="{q}"></form>'
        f'<div id="links" class="results">{body}</div></body></html>'
    )


ANOMALY_PAGE = (
    "<!DOCTYPE html><html><body><div class=\"anomaly-modal__title\">Unfortunately, bots use DuckDuckGo too.</div>"
    "<div class=\"anomaly-modal__description\">Please complete the following challenge.</div></body></html>"
)

ARTICLE_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fine-tuning with SFT | Example Docs</title>
<style>body { color: red; }</style><script>var tracking = "SECRET_SCRIPT_TEXT";</script></head>
<body>
<nav><a href="/">Home</a> <a href="/docs">Docs</a> NAVIGATION_MENU_TEXT</nav>
<aside>SIDEBAR_TEXT related links</aside>
<main>
<h1>Fine-tuning with SFT</h1>
<p>Supervised fine-tuning adapts a <strong>base model</strong> to chat data. See the
<a href="/docs/packing">packing guide</a>.</p>
<h2>Install</h2>
<pre><code>pip install trl</code></pre>
<ul><li>Load a dataset</li><li>Train</li></ul>
<table><tr><th>lr</th><th>epochs</th></tr><tr><td>2e-5</td><td>3</td></tr></table>
<img src="data:image/png;base64,AAAABBBBCCCC" alt="inline pixel">
</main>
<footer>FOOTER_TEXT copyright</footer>
</body></html>
"""

BLOG_HTML = """<!DOCTYPE html>
<html><head><title>Our new model</title><meta property="og:title" content="Our new model (blog)"></head>
<body><header><a href="/">Blog home</a></header>
<div class="layout"><article><h1>Our new model</h1><p>It is <em>small</em> and fast.</p></article>
<div class="comments">COMMENTS_TEXT</div></div></body></html>
"""

README_MD = "# Example project\n\nRun `python train.py` to train.\n\n## License\n\nApache-2.0\n"

PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


class WebEmulator(RoutedEmulator):
    """DuckDuckGo's HTML search and a handful of pages; see the module docstring."""

    _thread_name = "web-fake"
    ROUTES = [
        ("GET", r"/html/?", "_search"),
        ("POST", r"/html/?", "_search"),
        ("GET", r"/go/article", "_go_article"),
        ("GET", r"/go/loop", "_go_loop"),
        ("GET", r"/huge", "_huge"),
        ("GET", r"/files/big\.(?P<ext>zip|pdf)", "_big_file"),
        ("GET", r"(?P<path>/.*)", "_page"),
    ]

    def __init__(self, huge_bytes: int = 6_000_000, big_file_bytes: int = 100_000_000) -> None:
        super().__init__()
        self.huge_bytes = huge_bytes
        self.big_file_bytes = big_file_bytes
        self._results: dict[str, list[SearchHit]] = {}
        self._default_hits = list(DEFAULT_HITS)
        self._bot_checks = 0
        self._pages: dict[str, RawResponse] = {
            "/docs/article": RawResponse(200, ARTICLE_HTML.encode(), "text/html; charset=utf-8"),
            "/blog/post": RawResponse(200, BLOG_HTML.encode(), "text/html"),
            "/docs/readme.md": RawResponse(200, README_MD.encode(), "text/markdown; charset=utf-8"),
            "/docs/data.json": RawResponse(200, b'{"name": "demo", "rows": 3}', "application/json"),
            "/docs/latin1": RawResponse(
                200, "<html><head><title>Caf\xe9</title></head><body><p>Cr\xe8me br\xfbl\xe9e \xe0 la carte</p></body></html>"
                .encode("iso-8859-1"), "text/html; charset=iso-8859-1"),
            "/files/weights.bin": RawResponse(200, bytes(range(256)) * 64, "application/octet-stream"),
            "/files/figure.png": RawResponse(200, PNG_BYTES, "image/png"),
        }

    @property
    def search_url(self) -> str:
        return f"{self.endpoint}/html/"

    def script_results(self, query: str, hits: list[SearchHit]) -> None:
        with self._lock:
            self._results[query] = list(hits)

    def add_page(self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8",
                 status: int = 200, headers: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._pages[path] = RawResponse(status, data, content_type, dict(headers or {}))

    def bot_check_next(self, times: int = 1) -> None:
        with self._lock:
            self._bot_checks += times

    def _search(self, call: Call) -> RawResponse:
        if call.method == "POST":
            query = (parse_qs(call.body.decode("utf-8", "replace"), keep_blank_values=True).get("q") or [""])[0]
        else:
            query = call.arg("q") or ""
        query = query.strip()
        if self._bot_checks > 0:
            self._bot_checks -= 1
            return RawResponse(202, ANOMALY_PAGE.encode(), "text/html; charset=utf-8")
        if query.startswith("nothing"):
            hits: list[SearchHit] = []
        else:
            plain = re.sub(r"\s*-?site:\S+|\s+OR\b", "", query).strip()
            hits = self._results.get(query, self._results.get(plain, self._default_hits))
        return RawResponse(200, results_page(query, hits).encode(), "text/html; charset=utf-8")

    def _go_article(self, call: Call) -> RawResponse:
        return RawResponse(302, b"", "text/html", {"Location": "/docs/article"})

    def _go_loop(self, call: Call) -> RawResponse:
        return RawResponse(302, b"", "text/html", {"Location": "/go/loop"})

    def _huge(self, call: Call) -> RawResponse:
        para = "<p>" + "lorem ipsum dolor sit amet " * 20 + "</p>\n"
        count = self.huge_bytes // len(para) + 1
        body = ("<html><head><title>A huge page</title></head><body><main><h1>Huge</h1>"
                + para * count + "<p>THE_VERY_END</p></main></body></html>")
        return RawResponse(200, body.encode(), "text/html; charset=utf-8")

    def _big_file(self, call: Call) -> Streamed:
        ctype = {"zip": "application/zip", "pdf": "application/pdf"}[call.params["ext"]]
        head = b"%PDF-1.7\n" if ctype == "application/pdf" else b"PK\x03\x04"
        return Streamed(200, ctype, self.big_file_bytes, chunk=head + b"\x00" * (65536 - len(head)))

    def _page(self, call: Call) -> RawResponse:
        page = self._pages.get(call.params["path"])
        if page is None:
            return RawResponse(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")
        return page


__all__ = ["Call", "Fail", "RawResponse", "Recorded", "RoutedEmulator", "SearchHit", "Streamed", "WebEmulator"]
