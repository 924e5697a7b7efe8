"""The Hub's papers, daily papers and paper-linked models/datasets/collections routes,
served by ``HubEmulator`` (tests/fakes/hub_server.py).

``ROUTES`` are (method, path regex, handler name) entries the emulator adds to its own; the
handlers are methods of the mixin below and run under the emulator's lock, returning a JSON
payload, ``(status, payload)``, or a ``RawResponse`` (tests/fakes/_loopback.py). Raise the
``Fail(status, message, headers)`` (tests/fakes/_loopback.py) for errors; the emulator's
helpers (``self._user(call)``, ``self._repo(type, id)``, ``self._repos``) are available on ``self``.

The routes and parameters are those ``huggingface_hub`` 2.4 sends, answered in the live
Hub's shapes, so ``HfApi(endpoint=hub.endpoint)`` works against them:

* ``GET /api/daily_papers`` (``list_daily_papers``: ``date``, ``week``, ``month``,
  ``submitter``, ``sort`` = publishedAt|trending, ``p``, ``limit``): rows
  ``{"paper": {...}, "publishedAt", "title", "summary", "thumbnail", "numComments",
  "submittedBy", "isAuthorParticipating"}``. Without a date every daily paper is listed.
* ``GET /api/papers/search`` (``list_papers``: ``q``, ``limit``): rows of the same shape,
  over every paper (daily or not), best match first.
* ``GET /api/papers/<id>`` (``paper_info``): the flat paper object; 404 ``Paper not found``.
* ``GET /api/models`` / ``GET /api/datasets`` (``list_models``/``list_datasets``:
  ``filter`` (repeatable; ``arxiv:<id>`` matches repos tagged with the paper), ``search``,
  ``author``, ``sort`` (downloads|likes|trendingScore|lastModified|createdAt, descending),
  ``limit``).
* ``GET /api/collections`` (``list_collections``: ``item`` such as ``papers/<id>``,
  ``owner``, ``sort`` = lastModified|trending|upvotes, ``limit``); items cut to 4 per
  collection as on the live Hub.

Tokens: anonymous requests are served; a token the emulator does not know gets the Hub's
401 (``Invalid credentials in Authorization header``), as the live Hub answers any route.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from tests.fakes._loopback import Fail

ROUTES: list[tuple[str, str, str]] = [
    ("GET", r"/api/daily_papers", "_daily_papers"),
    ("GET", r"/api/papers/search", "_search_papers"),
    ("GET", r"/api/papers/(?P<paper>.+)", "_paper_info"),
    ("GET", r"/api/(?P<kind>models|datasets)", "_list_paper_repos"),
    ("GET", r"/api/collections", "_list_collections"),
]

_REPO_SORTS = ("downloads", "likes", "trendingScore", "lastModified", "createdAt")
_COLLECTION_SORTS = ("lastModified", "trending", "upvotes")


def _oid(*parts: object) -> str:
    return hashlib.sha1("\x00".join(map(str, parts)).encode()).hexdigest()[:24]


def _stamp(day: str | None) -> str | None:
    return f"{day}T12:00:00.000Z" if day and len(day) == 10 else day


def _user_json(name: str) -> dict[str, Any]:
    return {"_id": _oid("user", name), "avatarUrl": f"/avatars/{name}.svg", "fullname": name.title(), "name": name,
            "type": "user", "isPro": False, "isHf": False, "isMod": False, "followerCount": 3}


class PapersRoutes:
    def _init_papers(self) -> None:
        """Per-emulator state (called from ``HubEmulator.__init__``)."""
        self._papers: dict[str, dict[str, Any]] = {}
        self._paper_repos: list[dict[str, Any]] = []
        self._collections: list[dict[str, Any]] = []

    # ---- scripting

    def add_paper(self, arxiv_id: str, title: str, summary: str = "", *, authors: tuple[str, ...] = ("Ada Lovelace",),
                  published: str = "2024-01-15", daily: str | None = None, upvotes: int = 0, comments: int = 0,
                  ai_summary: str | None = None, ai_keywords: tuple[str, ...] = (), github: str | None = None,
                  github_stars: int | None = None, project_page: str | None = None,
                  submitter: str = "akhaliq") -> None:
        """A paper page; ``daily`` (YYYY-MM-DD) also puts it on that day's daily papers."""
        with self._lock:  # type: ignore[attr-defined]
            self._papers[arxiv_id] = {
                "id": arxiv_id, "title": title, "summary": summary, "authors": list(authors),
                "published": published, "daily": daily, "upvotes": upvotes, "comments": comments,
                "ai_summary": ai_summary, "ai_keywords": list(ai_keywords), "github": github,
                "github_stars": github_stars, "project_page": project_page, "submitter": submitter,
            }

    def add_paper_repo(self, kind: str, repo_id: str, *, papers: tuple[str, ...] = (), downloads: int = 0,
                       likes: int = 0, trending: int = 0, pipeline_tag: str | None = None,
                       updated: str = "2024-02-01", gated: bool = False) -> None:
        """A model or dataset (``kind``) tagged ``arxiv:<id>`` for each of ``papers``."""
        if kind not in ("model", "dataset"):
            raise ValueError("kind must be 'model' or 'dataset'")
        with self._lock:  # type: ignore[attr-defined]
            self._paper_repos.append({
                "kind": kind, "id": repo_id, "tags": [f"arxiv:{p}" for p in papers], "downloads": downloads,
                "likes": likes, "trendingScore": trending, "pipeline_tag": pipeline_tag,
                "lastModified": _stamp(updated), "createdAt": _stamp(updated), "gated": gated,
            })

    def add_collection(self, slug: str, title: str, owner: str, *, papers: tuple[str, ...] = (),
                       repos: tuple[tuple[str, str], ...] = (), upvotes: int = 0, description: str | None = None,
                       updated: str = "2024-03-01") -> None:
        """A collection holding ``papers`` (arXiv ids) and ``repos`` ((type, id) pairs)."""
        items = [("paper", p) for p in papers] + list(repos)
        with self._lock:  # type: ignore[attr-defined]
            self._collections.append({"slug": slug, "title": title, "owner": owner, "items": items,
                                      "upvotes": upvotes, "description": description, "updated": _stamp(updated)})

    # ---- helpers

    def _papers_viewer(self, call: Any) -> None:
        if call.token is not None and call.token not in self._users:  # type: ignore[attr-defined]
            raise Fail(401, "Invalid credentials in Authorization header")

    def _paper_core(self, paper: dict[str, Any]) -> dict[str, Any]:
        core: dict[str, Any] = {
            "id": paper["id"],
            "authors": [{"_id": _oid("author", a), "name": a, "hidden": False} for a in paper["authors"]],
            "publishedAt": _stamp(paper["published"]),
            "title": paper["title"],
            "summary": paper["summary"],
            "upvotes": paper["upvotes"],
            "discussionId": _oid("discussion", paper["id"]),
            "ai_summary": paper["ai_summary"],
            "ai_keywords": paper["ai_keywords"],
        }
        if paper["daily"]:
            core["submittedOnDailyAt"] = _stamp(paper["daily"])
            core["submittedOnDailyBy"] = _user_json(paper["submitter"])
        for key, value in (("githubRepo", paper["github"]), ("githubStars", paper["github_stars"]),
                           ("projectPage", paper["project_page"])):
            if value is not None:
                core[key] = value
        return core

    def _paper_row(self, paper: dict[str, Any]) -> dict[str, Any]:
        return {
            "paper": self._paper_core(paper),
            "publishedAt": _stamp(paper["daily"] or paper["published"]),
            "title": paper["title"],
            "summary": paper["summary"],
            "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{paper['id']}.png",
            "numComments": paper["comments"],
            "submittedBy": _user_json(paper["submitter"]),
            "isAuthorParticipating": False,
        }

    @staticmethod
    def _limit(call: Any, default: int, maximum: int) -> int:
        raw = (call.query.get("limit") or [str(default)])[0]
        if not raw.isdigit() or not 0 < int(raw) <= maximum:
            raise Fail(400, f"limit must be an integer between 1 and {maximum}")
        return int(raw)

    # ---- routes

    def _daily_papers(self, call: Any) -> list[dict[str, Any]]:
        self._papers_viewer(call)
        q = {k: v[0] for k, v in call.query.items()}
        sort = q.get("sort", "publishedAt")
        if sort not in ("publishedAt", "trending"):
            raise Fail(400, "sort must be 'publishedAt' or 'trending'")
        found = [p for p in self._papers.values() if p["daily"]]
        if q.get("date"):
            found = [p for p in found if p["daily"] == q["date"]]
        if q.get("month"):
            found = [p for p in found if p["daily"].startswith(q["month"])]
        if q.get("submitter"):
            found = [p for p in found if p["submitter"] == q["submitter"]]
        if sort == "trending":
            found.sort(key=lambda p: -p["upvotes"])
        else:
            found.sort(key=lambda p: p["daily"], reverse=True)
        limit, page = self._limit(call, 50, 100), int(q.get("p", "0") or 0)
        return [self._paper_row(p) for p in found[page * limit:(page + 1) * limit]]

    def _search_papers(self, call: Any) -> list[dict[str, Any]]:
        self._papers_viewer(call)
        words = re.findall(r"\w+", (call.query.get("q") or [""])[0].lower())
        scored = []
        for paper in self._papers.values():
            text = re.findall(r"\w+", f"{paper['title']} {paper['summary']}".lower())
            if words and all(w in text for w in words):
                title = paper["title"].lower()
                scored.append((sum(w in title for w in words), paper["upvotes"], paper))
        scored.sort(key=lambda s: (-s[0], -s[1]))
        return [self._paper_row(p) for _, _, p in scored[: self._limit(call, 50, 120)]]

    def _paper_info(self, call: Any) -> dict[str, Any]:
        self._papers_viewer(call)
        paper = self._papers.get(call.params["paper"])
        if paper is None:
            raise Fail(404, "Paper not found")
        return {**self._paper_core(paper), "mediaUrls": [], "numComments": paper["comments"]}

    def _list_paper_repos(self, call: Any) -> list[dict[str, Any]]:
        self._papers_viewer(call)
        kind = call.params["kind"][:-1]
        q = {k: v[0] for k, v in call.query.items()}
        filters = call.query.get("filter", [])
        sort = q.get("sort", "trendingScore")
        if sort not in _REPO_SORTS:
            raise Fail(400, f"Invalid sort parameter: {sort}")
        rows = [r for r in self._paper_repos if r["kind"] == kind]
        # repos created through the emulator's write routes are listed too (untagged)
        known = {r["id"] for r in rows}
        for (repo_type, repo_id), _repo in self._repos.items():  # type: ignore[attr-defined]
            if repo_type == kind and repo_id not in known:
                rows.append({"kind": kind, "id": repo_id, "tags": [], "downloads": 0, "likes": 0, "trendingScore": 0,
                             "pipeline_tag": None, "lastModified": None, "createdAt": None, "gated": False})
        rows = [r for r in rows if all(f in r["tags"] for f in filters)]
        if q.get("search"):
            rows = [r for r in rows if q["search"].lower() in r["id"].lower()]
        if q.get("author"):
            rows = [r for r in rows if r["id"].split("/")[0] == q["author"]]
        rows.sort(key=lambda r: r[sort] or 0 if sort not in ("lastModified", "createdAt") else r[sort] or "",
                  reverse=True)
        out = []
        for r in rows[: self._limit(call, 1000, 1000)]:
            row: dict[str, Any] = {"_id": _oid(kind, r["id"]), "id": r["id"], "likes": r["likes"],
                                   "downloads": r["downloads"], "trendingScore": r["trendingScore"],
                                   "private": False, "tags": r["tags"], "createdAt": r["createdAt"]}
            if kind == "model":
                row.update({"modelId": r["id"], "pipeline_tag": r["pipeline_tag"], "library_name": "transformers"})
            else:
                row.update({"author": r["id"].split("/")[0], "disabled": False,
                            "gated": "auto" if r["gated"] else False,
                            "lastModified": r["lastModified"], "sha": _oid("sha", r["id"]), "description": "",
                            "key": ""})
            out.append(row)
        return out

    def _list_collections(self, call: Any) -> list[dict[str, Any]]:
        self._papers_viewer(call)
        q = {k: v[0] for k, v in call.query.items()}
        sort = q.get("sort", "lastModified")
        if sort not in _COLLECTION_SORTS:
            raise Fail(400, f"Invalid sort parameter: {sort}")
        found = list(self._collections)
        if q.get("item"):
            kind, _, item_id = q["item"].partition("/")
            found = [c for c in found if (kind.rstrip("s"), item_id) in c["items"]]
        if q.get("owner"):
            found = [c for c in found if c["owner"] == q["owner"]]
        key = {"lastModified": "updated", "trending": "upvotes", "upvotes": "upvotes"}[sort]
        found.sort(key=lambda c: c[key] or "", reverse=True)
        out = []
        for c in found[: self._limit(call, 100, 100)]:
            items = []
            for position, (item_type, item_id) in enumerate(c["items"][:4]):
                item: dict[str, Any] = {"_id": _oid("item", c["slug"], item_id), "position": position,
                                        "type": item_type, "id": item_id}
                if item_type == "paper" and item_id in self._papers:
                    item.update({"title": self._papers[item_id]["title"], "upvotes": self._papers[item_id]["upvotes"]})
                items.append(item)
            out.append({
                "slug": c["slug"], "title": c["title"], "description": c["description"], "gating": False,
                "lastUpdated": c["updated"], "owner": _user_json(c["owner"]), "items": items, "theme": "indigo",
                "private": False, "upvotes": c["upvotes"], "isUpvotedByUser": False,
            })
        return out
