"""A ranked full-text index of documentation pages and API endpoints, on disk (SQLite FTS5).

The docs tools fetch a documentation section once, store its pages here and answer every
later query from the file, in this session and the next ones, until the section is older
than its TTL (the reference rebuilt an in-memory Whoosh index in every process).

* **Ranking** is FTS5's ``bm25()`` with column weights: a word in a page's title counts far
  more than one in its headings, which counts more than one in its body. The ``porter
  unicode61`` tokenizer stems, so "training" finds "train" and "trainer".
* **Queries are never FTS5 syntax.** Each word of the user's text becomes a quoted FTS5
  string (quotes doubled), so quotes, hyphens, colons, parentheses, ``AND``/``OR``/``NEAR``
  and ``*`` are just text. Pages that have every word rank first; pages with only some of
  them fill the rest of the answer, unless they score far below the best hit.
* **Blocking work stays off the event loop**: every method here is synchronous and the
  tools call them through ``asyncio.to_thread``. Each call opens its own connection (WAL,
  so readers never wait for a writer); writes go through one lock per file, and a section
  is replaced in a single transaction, so a reader sees the old pages or the new ones.
* **The file is only a cache**: a damaged one is rebuilt and a locked one waited out
  (``agent.docs_index_recovery``); a failure is a sentence, ``DocsIndexError``.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass

from agent.docs_index_recovery import DocsIndexError, IndexFile, write_lock

#: column weights for bm25(): title, headings, group (sidebar heading), body
DOC_WEIGHTS = (10.0, 4.0, 2.0, 1.0)
#: column weights for the API index: summary, path, operation id, tags, parameters, description
API_WEIGHTS = (8.0, 5.0, 4.0, 3.0, 2.0, 1.0)

#: a page matching only some of the words is shown only when it scores at least this share of the best
WEAK = 0.1

# Words that only make an all-words query fail ("how to train a model" needs "train" and "model").
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it me my of on or the to use using what "
    "when where which with you your".split()
)

#: bumped when the tables change; an older file is rebuilt from scratch (it is only a cache)
SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sections (
    name TEXT PRIMARY KEY,
    built_at REAL NOT NULL,
    pages INTEGER NOT NULL,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pages (
    id INTEGER PRIMARY KEY,
    section TEXT NOT NULL,
    position INTEGER NOT NULL,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    headings TEXT NOT NULL,
    grp TEXT NOT NULL,
    body TEXT NOT NULL,
    fetched_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pages_by_section ON pages (section, position);
CREATE INDEX IF NOT EXISTS pages_by_url ON pages (url);
-- the text lives once, in pages; the FTS5 table indexes it (external content)
CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(
    title, headings, grp, body, content = 'pages', content_rowid = 'id',
    tokenize = 'porter unicode61'
);
CREATE TABLE IF NOT EXISTS api_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS api USING fts5(
    summary, path_words, operation_id, tags, params, description,
    method UNINDEXED, path UNINDEXED, position UNINDEXED,
    tokenize = 'porter unicode61'
);
"""
_TABLES = ("sections", "pages", "docs", "api_meta", "api")


@dataclass(frozen=True)
class DocPage:
    url: str
    title: str
    group: str  # the sidebar heading the page sits under ("" when none)
    text: str  # the page's Markdown
    fetched_at: float = 0.0


@dataclass(frozen=True)
class DocHit:
    section: str
    url: str
    title: str
    group: str
    snippet: str
    score: float | None  # None when listing without a query


@dataclass(frozen=True)
class SectionInfo:
    name: str
    built_at: float
    pages: int
    source: str


@dataclass(frozen=True)
class ApiEndpoint:
    method: str
    path: str
    operation_id: str
    summary: str
    description: str
    tags: tuple[str, ...]
    params: str  # parameter names and descriptions, for the index


