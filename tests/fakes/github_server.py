"""A GitHub REST API emulator on 127.0.0.1 (the routes the GitHub tools use).

Routes, in the live API's shapes:

* ``GET /repos/{owner}/{repo}``: the repo object (``full_name``, ``default_branch``,
  ``stargazers_count``, ``forks_count``, ``html_url``, ``description``, ...).
* ``GET /repos/{owner}/{repo}/git/trees/{ref}?recursive=1``: ``{"sha", "url", "tree":
  [{"path", "mode", "type": "blob"|"tree", "sha", "size"?, "url"}], "truncated"}``.
* ``GET /repos/{owner}/{repo}/contents/{path}?ref=``: a file (``type: file``, ``encoding:
  base64``, ``content`` wrapped at 60 columns; files over ``content_limit`` bytes come with
  ``encoding: "none"`` and empty content as the live API does above 1 MB), a directory (a
  list of entries), and the raw bytes with ``Accept: application/vnd.github.raw``.
* ``GET /orgs/{org}/repos`` and ``GET /users/{user}/repos`` (which, as on GitHub, also lists an
  organisation's repos): ``per_page`` (max 100),
  ``page``, ``sort`` (created|updated|pushed|full_name), ``direction``, with a ``Link``
  header (rel="next"/"last").
* ``GET /search/repositories?q=...&sort=stars|forks|updated&order=``: ``org:``, ``user:``,
  ``in:name``, ``fork:true`` qualifiers and free words; ``{"total_count",
  "incomplete_results", "items"}``.

Errors: 404 ``{"message": "Not Found", "documentation_url", "status": "404"}``; a token
not in ``tokens`` gets 401 "Bad credentials"; ``exhaust_rate_limit()`` answers with 403
"API rate limit exceeded ..." and ``x-ratelimit-remaining: 0`` / ``x-ratelimit-reset``
until ``restore_rate_limit()``. Every answer carries the ``x-ratelimit-*`` headers
(60/h without a token, 5000/h with one).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes._routed import Call, Fail, RawResponse, RoutedEmulator

DOCS = "https://docs.github.com/rest"


def _sha(*parts: object) -> str:
    return hashlib.sha1("\x00".join(map(str, parts)).encode()).hexdigest()


@dataclass
class FakeRepo:
    owner: str
    name: str
    files: dict[str, bytes] = field(default_factory=dict)
    stars: int = 0
    forks: int = 0
    description: str = ""
    language: str | None = "Python"
    default_branch: str = "main"
    fork: bool = False
    archived: bool = False
    updated_at: str = "2025-01-01T00:00:00Z"
    created_at: str = "2020-01-01T00:00:00Z"
    owner_type: str = "Organization"
    #: other refs (branch/tag name) -> files at that ref
    refs: dict[str, dict[str, bytes]] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def files_at(self, ref: str | None) -> dict[str, bytes] | None:
        if ref in (None, "", self.default_branch, "HEAD"):
            return self.files
        return self.refs.get(ref)


def _notebook() -> bytes:
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Fine-tune a model\n", "\n", "With **TRL**."]},
            {"cell_type": "code", "execution_count": 1, "metadata": {},
             "outputs": [{"output_type": "stream", "name": "stdout", "text": ["NOTEBOOK_OUTPUT_TEXT\n"]}],
             "source": ["from trl import SFTTrainer\n", "trainer = SFTTrainer(model='gpt2')"]},
            {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": "trainer.train()"},
            {"cell_type": "raw", "metadata": {}, "source": ["raw cell text"]},
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=1).encode()


def default_repos() -> list[FakeRepo]:
    trl_files = {
        "README.md": b"# TRL\n",
        "trl/trainer/sft_trainer.py": b"class SFTTrainer:\n    pass\n",
        "trl/trainer/dpo_trainer.py": b"class DPOTrainer:\n    pass\n",
        "examples/scripts/sft.py": "".join(f"# line {i}\n" for i in range(1, 401)).encode(),
        "examples/scripts/dpo.py": b"print('dpo')\n",
        "examples/scripts/reward_modeling.py": b"print('rm')\n",
        "examples/notebooks/sft_tutorial.ipynb": _notebook(),
        "examples/README.md": b"# Examples\n",
        "docs/source/sft_trainer.md": b"# SFT Trainer docs\n",
        "scripts/make_sft_dataset.py": b"print('dataset')\n",
        "tests/test_sft_trainer.py": b"def test_sft():\n    pass\n",
        "assets/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00binary",
        "data/big.jsonl": b"",  # replaced below by a large file
    }
    trl_files["data/big.jsonl"] = b"".join(b'{"i": %d}\n' % i for i in range(3000))
    return [
        FakeRepo("huggingface", "trl", trl_files, stars=15000, forks=2000, description="Train transformer LMs with RL.",
                 refs={"v0.1": {"README.md": b"# TRL v0.1\n"}}),
        FakeRepo("huggingface", "transformers", {"README.md": b"# Transformers\n",
                                                 "examples/pytorch/language-modeling/run_clm.py": b"# clm\n"},
                 stars=150000, forks=30000, description="State-of-the-art ML."),
        FakeRepo("huggingface", "peft", {"README.md": b"# PEFT\n"}, stars=18000, forks=1800,
                 description="Parameter-efficient fine-tuning.", updated_at="2025-06-01T00:00:00Z"),
        FakeRepo("huggingface", "trl-old-fork", {"README.md": b"# fork\n"}, stars=3, fork=True,
                 updated_at="2019-01-01T00:00:00Z"),
        FakeRepo("ada", "notes", {"README.md": b"# notes\n"}, stars=1, owner_type="User"),
    ]


class GitHubEmulator(RoutedEmulator):
    _thread_name = "github-fake"
    ROUTES = [
        ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)", "_repo"),
        ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/git/trees/(?P<ref>.+)", "_tree"),
        ("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/contents(?:/(?P<path>.*))?", "_contents"),
        ("GET", r"/orgs/(?P<owner>[^/]+)/repos", "_org_repos"),
        ("GET", r"/users/(?P<owner>[^/]+)/repos", "_user_repos"),
        ("GET", r"/search/repositories", "_search"),
    ]

    def __init__(self, repos: list[FakeRepo] | None = None, tokens: tuple[str, ...] = ("gh_test",)) -> None:
        super().__init__()
        self.repos = {r.full_name.lower(): r for r in (repos if repos is not None else default_repos())}
        self.tokens = set(tokens)
        self.content_limit = 1_000_000
        self._rate_limited_until: float | None = None

    # ------------------------------------------------------------------ test controls

    def add(self, repo: FakeRepo) -> None:
        with self._lock:
            self.repos[repo.full_name.lower()] = repo

    def exhaust_rate_limit(self, reset_in: float = 1800) -> None:
        with self._lock:
            self._rate_limited_until = time.time() + reset_in

    def restore_rate_limit(self) -> None:
        with self._lock:
            self._rate_limited_until = None

    # ------------------------------------------------------------------ plumbing

    def _fail_payload(self, failure: Fail) -> Any:
        return {"message": failure.message, "documentation_url": DOCS, "status": str(failure.status)}

    def _handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Any:
        result = super()._handle(method, raw_path, headers, body)
        token = Call(method, raw_path, {}, headers, b"", {}, "").token
        limit = 5000 if token in self.tokens else 60
        reset = int(self._rate_limited_until or time.time() + 3600)
        rate = {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": "0" if self._rate_limited_until else "59",
                "x-ratelimit-reset": str(reset), "x-ratelimit-resource": "core", "x-github-api-version-selected": "2022-11-28"}
        if isinstance(result, RawResponse):
            return RawResponse(result.status, result.body, result.content_type, {**rate, **result.headers})
        status, payload, extra = result
        return status, payload, {**rate, **extra}

    def _check(self, call: Call) -> None:
        if call.token is not None and call.token not in self.tokens:
            raise Fail(401, "Bad credentials")
        if self._rate_limited_until and time.time() < self._rate_limited_until:
            ip = "127.0.0.1"
            more = "" if call.token else (" (But here's the good news: Authenticated requests get a higher rate limit. "
                                          "Check out the documentation for more details.)")
            raise Fail(403, f"API rate limit exceeded for {ip}.{more}")

    def _find(self, call: Call) -> FakeRepo:
        self._check(call)
        repo = self.repos.get(f"{call.params['owner']}/{call.params['repo']}".lower())
        if repo is None:
            raise Fail(404, "Not Found")
        return repo

    def _repo_json(self, repo: FakeRepo, base: str) -> dict[str, Any]:
        api = f"{base}/repos/{repo.full_name}"
        return {
            "id": int(_sha(repo.full_name)[:8], 16), "node_id": "R_" + _sha(repo.full_name)[:12],
            "name": repo.name, "full_name": repo.full_name, "private": False,
            "owner": {"login": repo.owner, "id": int(_sha(repo.owner)[:6], 16), "type": repo.owner_type,
                      "url": f"{base}/users/{repo.owner}"},
            "html_url": f"https://github.com/{repo.full_name}", "description": repo.description or None,
            "fork": repo.fork, "url": api, "created_at": repo.created_at, "updated_at": repo.updated_at,
            "pushed_at": repo.updated_at, "homepage": None, "size": sum(len(b) for b in repo.files.values()) // 1024,
            "stargazers_count": repo.stars, "watchers_count": repo.stars, "language": repo.language,
            "forks_count": repo.forks, "archived": repo.archived, "open_issues_count": 3, "topics": [],
            "visibility": "public", "default_branch": repo.default_branch,
        }

    # ------------------------------------------------------------------ routes

    def _repo(self, call: Call) -> dict[str, Any]:
        return self._repo_json(self._find(call), call.base)

    def _tree(self, call: Call) -> dict[str, Any]:
        repo = self._find(call)
        ref = call.params["ref"]
        files = repo.files_at(ref)
        if files is None:
            raise Fail(404, "Not Found")
        recursive = call.arg("recursive") not in (None, "", "0", "false")
        dirs: set[str] = set()
        for path in files:
            parts = path.split("/")[:-1]
            dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
        entries = []
        for path in sorted(set(files) | dirs):
            if not recursive and "/" in path:
                continue
            base = f"{call.base}/repos/{repo.full_name}/git"
            if path in dirs:
                entries.append({"path": path, "mode": "040000", "type": "tree", "sha": _sha(repo.full_name, path),
                                "url": f"{base}/trees/{_sha(repo.full_name, path)}"})
            else:
                entries.append({"path": path, "mode": "100644", "type": "blob", "sha": _sha(files[path]),
                                "size": len(files[path]), "url": f"{base}/blobs/{_sha(files[path])}"})
        sha = _sha(repo.full_name, ref)
        return {"sha": sha, "url": f"{call.base}/repos/{repo.full_name}/git/trees/{sha}", "tree": entries,
                "truncated": False}

    def _contents(self, call: Call) -> Any:
        repo = self._find(call)
        files = repo.files_at(call.arg("ref"))
        if files is None:
            raise Fail(404, f"No commit found for the ref {call.arg('ref')}")
        path = (call.params.get("path") or "").strip("/")
        ref = call.arg("ref") or repo.default_branch
        if path in files:
            data = files[path]
            if "application/vnd.github.raw" in call.headers.get("accept", ""):
                return RawResponse(200, data, "application/vnd.github.raw; charset=utf-8")
            large = len(data) > self.content_limit
            encoded = "" if large else "\n".join(re.findall(".{1,60}", base64.b64encode(data).decode())) + "\n"
            return {"type": "file", "encoding": "none" if large else "base64", "size": len(data),
                    "name": path.rsplit("/", 1)[-1], "path": path, "content": encoded, "sha": _sha(data),
                    "url": f"{call.base}/repos/{repo.full_name}/contents/{path}?ref={ref}",
                    "html_url": f"https://github.com/{repo.full_name}/blob/{ref}/{path}",
                    "download_url": f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{path}"}
        prefix = f"{path}/" if path else ""
        children: dict[str, str] = {}
        for name in files:
            if name.startswith(prefix):
                head, _, rest = name[len(prefix):].partition("/")
                children[head] = "dir" if rest else "file"
        if not children:
            raise Fail(404, "Not Found")
        return [{"type": kind, "name": name, "path": prefix + name,
                 "size": len(files[prefix + name]) if kind == "file" else 0, "sha": _sha(prefix + name),
                 "html_url": f"https://github.com/{repo.full_name}/{'blob' if kind == 'file' else 'tree'}/{ref}/{prefix + name}"}
                for name, kind in sorted(children.items())]

    def _listing(self, call: Call, owner_type: str) -> Any:
        self._check(call)
        owner = call.params["owner"].lower()
        mine = [r for r in self.repos.values() if r.owner.lower() == owner]
        # /users/{name}/repos answers for organisations too (their public repos); /orgs/ only for orgs
        if not mine or (owner_type == "org" and mine[0].owner_type != "Organization"):
            raise Fail(404, "Not Found")
        sort = call.arg("sort") or ("created" if owner_type == "org" else "full_name")
        keys = {"created": lambda r: r.created_at, "updated": lambda r: r.updated_at,
                "pushed": lambda r: r.updated_at, "full_name": lambda r: r.full_name.lower()}
        if sort not in keys:
            raise Fail(422, "Validation Failed")
        direction = call.arg("direction") or ("asc" if sort == "full_name" else "desc")
        mine.sort(key=keys[sort], reverse=direction == "desc")
        per_page = min(int(call.arg("per_page") or 30), 100)
        page = max(int(call.arg("page") or 1), 1)
        last = max((len(mine) + per_page - 1) // per_page, 1)
        chunk = mine[(page - 1) * per_page: page * per_page]
        links = []
        kind = "orgs" if owner_type == "org" else "users"
        url = f"{call.base}/{kind}/{call.params['owner']}/repos?per_page={per_page}&sort={sort}&direction={direction}"
        if page < last:
            links.append(f'<{url}&page={page + 1}>; rel="next"')
            links.append(f'<{url}&page={last}>; rel="last"')
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, [self._repo_json(r, call.base) for r in chunk], headers

    def _org_repos(self, call: Call) -> Any:
        return self._listing(call, "org")

    def _user_repos(self, call: Call) -> Any:
        return self._listing(call, "user")

    def _search(self, call: Call) -> dict[str, Any]:
        self._check(call)
        q = call.arg("q") or ""
        if not q.strip():
            raise Fail(422, "Validation Failed")
        words, owners, forks = [], [], False
        for token in q.split():
            if token.startswith(("org:", "user:")):
                owners.append(token.split(":", 1)[1].lower())
            elif token == "fork:true":
                forks = True
            elif token.startswith("in:"):
                continue
            else:
                words.append(token.lower())
        found = [r for r in self.repos.values()
                 if (not owners or r.owner.lower() in owners) and (forks or not r.fork)
                 and all(w in r.name.lower() or w in r.description.lower() for w in words)]
        if owners and not any(r.owner.lower() in owners for r in self.repos.values()):
            raise Fail(422, "Validation Failed")  # the live API: "The listed users and repositories cannot be searched"
        sort = call.arg("sort")
        if sort in ("stars", "forks", "updated"):
            key = {"stars": lambda r: r.stars, "forks": lambda r: r.forks, "updated": lambda r: r.updated_at}[sort]
            found.sort(key=key, reverse=(call.arg("order") or "desc") == "desc")
        per_page = min(int(call.arg("per_page") or 30), 100)
        page = max(int(call.arg("page") or 1), 1)
        items = found[(page - 1) * per_page: page * per_page]
        return {"total_count": len(found), "incomplete_results": False,
                "items": [{**self._repo_json(r, call.base), "score": 1.0} for r in items]}
