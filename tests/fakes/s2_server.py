"""Semantic Scholar's Graph, snippet and recommendations APIs on 127.0.0.1.

Answers in the live API's JSON shapes (api.semanticscholar.org, graph/v1 and
recommendations/v1):

* ``GET /graph/v1/paper/{id}`` (id: ``arXiv:<id>``, ``CorpusId:<n>`` or the 40-hex paperId)
  with ``fields`` (only those, plus ``paperId``; none -> ``paperId,title``; an unknown field
  is a 400 as on the live API); 404 ``{"error": "Paper with id ... not found"}``.
* ``GET /graph/v1/paper/{id}/citations`` and ``/references``: ``{"offset", "next"?, "data":
  [{"citingPaper"|"citedPaper": {...}, "isInfluential", "intents", "contexts"}]}``.
* ``GET /graph/v1/paper/search`` (relevance, ``limit`` <= 100) and ``/paper/search/bulk``
  (``sort=citationCount:desc`` ..., ``{"total", "token", "data"}``), both with
  ``publicationDateOrYear``, ``minCitationCount``, ``fieldsOfStudy``.
* ``GET /graph/v1/snippet/search``: ``{"data": [{"snippet": {...}, "score", "paper":
  {"corpusId", "title", "authors", "openAccessInfo"}}], "retrievalVersion"}``.
* ``POST /graph/v1/paper/batch`` ``{"ids": [...]}`` -> a list (``null`` for unknown ids).
* ``POST /recommendations/v1/papers`` ``{"positivePaperIds", "negativePaperIds"}`` ->
  ``{"recommendedPapers": [...]}``.

Script papers with ``add_paper`` and ``cite``; ``rate_limit(retry_after)`` answers the next
request 429 like the live gateway. Built on ``RoutedEmulator`` (tests/fakes/_routed.py):
requests are recorded with headers (``x-api-key``, ``authorization``) in ``requests``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from tests.fakes._routed import Call, Fail, RoutedEmulator

_PAPER_FIELDS = {
    "paperId", "corpusId", "externalIds", "url", "title", "abstract", "venue", "publicationVenue", "year",
    "referenceCount", "citationCount", "influentialCitationCount", "isOpenAccess", "openAccessPdf",
    "fieldsOfStudy", "s2FieldsOfStudy", "publicationTypes", "publicationDate", "journal", "citationStyles",
    "authors", "tldr",
}
_EDGE_FIELDS = {"contexts", "intents", "isInfluential", "contextsWithIntent"}
_NOT_IN_SEARCH = {"tldr"}


@dataclass
class S2Paper:
    paper_id: str
    corpus_id: int
    title: str
    arxiv_id: str | None = None
    abstract: str = ""
    year: int | None = None
    date: str | None = None
    authors: tuple[str, ...] = ()
    venue: str = ""
    fields: tuple[str, ...] = ("Computer Science",)
    citation_count: int | None = None
    tldr: str | None = None
    snippets: tuple[tuple[str, str], ...] = ()

    def to_json(self, wanted: set[str], citations: int, references: int, influential: int) -> dict[str, Any]:
        full: dict[str, Any] = {
            "paperId": self.paper_id,
            "corpusId": self.corpus_id,
            "externalIds": {**({"ArXiv": self.arxiv_id} if self.arxiv_id else {}), "CorpusId": self.corpus_id},
            "url": f"https://www.semanticscholar.org/paper/{self.paper_id}",
            "title": self.title,
            "abstract": self.abstract or None,
            "venue": self.venue,
            "publicationVenue": None,
            "year": self.year,
            "referenceCount": references,
            "citationCount": self.citation_count if self.citation_count is not None else citations,
            "influentialCitationCount": influential,
            "isOpenAccess": bool(self.arxiv_id),
            "openAccessPdf": {"url": f"https://arxiv.org/pdf/{self.arxiv_id}", "status": "GREEN"} if self.arxiv_id
            else None,
            "fieldsOfStudy": list(self.fields) or None,
            "s2FieldsOfStudy": [{"category": f, "source": "external"} for f in self.fields],
            "publicationTypes": ["JournalArticle"],
            "publicationDate": self.date,
            "journal": {"name": self.venue} if self.venue else None,
            "citationStyles": {"bibtex": f"@article{{x{self.corpus_id}}}"},
            "authors": [{"authorId": str(abs(hash(a)) % 10**9), "name": a} for a in self.authors],
            "tldr": {"model": "tldr@v2.0.0", "text": self.tldr} if self.tldr else None,
        }
        return {k: v for k, v in full.items() if k == "paperId" or k in wanted}


@dataclass
class _Edge:
    citing: str
    cited: str
    influential: bool = False
    intents: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ()


@dataclass
class _State:
    papers: dict[str, S2Paper] = field(default_factory=dict)
    edges: list[_Edge] = field(default_factory=list)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class SemanticScholarEmulator(RoutedEmulator):
    _thread_name = "s2-emulator"
    ROUTES = [
        ("GET", r"/graph/v1/paper/search", "_search"),
        ("GET", r"/graph/v1/paper/search/bulk", "_bulk"),
        ("POST", r"/graph/v1/paper/batch", "_batch"),
        ("GET", r"/graph/v1/snippet/search", "_snippets"),
        ("GET", r"/graph/v1/paper/(?P<id>.+)/(?P<direction>citations|references)", "_edges"),
        ("GET", r"/graph/v1/paper/(?P<id>.+)", "_paper"),
        ("POST", r"/recommendations/v1/papers/?", "_recommend"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._state = _State()

    # ---- scripting

    def add_paper(self, title: str, *, arxiv_id: str | None = None, abstract: str = "", date: str | None = None,
                  authors: tuple[str, ...] = ("A. Author",), venue: str = "arXiv.org",
                  fields: tuple[str, ...] = ("Computer Science",), citation_count: int | None = None,
                  tldr: str | None = None, snippets: tuple[tuple[str, str], ...] = ()) -> str:
        """Add a paper; returns its paperId. ``citation_count`` None counts the ``cite`` edges;
        ``snippets`` are (section, text) passages for snippet search."""
        pid = hashlib.sha1(f"{title}|{arxiv_id}".encode()).hexdigest()
        with self._lock:
            corpus = 1000 + len(self._state.papers)
            year = int(date[:4]) if date else None
            self._state.papers[pid] = S2Paper(pid, corpus, title, arxiv_id, abstract, year, date, tuple(authors),
                                              venue, tuple(fields), citation_count, tldr, tuple(snippets))
        return pid

    def cite(self, citing: str, cited: str, *, influential: bool = False, intents: tuple[str, ...] = (),
             contexts: tuple[str, ...] = ()) -> None:
        """``citing`` cites ``cited`` (paperIds from ``add_paper``)."""
        with self._lock:
            self._state.edges.append(_Edge(citing, cited, influential, tuple(intents), tuple(contexts)))

    def rate_limit(self, retry_after: str | None = "120", path: str | None = None) -> None:
        """The next request (matching ``path``) gets the gateway's 429."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.fail_next(path or "", 429, {"message": "Too Many Requests. Please wait and try again or apply for a "
                                                    "key for higher rate limits.", "code": "429"}, headers=headers)

    # ---- helpers (under the lock)

    def _resolve(self, raw: str) -> S2Paper | None:
        prefix, _, value = raw.partition(":")
        papers = self._state.papers.values()
        if value and prefix.lower() == "arxiv":
            value = re.sub(r"v\d+$", "", value)
            return next((p for p in papers if p.arxiv_id == value), None)
        if value and prefix.lower() == "corpusid":
            return next((p for p in papers if str(p.corpus_id) == value), None)
        return self._state.papers.get(raw.lower())

    def _require(self, raw: str) -> S2Paper:
        paper = self._resolve(raw)
        if paper is None:
            raise Fail(404, f"Paper with id {raw} not found")
        return paper

    def _fields(self, query: dict, allowed: set[str], default: str = "title") -> set[str]:
        wanted = {f.strip() for f in (query.get("fields", [default])[0] or default).split(",") if f.strip()}
        unknown = sorted(f for f in wanted if f.split(".")[0] not in allowed)
        if unknown:
            raise Fail(400, f"Unrecognized or unsupported fields: {unknown}")
        return wanted

    def _json(self, paper: S2Paper, wanted: set[str]) -> dict[str, Any]:
        edges = self._state.edges
        citing = [e for e in edges if e.cited == paper.paper_id]
        refs = sum(1 for e in edges if e.citing == paper.paper_id)
        return paper.to_json(wanted, len(citing), refs, sum(e.influential for e in citing))

    def _int(self, query: dict, name: str, default: int, maximum: int) -> int:
        raw = query.get(name, [str(default)])[0]
        try:
            value = int(raw)
        except ValueError:
            raise Fail(400, f"Invalid {name}: {raw!r}") from None
        if not 0 <= value <= maximum:
            raise Fail(400, f"{name} must be <= {maximum}")
        return value

    def _filtered(self, query: dict) -> list[S2Paper]:
        words = _words(query.get("query", [""])[0])
        found = []
        span = query.get("publicationDateOrYear", [""])[0]
        low, _, high = span.partition(":") if span else ("", "", "")
        min_cites = int(query.get("minCitationCount", ["0"])[0] or 0)
        fields = {f.strip() for f in query.get("fieldsOfStudy", [""])[0].split(",") if f.strip()}
        for paper in self._state.papers.values():
            text = _words(f"{paper.title} {paper.abstract}")
            if words and not all(w in text for w in words):
                continue
            when = paper.date or str(paper.year or "")
            if low and (not when or when < low):
                continue
            if high and (not when or when[: len(high)] > high):
                continue
            if self._json(paper, {"citationCount"})["citationCount"] < min_cites:
                continue
            if fields and not fields & set(paper.fields):
                continue
            found.append(paper)
        return found

    # ---- routes

    def _paper(self, call: Call) -> dict:
        return self._json(self._require(call.params["id"]), self._fields(call.query, _PAPER_FIELDS))

    def _edges(self, call: Call) -> dict:
        paper = self._require(call.params["id"])
        wanted = self._fields(call.query, _PAPER_FIELDS | _EDGE_FIELDS)
        offset, limit = self._int(call.query, "offset", 0, 10_000), self._int(call.query, "limit", 100, 1000)
        citations = call.params["direction"] == "citations"
        edges = [e for e in self._state.edges if (e.cited if citations else e.citing) == paper.paper_id]
        rows = []
        for edge in edges[offset: offset + limit]:
            other = self._state.papers[edge.citing if citations else edge.cited]
            row: dict[str, Any] = {}
            if "contexts" in wanted:
                row["contexts"] = list(edge.contexts)
            if "intents" in wanted:
                row["intents"] = list(edge.intents)
            if "isInfluential" in wanted:
                row["isInfluential"] = edge.influential
            row["citingPaper" if citations else "citedPaper"] = self._json(other, wanted - _EDGE_FIELDS)
            rows.append(row)
        page: dict[str, Any] = {"offset": offset, "data": rows}
        if offset + limit < len(edges):
            page["next"] = offset + limit
        return page

    def _search(self, call: Call) -> dict:
        wanted = self._fields(call.query, _PAPER_FIELDS - _NOT_IN_SEARCH)
        offset, limit = self._int(call.query, "offset", 0, 1000), self._int(call.query, "limit", 10, 100)
        words = _words(call.query.get("query", [""])[0])
        found = self._filtered(call.query)
        found.sort(key=lambda p: -sum(_words(f"{p.title} {p.title} {p.abstract}").count(w) for w in words))
        page: dict[str, Any] = {"total": len(found), "offset": offset,
                                "data": [self._json(p, wanted) for p in found[offset: offset + limit]]}
        if offset + limit < len(found):
            page["next"] = offset + limit
        return page

    def _bulk(self, call: Call) -> dict:
        wanted = self._fields(call.query, _PAPER_FIELDS - _NOT_IN_SEARCH)
        found = self._filtered(call.query)
        sort = call.query.get("sort", ["paperId:asc"])[0]
        key, _, order = sort.partition(":")
        if key not in ("paperId", "publicationDate", "citationCount"):
            raise Fail(400, f"Invalid sort field: {key}")

        def value(paper: S2Paper) -> tuple[bool, Any]:
            v = self._json(paper, {key}).get(key)
            return v is not None, v if v is not None else 0

        found.sort(key=value, reverse=order == "desc")
        return {"total": len(found), "token": None, "data": [self._json(p, wanted) for p in found[:1000]]}

    def _batch(self, call: Call) -> list:
        wanted = self._fields(call.query, _PAPER_FIELDS)
        body = call.json
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            raise Fail(400, "Body must be {\"ids\": [...]}")
        result = []
        for raw in ids:
            paper = self._resolve(str(raw))
            result.append(self._json(paper, wanted) if paper else None)
        return result

    def _snippets(self, call: Call) -> dict:
        query = call.query
        text = query.get("query", [""])[0]
        if not text:
            raise Fail(400, "Missing required parameter: 'query'")
        limit = self._int(query, "limit", 10, 1000)
        words = set(_words(text))
        only = [self._resolve(x.strip()) for x in query.get("paperIds", [""])[0].split(",") if x.strip()]
        papers = [p for p in only if p] if query.get("paperIds") else list(self._filtered({**query, "query": [""]}))
        hits = []
        for paper in papers:
            for section, passage in paper.snippets:
                score = len(words & set(_words(passage))) / max(1, len(words))
                if score > 0:
                    hits.append((score, paper, section, passage))
        hits.sort(key=lambda h: -h[0])
        data = [{
            "snippet": {"text": passage, "snippetKind": "body", "section": section,
                        "snippetOffset": {"start": 0, "end": len(passage)},
                        "annotations": {"refMentions": [], "sentences": [{"start": 0, "end": len(passage)}]}},
            "score": round(score, 3),
            "paper": {"corpusId": str(paper.corpus_id), "title": paper.title, "authors": list(paper.authors),
                      "openAccessInfo": {"license": "CCBY", "status": "GREEN", "disclaimer": "..."}},
        } for score, paper, section, passage in hits[:limit]]
        return {"data": data, "retrievalVersion": "s2-snippets-emulated"}

    def _recommend(self, call: Call) -> dict:
        wanted = self._fields(call.query, _PAPER_FIELDS)
        limit = self._int(call.query, "limit", 100, 500)
        body = call.json
        body = body if isinstance(body, dict) else {}
        positive_ids, negative_ids = body.get("positivePaperIds"), body.get("negativePaperIds") or []
        if not isinstance(positive_ids, list) or not positive_ids:
            raise Fail(400, "positivePaperIds must be a non-empty list")
        positive = [self._require(str(x)) for x in positive_ids]
        negative = [self._require(str(x)) for x in negative_ids]
        seen = {p.paper_id for p in positive + negative}

        def vocabulary(papers: list[S2Paper]) -> set[str]:
            return {w for p in papers for w in _words(f"{p.title} {p.abstract}") if len(w) > 3}

        like, unlike = vocabulary(positive), vocabulary(negative)
        scored = []
        for paper in self._state.papers.values():
            if paper.paper_id in seen:
                continue
            words = set(_words(f"{paper.title} {paper.abstract}"))
            score = len(words & like) - len(words & unlike)
            if score > 0:
                scored.append((score, paper))
        scored.sort(key=lambda s: -s[0])
        return {"recommendedPapers": [self._json(p, wanted) for _, p in scored[:limit]]}
