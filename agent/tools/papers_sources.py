"""Where ``hf_papers`` gets its facts: the Hub's papers API, Semantic Scholar and arXiv.

Every request goes through the session's ``Net`` (timeouts, token hygiene, errors as
sentences, the on-disk cache). The Hub routes and parameters are the ones
``huggingface_hub`` 2.4's ``list_daily_papers`` / ``list_papers`` / ``paper_info`` /
``list_models`` / ``list_datasets`` / ``list_collections`` send; they are called through
``Net`` rather than ``HfApi`` because the client's default HTTP session has no timeout,
runs in a thread a turn cannot cancel, and cannot use the response cache.

Everything here returns plain ``Paper`` records (or raw JSON rows for Hub repos), so the
tool module only decides what to ask and how to show it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from agent.net import Net, NetError

DAY = 24 * 3600
HOUR = 3600
TRENDING_TTL = HOUR
PAPER_TTL = DAY
FULLTEXT_TTL = DAY
SEARCH_TTL = HOUR
RESOURCES_TTL = HOUR
FULLTEXT_MAX_BYTES = 20_000_000  # LaTeXML pages carry MathML; long papers pass 8 MB
S2_BARE_429_WAIT_S = 1.5

S2_DETAIL_FIELDS = ("paperId,externalIds,url,title,abstract,venue,year,publicationDate,referenceCount,"
                    "citationCount,influentialCitationCount,fieldsOfStudy,authors,tldr,openAccessPdf")
S2_LIST_FIELDS = "paperId,externalIds,title,abstract,venue,year,publicationDate,citationCount,authors"
S2_EDGE_FIELDS = f"contexts,intents,isInfluential,{S2_LIST_FIELDS}"

_NEW_ID = r"\d{4}\.\d{4,5}(?:v\d+)?"
_OLD_ID = r"[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?"
_ARXIV_ID = re.compile(rf"(?<![\w.])({_NEW_ID}|{_OLD_ID})(?![\w.])")
_S2_HEX = re.compile(r"[0-9a-f]{40}")

#: arXiv category prefix -> Semantic Scholar field of study
_ARXIV_FIELDS = {
    "cs": "Computer Science", "stat": "Mathematics", "math": "Mathematics", "eess": "Engineering",
    "physics": "Physics", "astro-ph": "Physics", "cond-mat": "Physics", "hep": "Physics", "quant-ph": "Physics",
    "gr-qc": "Physics", "nlin": "Physics", "q-bio": "Biology", "q-fin": "Economics", "econ": "Economics",
}


def arxiv_id(text: str) -> str | None:
    """The arXiv id in ``text`` (a bare id, ``arXiv:...``, an arxiv.org or Hub papers URL)."""
    match = _ARXIV_ID.search((text or "").strip())
    return match.group(1) if match else None


def base_id(aid: str) -> str:
    """An arXiv id without its version (the Hub and Semantic Scholar key papers that way)."""
    return re.sub(r"v\d+$", "", aid)


def s2_paper_id(text: str) -> str | None:
    """An id Semantic Scholar understands: ``arXiv:<id>``, a 40-hex paperId, or ``PREFIX:value``."""
    text = (text or "").strip()
    aid = arxiv_id(text)
    if aid:
        return f"arXiv:{base_id(aid)}"
    if _S2_HEX.fullmatch(text.lower()):
        return text.lower()
    if re.fullmatch(r"(?i)(corpusid|doi|acl|mag|pmid|pmcid|dblp|url):\S+", text):
        return text
    return None


def fields_of_study(categories: str | None) -> str | None:
    """Semantic Scholar ``fieldsOfStudy`` from names or arXiv categories (``cs.CL`` -> Computer Science)."""
    if not categories:
        return None
    names: list[str] = []
    for raw in categories.split(","):
        item = raw.strip()
        if not item:
            continue
        prefix = item.split(".")[0].lower()
        arxiv_like = "." in item or prefix in _ARXIV_FIELDS
        name = (_ARXIV_FIELDS.get(prefix) or _ARXIV_FIELDS.get(prefix.split("-")[0])) if arxiv_like else None
        name = name or " ".join(w[:1].upper() + w[1:] for w in item.split())
        if name not in names:
            names.append(name)
    return ",".join(names) or None


def date_range(date: str | None, date_from: str | None, date_to: str | None) -> str | None:
    """Semantic Scholar ``publicationDateOrYear``: ``2024-01-01:2024-03-31``, open ends allowed."""
    if date:
        return f"{date}:{date}"
    if date_from or date_to:
        return f"{date_from or ''}:{date_to or ''}"
    return None


@dataclass
class Paper:
    """One paper as any source knows it; empty fields are unknown."""

    title: str = ""
    arxiv_id: str = ""
    s2_id: str = ""
    authors: list[str] = field(default_factory=list)
    date: str = ""
    summary: str = ""
    ai_summary: str = ""
    keywords: list[str] = field(default_factory=list)
    upvotes: int | None = None
    comments: int | None = None
    github: str = ""
    github_stars: int | None = None
    project_page: str = ""
    citations: int | None = None
    influential: int | None = None
    references: int | None = None
    venue: str = ""
    tldr: str = ""
    fields: list[str] = field(default_factory=list)
    pdf: str = ""
    # citation-graph edges only
    is_influential: bool | None = None
    intents: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)


def _day(value: Any) -> str:
    return str(value)[:10] if value else ""


def paper_from_hub(row: dict[str, Any]) -> Paper:
    """A Hub paper: the flat ``/api/papers/<id>`` object or a ``{"paper": {...}, ...}`` list row."""
    inner = row.get("paper") if isinstance(row.get("paper"), dict) else {}
    merged = {**row, **inner}  # the nested paper is the authority; the row adds comments and such
    authors = [a.get("name", "") for a in merged.get("authors") or [] if isinstance(a, dict) and not a.get("hidden")]
    return Paper(
        title=" ".join(str(merged.get("title") or "").split()),
        arxiv_id=str(merged.get("id") or ""),
        authors=[a for a in authors if a],
        date=_day(merged.get("publishedAt")),
        summary=" ".join(str(merged.get("summary") or "").split()),
        ai_summary=str(merged.get("ai_summary") or ""),
        keywords=list(merged.get("ai_keywords") or []),
        upvotes=merged.get("upvotes"),
        comments=row.get("numComments", merged.get("numComments")),
        github=str(merged.get("githubRepo") or ""),
        github_stars=merged.get("githubStars"),
        project_page=str(merged.get("projectPage") or ""),
    )


def paper_from_s2(data: dict[str, Any]) -> Paper:
    ext = data.get("externalIds") or {}
    tldr = data.get("tldr") or {}
    pdf = data.get("openAccessPdf") or {}
    return Paper(
        title=" ".join(str(data.get("title") or "").split()),
        arxiv_id=str(ext.get("ArXiv") or ""),
        s2_id=str(data.get("paperId") or ""),
        authors=[a.get("name", "") for a in data.get("authors") or [] if isinstance(a, dict)],
        date=_day(data.get("publicationDate")) or str(data.get("year") or ""),
        summary=" ".join(str(data.get("abstract") or "").split()),
        citations=data.get("citationCount"),
        influential=data.get("influentialCitationCount"),
        references=data.get("referenceCount"),
        venue=str(data.get("venue") or ""),
        tldr=str(tldr.get("text") or "") if isinstance(tldr, dict) else "",
        fields=list(data.get("fieldsOfStudy") or []),
        pdf=str(pdf.get("url") or "") if isinstance(pdf, dict) else "",
    )


# ---------------------------------------------------------------- the Hub


class Hub:
    """The Hub's papers routes and paper-linked repos, with the user's HF token (Hub only)."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.base = net.endpoints.hub

    async def _json(self, path: str, params: dict[str, Any] | None, ttl: float, ok: tuple[int, ...] = ()) -> Any:
        r = await self.net.get(f"{self.base}{path}", params=params, auth="hf", cache_ttl=ttl, ok=ok)
        return None if r.status in ok else r.json()

    async def daily_papers(self, *, date: str | None, limit: int, sort: str | None) -> list[Paper]:
        rows = await self._json("/api/daily_papers", {"limit": limit, "sort": sort, "date": date}, TRENDING_TTL)
        return [paper_from_hub(row) for row in rows or [] if isinstance(row, dict)]

    async def search(self, query: str, limit: int) -> list[Paper]:
        rows = await self._json("/api/papers/search", {"q": query, "limit": limit}, SEARCH_TTL)
        return [paper_from_hub(row) for row in rows or [] if isinstance(row, dict)]

    async def paper(self, aid: str) -> Paper | None:
        data = await self._json(f"/api/papers/{quote(base_id(aid), safe='/')}", None, PAPER_TTL, ok=(404,))
        return paper_from_hub(data) if isinstance(data, dict) else None

    async def repos(self, kind: str, aid: str, *, sort: str, limit: int) -> list[dict[str, Any]]:
        """Models or datasets that cite the paper (``filter=arxiv:<id>``), most downloaded first."""
        params = {"filter": f"arxiv:{base_id(aid)}", "sort": sort, "limit": limit}
        rows = await self._json(f"/api/{kind}", params, RESOURCES_TTL)
        return [row for row in rows or [] if isinstance(row, dict)]

    async def collections(self, aid: str, *, sort: str, limit: int) -> list[dict[str, Any]]:
        params = {"item": f"papers/{base_id(aid)}", "sort": sort, "limit": limit}
        rows = await self._json("/api/collections", params, RESOURCES_TTL)
        return [row for row in rows or [] if isinstance(row, dict)]