def headings_of(markdown: str) -> str:
    """The Markdown headings of a page (outside code blocks), one per line."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            found.append(line.lstrip("#").strip())
    return "\n".join(found)


_COMMENT = re.compile(r"<!--.*?-->", re.S)
_WORD = re.compile(r"\w", re.UNICODE)
_PHRASE = re.compile(r'"([^"]*)"')


def clean_markdown(markdown: str) -> str:
    """The page without HTML comments (licence headers), for indexing and snippets."""
    return _COMMENT.sub("", markdown).strip()


def fts_queries(text: str) -> tuple[str, str] | None:
    """(all-words query, any-word query) for FTS5 MATCH, or None when ``text`` has no words.

    Every word (and every "quoted phrase") is emitted as an FTS5 string, so nothing the user
    typed is read as FTS5 syntax. Common English words are dropped unless nothing else is left.
    """
    phrases: list[str] = [p for p in _PHRASE.findall(text) if _WORD.search(p)]
    rest = _PHRASE.sub(" ", text).replace('"', " ")
    words = [w for w in rest.split() if _WORD.search(w)]
    useful = [w for w in words if w.lower().strip(".,;:!?()[]{}'") not in _STOPWORDS]
    terms = phrases + (useful or ([] if phrases else words))
    if not terms:
        return None
    quoted = ['"' + t.replace('"', '""') + '"' for t in dict.fromkeys(terms)]
    return " ".join(quoted), " OR ".join(quoted)


class DocsIndex(IndexFile):
    """The index: its tables and its queries (the file itself, its damage and its locks: ``IndexFile``).
    Cheap to create; the file and its tables appear on first use."""

    @staticmethod
    def _setup(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode = WAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            conn.executescript("".join(f"DROP TABLE IF EXISTS {t};" for t in _TABLES))
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif conn.execute("SELECT count(*) FROM sqlite_master WHERE name IN (?, ?, ?, ?, ?)", _TABLES).fetchone()[0] \
                < len(_TABLES):
            conn.executescript(_SCHEMA)  # a table gone missing: make it again

    # ---- docs sections ----

    def section(self, name: str) -> SectionInfo | None:
        def work(conn: sqlite3.Connection) -> SectionInfo | None:
            row = conn.execute("SELECT name, built_at, pages, source FROM sections WHERE name = ?", (name,)).fetchone()
            return SectionInfo(*row) if row else None

        return self._run(work)

    def replace_section(self, name: str, pages: list[DocPage], source: str, built_at: float | None = None) -> None:
        """Swap a section's pages for ``pages`` in one transaction."""
        built_at = time.time() if built_at is None else built_at
        rows = [
            (name, i, p.url, p.title, headings_of(p.text), p.group, clean_markdown(p.text), p.fetched_at or built_at)
            for i, p in enumerate(pages)
        ]

        def work(conn: sqlite3.Connection) -> None:
            with write_lock(self.path), _transaction(conn):
                # an external-content index forgets a row only when told its old text
                conn.execute("INSERT INTO docs (docs, rowid, title, headings, grp, body) "
                             "SELECT 'delete', id, title, headings, grp, body FROM pages WHERE section = ?", (name,))
                conn.execute("DELETE FROM pages WHERE section = ?", (name,))
                for row in rows:
                    cur = conn.execute(
                        "INSERT INTO pages (section, position, url, title, headings, grp, body, fetched_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
                    conn.execute("INSERT INTO docs (rowid, title, headings, grp, body) VALUES (?, ?, ?, ?, ?)",
                                 (cur.lastrowid, row[3], row[4], row[5], row[6]))
                conn.execute("INSERT OR REPLACE INTO sections (name, built_at, pages, source) VALUES (?, ?, ?, ?)",
                             (name, built_at, len(rows), source))

        self._run(work)

    def search(self, query: str, sections: list[str], limit: int) -> list[DocHit]:
        """Best pages first: every word present, then any word (bm25 within each tier)."""
        queries = fts_queries(query)
        if not queries or not sections:
            return []
        marks = ",".join("?" * len(sections))
        weights = ", ".join(str(w) for w in DOC_WEIGHTS)
        sql = (
            f"SELECT p.section, p.url, p.title, p.grp, snippet(docs, 3, '**', '**', '…', 24), "
            f"bm25(docs, {weights}) AS rank FROM docs JOIN pages p ON p.id = docs.rowid "
            f"WHERE docs MATCH ? AND p.section IN ({marks}) ORDER BY rank LIMIT ?"
        )

        def work(conn: sqlite3.Connection) -> list[DocHit]:
            hits: list[DocHit] = []
            seen: set[str] = set()
            for tier, match in enumerate(queries):
                if len(hits) >= limit:
                    break
                for section, url, title, grp, snip, rank in conn.execute(sql, (match, *sections, limit)):
                    if url in seen or len(hits) >= limit or (tier and hits and -rank < WEAK * hits[0].score):
                        continue
                    seen.add(url)
                    hits.append(DocHit(section, url, title, grp, _one_line(snip), round(-rank, 2)))
            return hits

        return self._run(work)

    def pages(self, sections: list[str], limit: int, offset: int = 0) -> tuple[list[DocHit], int]:
        """The sections' pages in sidebar order (with the start of each as its snippet), and how many there are."""
        if not sections:
            return [], 0
        marks = ",".join("?" * len(sections))
        order = "CASE section " + " ".join(f"WHEN ? THEN {i}" for i in range(len(sections))) + " END"

        def work(conn: sqlite3.Connection) -> tuple[list[DocHit], int]:
            total = conn.execute(f"SELECT count(*) FROM pages WHERE section IN ({marks})", sections).fetchone()[0]
            rows = conn.execute(
                f"SELECT section, url, title, grp, substr(body, 1, 400) FROM pages WHERE section IN ({marks}) "
                f"ORDER BY {order}, position LIMIT ? OFFSET ?",
                (*sections, *sections, limit, offset)).fetchall()
            return [DocHit(s, u, t, g, _glimpse(body), None) for s, u, t, g, body in rows], total

        return self._run(work)

    def page_text(self, url: str) -> tuple[str, float] | None:
        """A stored page's Markdown (comments removed) and when it was fetched."""
        def work(conn: sqlite3.Connection) -> tuple[str, float] | None:
            row = conn.execute("SELECT body, fetched_at FROM pages WHERE url = ? ORDER BY fetched_at DESC LIMIT 1",
                               (url,)).fetchone()
            return (row[0], float(row[1])) if row else None

        return self._run(work)

    # ---- the API spec ----

    def api_version(self) -> str | None:
        def work(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM api_meta WHERE key = 'digest'").fetchone()
            return row[0] if row else None

        return self._run(work)

    def replace_api(self, digest: str, endpoints: list[ApiEndpoint]) -> None:
        rows = [
            (e.summary, _path_words(e.path), _split_camel(e.operation_id), " ".join(e.tags), e.params, e.description,
             e.method, e.path, i)
            for i, e in enumerate(endpoints)
        ]

        def work(conn: sqlite3.Connection) -> None:
            with write_lock(self.path), _transaction(conn):
                conn.execute("DELETE FROM api")
                conn.executemany(
                    "INSERT INTO api (summary, path_words, operation_id, tags, params, description, method, path, "
                    "position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                conn.execute("INSERT OR REPLACE INTO api_meta (key, value) VALUES ('digest', ?)", (digest,))

        self._run(work)

    def search_api(self, query: str, limit: int) -> list[tuple[str, str, float]]:
        """(method, path, score) of the best endpoints, every word first, then any word."""
        queries = fts_queries(query)
        if not queries:
            return []
        weights = ", ".join(str(w) for w in API_WEIGHTS)
        sql = f"SELECT method, path, bm25(api, {weights}) AS rank FROM api WHERE api MATCH ? ORDER BY rank LIMIT ?"

        def work(conn: sqlite3.Connection) -> list[tuple[str, str, float]]:
            found: list[tuple[str, str, float]] = []
            seen: set[tuple[str, str]] = set()
            for tier, match in enumerate(queries):
                for method, path, rank in conn.execute(sql, (match, limit)):
                    if tier and found and -rank < WEAK * found[0][2]:
                        continue
                    if (method, path) not in seen and len(found) < limit:
                        seen.add((method, path))
                        found.append((method, path, round(-rank, 2)))
            return found

        return self._run(work)


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (a failing ROLLBACK does not hide it)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if kind is None:
            self.conn.execute("COMMIT")
            return
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _glimpse(body: str, size: int = 200) -> str:
    text = _one_line(re.sub(r"^#+\s*", "", body, flags=re.M))
    return text if len(text) <= size else text[:size].rsplit(" ", 1)[0] + "…"


def _path_words(path: str) -> str:
    return " ".join(w for w in re.split(r"[/{}_\-.]+", path) if w)


def _split_camel(name: str) -> str:
    return f"{name} " + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)


__all__ = [
    "API_WEIGHTS", "DOC_WEIGHTS", "SCHEMA_VERSION", "WEAK", "ApiEndpoint", "DocHit", "DocPage", "DocsIndex",
    "DocsIndexError", "SectionInfo", "clean_markdown", "fts_queries", "headings_of",
]
