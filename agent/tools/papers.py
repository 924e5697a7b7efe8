"""``hf_papers``: find, read and follow research papers.

Hugging Face's papers pages (daily/trending papers, search, paper pages and the models,
datasets and collections that cite a paper), Semantic Scholar (citation graph, filtered
search, passages inside papers, recommendations) and arXiv's HTML full text (ar5iv when
arXiv has none), in compact Markdown lists whose ids feed the next call. Read-only: it never
needs approval. Sources live in ``papers_sources``, the full-text parser in ``papers_fulltext``,
the Hub-resource listings in ``papers_resources``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from pydantic import Field

from agent.net import NetError
from agent.tools.base import Tool, ToolContext, ToolParams, ToolResult
from agent.tools.knowledge import budgeted, failed, net_of
from agent.tools.papers_resources import collection_section, repo_section
from agent.tools.papers_sources import (
    Hub, Paper, SemanticScholar, arxiv_id, base_id, date_range, fetch_full_text, fields_of_study, s2_paper_id,
)

Operation = Literal[
    "trending", "search", "paper_details", "read_paper", "citation_graph", "snippet_search", "recommend",
    "find_datasets", "find_models", "find_collections", "find_all_resources",
]
SECTION_MAX_CHARS = 8_000
EDGES_FETCHED = 100  # citation_graph ranks this many of S2's edges and shows `limit`
_DATE = r"^\d{4}(-\d{2}){0,2}$"
_NEEDS_PAPER = ("paper_details", "read_paper", "citation_graph", "find_datasets", "find_models",
                "find_collections", "find_all_resources")


class HfPapersParams(ToolParams):
    operation: Operation = Field(description=(
        "trending: today's (or `date`'s) Hugging Face daily papers, optionally filtered by `query`. "
        "search: papers matching `query` (with date/categories/min_citations/sort_by filters it searches "
        "Semantic Scholar). paper_details: metadata, abstract, citation counts, links. read_paper: full text "
        "(no `section`: abstract + table of contents; then one section). citation_graph: papers citing / cited "
        "by a paper. snippet_search: passages inside papers matching `query`. recommend: papers like "
        "`positive_ids` and unlike `negative_ids`. find_models / find_datasets / find_collections / "
        "find_all_resources: Hub repos and collections linked to a paper."))
    query: str | None = Field(None, description="Search words (search, snippet_search; filters trending).")
    arxiv_id: str | None = Field(None, description="arXiv id like 2310.06825 (a URL or 'arXiv:' prefix is fine).")
    section: str | None = Field(None, description="read_paper: section number ('3', '3.2', 'A') or title words "
                                                  "('experiments').")
    direction: Literal["citations", "references", "both"] = Field(
        "both", description="citation_graph: papers citing it, papers it cites, or both.")
    date: str | None = Field(None, pattern=_DATE, description="YYYY-MM-DD: trending day, or search papers "
                                                              "published that day.")
    date_from: str | None = Field(None, pattern=_DATE, description="search/snippet_search: published on or "
                                                                   "after (YYYY, YYYY-MM or YYYY-MM-DD).")
    date_to: str | None = Field(None, pattern=_DATE, description="search/snippet_search: published on or before.")
    categories: str | None = Field(None, description="Fields of study, comma-separated: 'Computer Science' or "
                                                     "arXiv categories like 'cs.CL,stat.ML'.")
    min_citations: int | None = Field(None, ge=0, description="search/snippet_search: at least this many "
                                                              "citations.")
    sort_by: Literal["relevance", "citationCount", "publicationDate"] = Field(
        "relevance", description="search and citation_graph order.")
    positive_ids: str | None = Field(None, description="recommend: comma-separated arXiv ids (or Semantic "
                                                       "Scholar ids) to find papers like.")
    negative_ids: str | None = Field(None, description="recommend: comma-separated ids to steer away from.")
    sort: Literal["downloads", "likes", "trending"] = Field(
        "downloads", description="find_models / find_datasets / find_collections order.")
    limit: int = Field(10, ge=1, le=50, description="How many results (1-50).")


class HfPapersTool(Tool):
    name = "hf_papers"
    description = (
        "Research papers: trending Hugging Face daily papers, search (Hub or Semantic Scholar with date, "
        "category and citation filters), paper details, full text by section (arXiv HTML / ar5iv), citation "
        "graph, passage (snippet) search, recommendations, and the models/datasets/collections on the Hub "
        "that cite a paper. Results list arXiv ids you can pass to the next operation. Typical flow: search "
        "-> paper_details -> read_paper (table of contents, then a section) -> find_all_resources."
    )
    Params = HfPapersParams

    async def run(self, params: HfPapersParams, ctx: ToolContext) -> ToolResult:
        problem = _invalid(params)
        if problem:
            return ToolResult(f"ERROR: hf_papers {params.operation}: {problem}", success=False)
        net = net_of(ctx)
        op = _Operations(params, ctx, Hub(net), SemanticScholar(net))
        try:
            return await getattr(op, params.operation)()
        except NetError as exc:
            result = failed(exc, f"hf_papers {params.operation}")
            result.output += _rate_hint(exc, op.s2)
            return result


def _invalid(p: HfPapersParams) -> str | None:
    if p.operation in ("search", "snippet_search") and not (p.query or "").strip():
        return "`query` is required (the words to search for)."
    if p.operation in _NEEDS_PAPER:
        if not p.arxiv_id:
            return "`arxiv_id` is required (e.g. 2310.06825; find one with search or trending)."
        if not arxiv_id(p.arxiv_id):
            return f"{p.arxiv_id!r} is not an arXiv id (expected e.g. 2310.06825 or hep-th/9901001)."
    if p.operation == "trending" and p.date and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.date):
        return "`date` must be a day, YYYY-MM-DD."
    if p.operation == "recommend" and not (p.positive_ids or p.arxiv_id):
        return "`positive_ids` (or `arxiv_id`) is required: the papers the recommendations should resemble."
    return None


def _rate_hint(exc: NetError, s2: SemanticScholar) -> str:
    if exc.kind == "rate_limited" and exc.url.startswith(s2.base) and not s2.has_key:
        return " Semantic Scholar shares a small quota among anonymous users; setting S2_API_KEY raises it."
    return ""


def _ids(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _cut(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text or "")
    return match.group(1) if match else (text or "")


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


class _Operations:
    """One call's work; a method per operation, each returning the finished result."""

    def __init__(self, p: HfPapersParams, ctx: ToolContext, hub: Hub, s2: SemanticScholar) -> None:
        self.p, self.ctx, self.hub, self.s2 = p, ctx, hub, s2
        self.aid = arxiv_id(p.arxiv_id or "") or ""

    # ---- shared rendering

    def _link(self, paper: Paper) -> str:
        """One link per entry: the Hub page of a Hub paper, else arXiv's, else Semantic Scholar's."""
        if paper.arxiv_id:
            aid = base_id(paper.arxiv_id)
            on_hub = paper.upvotes is not None
            return f"{self.hub.base}/papers/{aid}" if on_hub else f"{self.hub.net.endpoints.arxiv}/abs/{aid}"
        if paper.s2_id:
            return f"https://www.semanticscholar.org/paper/{paper.s2_id}"
        return ""

    def _entry(self, i: int, paper: Paper) -> str:
        meta = [f"arXiv {paper.arxiv_id}" if paper.arxiv_id else f"S2 {paper.s2_id}" if paper.s2_id else ""]
        meta.append(paper.date)
        if paper.upvotes is not None:
            meta.append(f"▲ {_num(paper.upvotes)}")
        if paper.citations is not None:
            meta.append(f"{_num(paper.citations)} citations")
        if paper.comments:
            meta.append(f"{_num(paper.comments)} comments")
        if paper.github:
            stars = f" ★{_num(paper.github_stars)}" if paper.github_stars else ""
            meta.append(f"code: {paper.github}{stars}")
        if paper.is_influential:
            meta.append("influential")
        if paper.intents:
            meta.append("intent: " + "/".join(paper.intents))
        lines = [f"{i}. **{paper.title or '(untitled)'}** — " + " · ".join(m for m in meta if m)]
        gist = paper.ai_summary or paper.tldr or _first_sentence(paper.summary)
        if gist:
            lines.append(f"   {_cut(gist, 240)}")
        if paper.contexts:
            lines.append(f"   > {_cut(paper.contexts[0], 220)}")
        link = self._link(paper)
        if link:
            lines.append(f"   {link}")
        return "\n".join(lines)

    def _listing(self, header: str, papers: list[Paper], label: str, footer: str = "") -> ToolResult:
        body = "\n".join(self._entry(i, paper) for i, paper in enumerate(papers, 1))
        text = f"{header}\n\n{body}" + (f"\n\n{footer}" if footer else "")
        return budgeted(text, self.ctx, label)

    # ---- operations

    async def trending(self) -> ToolResult:
        p = self.p
        query = (p.query or "").strip().lower()
        fetch = 50 if query else p.limit
        papers = await self.hub.daily_papers(date=p.date, limit=fetch, sort=None if p.date else "trending")
        if p.date:
            papers.sort(key=lambda x: x.upvotes or 0, reverse=True)
        if query:
            words = query.split()
            papers = [x for x in papers if all(w in " ".join([x.title, x.summary, *x.keywords]).lower() for w in words)]
        papers = papers[: p.limit]
        day = p.date or "recent days"
        if not papers:
            what = f" matching {p.query!r}" if query else ""
            return ToolResult(f"No daily papers{what} for {day} on the Hub. Try another `date`, or `search`.")
        what = f" matching {p.query!r}" if query else ""
        header = f"# Trending papers on Hugging Face ({day}){what}: {len(papers)}"
        return self._listing(header, papers, "papers-trending",
                             "Next: paper_details / read_paper / find_all_resources with an arxiv_id.")

    async def search(self) -> ToolResult:
        p = self.p
        query = (p.query or "").strip()
        filtered = any((p.date, p.date_from, p.date_to, p.categories, p.min_citations is not None))
        note = ""
        if not filtered and p.sort_by == "relevance":
            papers = await self.hub.search(query, p.limit)
            note = "Nothing on Hugging Face papers; "
            if papers:
                return self._listing(f"# Hugging Face papers matching {query!r}: {len(papers)}", papers[: p.limit],
                                     "papers-search", "Next: paper_details or read_paper with an arxiv_id; "
                                     "add date_from/min_citations/sort_by to search Semantic Scholar.")
        papers, total = await self.s2.search(
            query, limit=p.limit, sort_by=p.sort_by, dates=date_range(p.date, p.date_from, p.date_to),
            min_citations=p.min_citations, fields=fields_of_study(p.categories))
        if not papers:
            return ToolResult(f"No papers match {query!r} with these filters on the Hub or Semantic Scholar. "
                              "Try fewer words or looser filters.")
        order = {"relevance": "by relevance", "citationCount": "most cited first",
                 "publicationDate": "newest first"}[p.sort_by]
        of = f" of {_num(total)}" if isinstance(total, int) else ""
        header = f"# {note}Semantic Scholar papers matching {query!r} ({order}): {len(papers)}{of}"
        footer = ("Papers without an arXiv id can still be passed to recommend by their S2 id."
                  if any(not x.arxiv_id for x in papers) else "")
        return self._listing(header, papers, "papers-search", footer)

    async def paper_details(self) -> ToolResult:
        aid = self.aid
        hub_result, s2_result = await asyncio.gather(self.hub.paper(aid), self.s2.paper(f"arXiv:{base_id(aid)}"),
                                                     return_exceptions=True)
        for outcome in (hub_result, s2_result):  # a bug is an error result from the router, not "not found"
            if isinstance(outcome, BaseException) and not isinstance(outcome, NetError):
                raise outcome
        hub_paper = hub_result if isinstance(hub_result, Paper) else None
        s2_paper = s2_result if isinstance(s2_result, Paper) else None
        if hub_paper is None and s2_paper is None:
            errors = [r for r in (hub_result, s2_result) if isinstance(r, NetError)]
            if errors and len(errors) == 2:
                raise errors[0]
            if errors:
                return ToolResult(f"ERROR: hf_papers paper_details: no paper {aid} on the Hub, and Semantic "
                                  f"Scholar could not be asked: {errors[0].message}", success=False)
            return ToolResult(f"ERROR: hf_papers paper_details: no paper with arXiv id {aid} on the Hugging Face "
                              "Hub or Semantic Scholar. Check the id (search finds it by title).", success=False)
        return budgeted(self._details(aid, hub_paper, s2_paper, hub_result, s2_result), self.ctx, "paper-details")

    def _details(self, aid: str, hub: Paper | None, s2: Paper | None, hub_raw: Any, s2_raw: Any) -> str:
        main = hub or s2
        assert main is not None
        out = [f"# {main.title or (s2.title if s2 else '')}"]
        meta = [f"arXiv {base_id(aid)}", f"published {main.date or (s2.date if s2 else '')}"]
        if hub and hub.upvotes is not None:
            meta.append(f"▲ {_num(hub.upvotes)} upvotes")
        if hub and hub.comments:
            meta.append(f"{_num(hub.comments)} comments")
        out.append(" · ".join(meta))
        authors = main.authors or (s2.authors if s2 else [])
        if authors:
            more = f" (+{len(authors) - 12} more)" if len(authors) > 12 else ""
            out.append("Authors: " + ", ".join(authors[:12]) + more)
        if s2:
            cites = [f"Citations: {_num(s2.citations)}" + (f" ({_num(s2.influential)} influential)"
                                                           if s2.influential else "")]
            if s2.references is not None:
                cites.append(f"References: {_num(s2.references)}")
            if s2.venue:
                cites.append(f"Venue: {s2.venue}")
            if s2.fields:
                cites.append("Fields: " + ", ".join(s2.fields))
            out.append(" · ".join(cites))
        elif isinstance(s2_raw, NetError):
            out.append(f"(Citation counts unavailable: {s2_raw.message})")
        if hub and (hub.github or hub.project_page):
            code = [f"Code: {hub.github}" + (f" (★ {_num(hub.github_stars)})" if hub.github_stars else "")
                    if hub.github else "", f"Project page: {hub.project_page}" if hub.project_page else ""]
            out.append(" · ".join(c for c in code if c))
        if hub and hub.keywords:
            out.append("Keywords: " + ", ".join(hub.keywords[:12]))
        if s2 and s2.tldr:
            out.append(f"TL;DR: {s2.tldr}")
        if hub and hub.ai_summary:
            out.append(f"AI summary: {hub.ai_summary}")
        if hub is None:
            out.append("(Not on Hugging Face papers" + (f": {hub_raw.message})" if isinstance(hub_raw, NetError)
                                                         else "; no upvotes or linked repos.)"))
        abstract = (hub.summary if hub else "") or (s2.summary if s2 else "")
        if abstract:
            out += ["", "## Abstract", abstract]
        a = base_id(aid)
        e = self.hub.net.endpoints
        links = [f"{self.hub.base}/papers/{a}" if hub else "", f"{e.arxiv}/abs/{a}", f"{e.arxiv}/pdf/{a}"]
        out += ["", "Links: " + " · ".join(x for x in links if x)]
        out.append(f"Next: read_paper arxiv_id={a} (contents, then a section) · citation_graph · "
                   "find_all_resources")
        return "\n".join(out)

    async def read_paper(self) -> ToolResult:
        from agent.tools.papers_fulltext import contents, contents_page, find_section, parse_paper, section_page

        aid = self.aid
        full = await fetch_full_text(self.hub.net, aid)
        if full is None:
            return ToolResult(f"ERROR: hf_papers read_paper: arXiv has no HTML version of {aid} and ar5iv has none "
                              f"either (the paper may exist only as a PDF: {self.hub.net.endpoints.arxiv}/pdf/"
                              f"{base_id(aid)}). Use paper_details for the abstract, or snippet_search with "
                              f"arxiv_id={aid} to find passages in it.", success=False)
        parsed = await asyncio.to_thread(parse_paper, full.html)
        source = f"Source: {full.source} ({full.url})" + (" — page cut at the size limit" if full.truncated else "")
        if not self.p.section:
            return budgeted(contents_page(parsed, aid, source), self.ctx, "paper-contents")
        section = find_section(parsed.sections, self.p.section)
        if section is None:
            toc = contents(parsed.sections) or "(no sections found)"
            return ToolResult(f"ERROR: hf_papers read_paper: no section {self.p.section!r} in {aid}. Sections:\n{toc}",
                              success=False)
        return ToolResult(section_page(parsed, section, aid, source, self.ctx.spill_dir, SECTION_MAX_CHARS))

    async def citation_graph(self) -> ToolResult:
        p, aid = self.p, self.aid
        directions = ["citations", "references"] if p.direction == "both" else [p.direction]
        fetched = await asyncio.gather(*(self.s2.edges(f"arXiv:{base_id(aid)}", d, max(EDGES_FETCHED, p.limit))
                                         for d in directions))
        if all(result is None for result in fetched):
            return ToolResult(f"ERROR: hf_papers citation_graph: Semantic Scholar has no paper with arXiv id {aid}. "
                              "Check the id; very new papers take a few days to appear there.", success=False)
        parts = [f"# Citation graph of arXiv {aid}"]
        for direction, result in zip(directions, fetched):
            papers, more = result or ([], False)
            ranked = self._rank_edges(papers)[: p.limit]
            what = "Cited by (papers citing it)" if direction == "citations" else "References (papers it cites)"
            basis = {"relevance": "influential first, then most cited", "citationCount": "most cited first",
                     "publicationDate": "newest first"}[p.sort_by]
            scope = f"{len(ranked)} of the first {len(papers)}" + (" (S2 has more)" if more else "")
            parts.append(f"\n## {what}: {scope}, {basis}")
            parts += [self._entry(i, x) for i, x in enumerate(ranked, 1)] or ["(none)"]
        return budgeted("\n".join(parts), self.ctx, "papers-citations")

    def _rank_edges(self, papers: list[Paper]) -> list[Paper]:
        if self.p.sort_by == "publicationDate":
            return sorted(papers, key=lambda x: x.date or "", reverse=True)
        if self.p.sort_by == "citationCount":
            return sorted(papers, key=lambda x: x.citations or 0, reverse=True)
        return sorted(papers, key=lambda x: (bool(x.is_influential), x.citations or 0), reverse=True)

    async def snippet_search(self) -> ToolResult:
        p = self.p
        query = (p.query or "").strip()
        pid = f"arXiv:{base_id(self.aid)}" if self.aid else None
        rows = await self.s2.snippets(query, limit=p.limit, pid=pid, dates=date_range(p.date, p.date_from, p.date_to),
                                      min_citations=p.min_citations, fields=fields_of_study(p.categories))
        if not rows:
            within = f" in arXiv {self.aid}" if self.aid else ""
            return ToolResult(f"No passages{within} match {query!r} on Semantic Scholar. Try other words.")
        arxiv_ids = await self.s2.arxiv_ids([str((r.get("paper") or {}).get("corpusId") or "") for r in rows])
        out = [f"# Passages matching {query!r}" + (f" in arXiv {self.aid}" if self.aid else "") + f": {len(rows)}"]
        for i, row in enumerate(rows, 1):
            snippet, paper = row.get("snippet") or {}, row.get("paper") or {}
            corpus = str(paper.get("corpusId") or "")
            ident = f"arXiv {arxiv_ids[corpus]}" if arxiv_ids.get(corpus) else f"CorpusId:{corpus}" if corpus else ""
            meta = [ident, f"section: {snippet['section']}" if snippet.get("section") else "",
                    f"score {row['score']:.2f}" if isinstance(row.get("score"), (int, float)) else ""]
            out.append(f"{i}. **{' '.join(str(paper.get('title') or '(untitled)').split())}** — "
                       + " · ".join(m for m in meta if m))
            out.append(f"   > {_cut(str(snippet.get('text') or ''), 700)}")
        out.append("\nNext: read_paper with an arXiv id and the section named above.")
        return budgeted("\n".join(out), self.ctx, "papers-snippets")

    async def recommend(self) -> ToolResult:
        p = self.p
        raw_positive = _ids(p.positive_ids) + ([p.arxiv_id] if p.arxiv_id else [])
        raw_negative = _ids(p.negative_ids)
        bad = [x for x in raw_positive + raw_negative if s2_paper_id(x) is None]
        if bad:
            return ToolResult("ERROR: hf_papers recommend: not paper ids: " + ", ".join(map(repr, bad)) +
                              " (use arXiv ids like 2310.06825, or Semantic Scholar ids).", success=False)
        positive = list(dict.fromkeys(s2_paper_id(x) for x in raw_positive))
        negative = [x for x in dict.fromkeys(s2_paper_id(x) for x in raw_negative) if x not in positive]
        papers = await self.s2.recommend(positive, negative, p.limit)  # type: ignore[arg-type]
        if not papers:
            return ToolResult("Semantic Scholar has no recommendations for these papers (they may be too new).")
        header = f"# Papers like {', '.join(positive)}" + (f" (unlike {', '.join(negative)})" if negative else "")
        return self._listing(header + f": {len(papers)}", papers, "papers-recommend")

    # ---- Hub resources

    def _repos(self, kind: str) -> Any:
        return repo_section(self.hub, kind, self.aid, self.p.sort, self.p.limit)

    def _collections(self) -> Any:
        return collection_section(self.hub, self.aid, self.p.sort, self.p.limit)

    async def find_models(self) -> ToolResult:
        return budgeted(await self._repos("models"), self.ctx, "papers-models")

    async def find_datasets(self) -> ToolResult:
        return budgeted(await self._repos("datasets"), self.ctx, "papers-datasets")

    async def find_collections(self) -> ToolResult:
        return budgeted(await self._collections(), self.ctx, "papers-collections")

    async def find_all_resources(self) -> ToolResult:
        results = await asyncio.gather(self._repos("models"), self._repos("datasets"), self._collections(),
                                       return_exceptions=True)
        names = ("Models", "Datasets", "Collections")
        parts = [f"# Hub resources for arXiv {self.aid} ({self.hub.base}/papers/{base_id(self.aid)})"]
        errors = 0
        for name, result in zip(names, results):
            if isinstance(result, NetError):
                errors += 1
                parts.append(f"## {name}: could not be listed: {result.message}")
            elif isinstance(result, BaseException):
                raise result
            else:
                parts.append(result)
        if errors == len(names):
            first = next(r for r in results if isinstance(r, NetError))
            raise first  # type: ignore[misc]
        return budgeted("\n\n".join(parts), self.ctx, "papers-resources")


__all__ = ["HfPapersParams", "HfPapersTool"]