# ---------------------------------------------------------------- Semantic Scholar


class SemanticScholar:
    """The graph, snippet and recommendations APIs. ``S2_API_KEY`` goes only here."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.base = net.endpoints.semantic_scholar
        key = os.environ.get("S2_API_KEY", "").strip()
        self.headers = {"x-api-key": key} if key else None

    @property
    def has_key(self) -> bool:
        return self.headers is not None

    async def _get(self, path: str, params: dict[str, Any], ttl: float, ok: tuple[int, ...] = ()) -> Any:
        for attempt in (1, 2):
            try:
                r = await self.net.get(f"{self.base}{path}", params=params, headers=self.headers, cache_ttl=ttl,
                                       timeout_s=15.0, ok=ok)
                break
            except NetError as exc:
                # The anonymous pool answers bursts with a bare 429 (no Retry-After) that clears
                # within a second or two: one short retry, never the reference's 60 s sleep.
                if attempt == 2 or exc.kind != "rate_limited" or exc.retry_after is not None:
                    raise
                await self.net.sleep(S2_BARE_429_WAIT_S)
        return None if r.status in ok else r.json()

    async def paper(self, pid: str) -> Paper | None:
        data = await self._get(f"/graph/v1/paper/{quote(pid, safe=':/')}", {"fields": S2_DETAIL_FIELDS},
                               PAPER_TTL, ok=(404,))
        return paper_from_s2(data) if isinstance(data, dict) else None

    async def edges(self, pid: str, direction: str, limit: int) -> tuple[list[Paper], bool] | None:
        """Citing (``citations``) or cited (``references``) papers; None when S2 has no such paper.
        The flag says whether S2 has more than were fetched."""
        data = await self._get(f"/graph/v1/paper/{quote(pid, safe=':/')}/{direction}",
                               {"fields": S2_EDGE_FIELDS, "limit": limit}, PAPER_TTL, ok=(404,))
        if not isinstance(data, dict):
            return None
        key = "citingPaper" if direction == "citations" else "citedPaper"
        found = []
        for row in data.get("data") or []:
            other = row.get(key) if isinstance(row, dict) else None
            if not isinstance(other, dict) or not (other.get("title") or other.get("paperId")):
                continue
            paper = paper_from_s2(other)
            paper.is_influential = row.get("isInfluential")
            paper.intents = list(row.get("intents") or [])
            paper.contexts = [c for c in row.get("contexts") or [] if isinstance(c, str)]
            found.append(paper)
        return found, data.get("next") is not None

    async def search(self, query: str, *, limit: int, sort_by: str, dates: str | None, min_citations: int | None,
                     fields: str | None) -> tuple[list[Paper], int | None]:
        """Relevance-ranked ``paper/search`` with filters; ``paper/search/bulk`` when sorted by
        citations or date (bulk has no relevance order, but it sorts and filters the whole index)."""
        params: dict[str, Any] = {"query": query, "fields": S2_LIST_FIELDS, "publicationDateOrYear": dates,
                                  "minCitationCount": min_citations, "fieldsOfStudy": fields}
        if sort_by == "relevance":
            data = await self._get("/graph/v1/paper/search", {**params, "limit": limit}, SEARCH_TTL)
        else:
            data = await self._get("/graph/v1/paper/search/bulk", {**params, "sort": f"{sort_by}:desc"}, SEARCH_TTL)
        rows = (data or {}).get("data") or []
        return [paper_from_s2(row) for row in rows[:limit] if isinstance(row, dict)], (data or {}).get("total")

    async def snippets(self, query: str, *, limit: int, pid: str | None, dates: str | None,
                       min_citations: int | None, fields: str | None) -> list[dict[str, Any]]:
        params = {"query": query, "limit": limit, "paperIds": pid, "publicationDateOrYear": dates,
                  "minCitationCount": min_citations, "fieldsOfStudy": fields}
        data = await self._get("/graph/v1/snippet/search", params, PAPER_TTL)
        return [row for row in (data or {}).get("data") or [] if isinstance(row, dict)]

    async def arxiv_ids(self, corpus_ids: list[str]) -> dict[str, str]:
        """corpusId -> arXiv id for the papers that have one (one batch call; best effort, so a
        failure leaves the passages with their corpus ids)."""
        wanted = [c for c in dict.fromkeys(corpus_ids) if c]
        if not wanted:
            return {}
        try:
            r = await self.net.request("POST", f"{self.base}/graph/v1/paper/batch", params={"fields": "externalIds"},
                                       json_body={"ids": [f"CorpusId:{c}" for c in wanted]}, headers=self.headers,
                                       timeout_s=10.0)
            rows = r.json()
        except NetError:
            return {}
        found = {}
        for corpus, row in zip(wanted, rows if isinstance(rows, list) else []):
            ext = (row or {}).get("externalIds") or {} if isinstance(row, dict) else {}
            if ext.get("ArXiv"):
                found[corpus] = str(ext["ArXiv"])
        return found

    async def recommend(self, positive: list[str], negative: list[str], limit: int) -> list[Paper]:
        r = await self.net.request(
            "POST", f"{self.base}/recommendations/v1/papers", params={"fields": S2_LIST_FIELDS, "limit": limit},
            json_body={"positivePaperIds": positive, "negativePaperIds": negative}, headers=self.headers,
            timeout_s=20.0,
        )
        rows = (r.json() or {}).get("recommendedPapers") or []
        return [paper_from_s2(row) for row in rows[:limit] if isinstance(row, dict)]


# ---------------------------------------------------------------- full text


@dataclass
class FullText:
    html: str
    url: str
    source: str  # "arXiv HTML" | "ar5iv"
    truncated: bool = False


async def fetch_full_text(net: Net, aid: str) -> FullText | None:
    """The paper's HTML: arXiv's own rendering, else ar5iv's; None when neither has it.
    A page with no LaTeXML document in it (arXiv's "conversion failed" page) counts as none."""
    e = net.endpoints
    for source, base in (("arXiv HTML", e.arxiv), ("ar5iv", e.ar5iv)):
        url = f"{base}/html/{aid}"
        try:
            r = await net.get(url, cache_ttl=FULLTEXT_TTL, max_bytes=FULLTEXT_MAX_BYTES, ok=(404, 410), timeout_s=30.0)
        except NetError as exc:
            if source == "arXiv HTML" and exc.kind in ("server", "not_found"):
                continue
            raise
        if r.status != 200:
            continue
        text = r.text
        if "ltx_document" in text or re.search(r"<h[23][\s>]", text):
            return FullText(text, r.url, source, r.truncated)
    return None
