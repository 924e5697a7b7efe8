"""The Hub's repo reading and git routes: info, tree, file resolve, refs, branches, tags, discussions/PRs, settings, served by ``HubEmulator`` (tests/fakes/hub_server.py).

``ROUTES`` are (method, path regex, handler name) entries the emulator adds to its own; the
handlers are methods of the mixin below and run under the emulator's lock, returning a JSON
payload, ``(status, payload)``, or a ``RawResponse`` (tests/fakes/_loopback.py). Raise the
``Fail(status, message, headers)`` (tests/fakes/_loopback.py) for errors; the emulator's
helpers (``self._user(call)``, ``self._repo(type, id)``, ``self._repos``) are available on ``self``.

Shapes follow what ``huggingface_hub`` 2.4 requests and parses (hf_api.py, file_download.py):

* ``GET /api/{models|datasets|spaces}/{id}[/revision/{rev}]`` -> repo info (``private``,
  ``gated``, ``sha``, ``siblings``, ``cardData``/``tags`` from the README front matter).
* ``GET /api/{type}/{id}/tree/{rev}[/{path}]?recursive=`` -> ``[{"type", "oid", "size", "path"}]``.
* ``GET|HEAD /{datasets/|spaces/}{id}/resolve/{rev}/{path}`` -> the bytes, with ``X-Repo-Commit``,
  ``ETag`` and ``Content-Length`` (what ``hf_hub_download`` needs); a gated repo the user was
  not granted answers 403 ``X-Error-Code: GatedRepo``.
* refs, ``branch/{name}`` (POST/DELETE), ``tag/{rev}`` (POST) and ``tag/{name}`` (DELETE),
  discussions (list, get with ``events``/``changes``, create, comment, status, merge), and
  ``PUT settings`` (``gated``, ``visibility``).

Branches other than ``main``, tags (snapshots of the files), pull-request refs, visibility and
gating live here per repo (``_RepoGit``); ``main``'s files stay on the emulator's ``_Repo``.
The emulator's ``_commit`` asks ``_commit_target`` where a commit lands (main, another branch,
a PR ref, or a new PR for ``create_pr=1``).

Access: a token the emulator does not know gets 401 with the Hub's ``X-Error-Message``; no
token reads public repos; a private repo is 404 to anyone outside its namespace; writes need
membership of the namespace (403).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.fakes._loopback import Fail, RawResponse

_R = r"/api/(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)"
_NUM = r"(?P<num>\d+)"

ROUTES: list[tuple[str, str, str]] = [
    ("GET", _R, "_repo_info"),
    ("GET", rf"{_R}/revision/(?P<rev>.+)", "_repo_info"),
    ("GET", rf"{_R}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", "_repo_tree"),
    ("GET", r"/(?:(?P<prefix>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "_resolve"),
    ("HEAD", r"/(?:(?P<prefix>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "_resolve"),
    ("GET", rf"{_R}/refs", "_refs"),
    ("POST", rf"{_R}/branch/(?P<name>[^/]+)", "_create_branch"),
    ("DELETE", rf"{_R}/branch/(?P<name>[^/]+)", "_delete_branch"),
    ("POST", rf"{_R}/tag/(?P<rev>[^/]+)", "_create_tag"),
    ("DELETE", rf"{_R}/tag/(?P<name>[^/]+)", "_delete_tag"),
    ("GET", rf"{_R}/discussions", "_list_discussions"),
    ("POST", rf"{_R}/discussions", "_create_discussion"),
    ("GET", rf"{_R}/discussions/{_NUM}", "_get_discussion"),
    ("POST", rf"{_R}/discussions/{_NUM}/(?P<action>comment|status|merge|title)", "_change_discussion"),
    ("PUT", rf"{_R}/settings", "_repo_settings"),
]

_BAD_TOKEN = "Invalid credentials in Authorization header"
_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def _sha(*parts: object) -> str:
    return hashlib.sha1("\x00".join(map(str, parts)).encode()).hexdigest()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


@dataclass
class _Ref:
    """A branch or PR ref: its own files and head commit."""

    files: dict[str, bytes]
    head: str
    pr_url: str | None = None


class _MainRef:
    """``main``: its files are the emulator's ``_Repo.files`` (what the rest of the emulator reads)."""

    pr_url = None

    def __init__(self, repo: Any, git: _RepoGit) -> None:
        self._repo, self._git = repo, git

    @property
    def files(self) -> dict[str, bytes]:
        return self._repo.files

    @files.setter
    def files(self, value: dict[str, bytes]) -> None:
        self._repo.files = value

    @property
    def head(self) -> str:
        return self._git.main_head

    @head.setter
    def head(self, value: str) -> None:
        self._git.main_head = value


@dataclass
class _Discussion:
    num: int
    title: str
    author: str
    is_pr: bool
    status: str
    created: float
    events: list[dict] = field(default_factory=list)
    base: str = "main"
    merge_commit: str | None = None


@dataclass
class _RepoGit:
    main_head: str
    private: bool = False
    gated: str | bool = False
    #: users granted access to a gated repo (namespace members always are)
    granted: set[str] = field(default_factory=set)
    branches: dict[str, _Ref] = field(default_factory=dict)
    #: tag -> (commit, files at that commit, message)
    tags: dict[str, tuple[str, dict[str, bytes], str]] = field(default_factory=dict)
    prs: dict[int, _Ref] = field(default_factory=dict)
    discussions: list[_Discussion] = field(default_factory=list)


class RepoRoutes:
    def _init_repo_routes(self) -> None:
        """Per-emulator state (called from ``HubEmulator.__init__``)."""
        self._git: dict[tuple[str, str], _RepoGit] = {}
        self._event_ids = itertools.count(1)
        self._repo_failures: list[tuple[str, re.Pattern[str], int, str, dict[str, str]]] = []

    def fail_next_repo_request(self, method: str, path_pattern: str, status: int, message: str = "",
                               headers: dict[str, str] | None = None) -> None:
        """Answer the next ``method`` request to a repo route of this module whose path matches
        ``path_pattern`` (``re.search``) with ``status`` (e.g. 429 with ``{"Retry-After": "120"}``)."""
        with self._lock:
            self._repo_failures.append((method, re.compile(path_pattern), status, message or f"HTTP {status}",
                                        dict(headers or {})))

    # ---- scripting and inspection (test thread) ----

    def add_repo(self, repo_id: str, repo_type: str = "model", files: dict[str, bytes | str] | None = None,
                 *, private: bool = False, gated: str | bool = False, sdk: str | None = None) -> None:
        """A repo that already exists on the Hub (owned by its namespace), with ``files`` on main."""
        from tests.fakes.hub_server import _Repo

        with self._lock:
            repo = _Repo(repo_type, repo_id, sdk=sdk)
            repo.files = {p: d.encode() if isinstance(d, str) else d for p, d in (files or {}).items()}
            self._repos[(repo_type, repo_id)] = repo
            self._git[(repo_type, repo_id)] = _RepoGit(_sha("init", repo_type, repo_id), private=private, gated=gated)

    def repo_settings(self, repo_id: str, repo_type: str = "model") -> dict[str, Any]:
        with self._lock:
            git = self._git_of(repo_type, repo_id)
            return {"private": git.private, "gated": git.gated}

    def branch_files(self, repo_id: str, branch: str, repo_type: str = "model") -> dict[str, bytes]:
        """Files of a branch, or of a PR given as ``refs/pr/N``."""
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            return dict(self._ref(repo, self._git_of(repo_type, repo_id), branch).files)

    def git_refs(self, repo_id: str, repo_type: str = "model") -> dict[str, list[str]]:
        with self._lock:
            git = self._git_of(repo_type, repo_id)
            return {"branches": ["main", *git.branches], "tags": list(git.tags),
                    "prs": [f"refs/pr/{n}" for n in git.prs]}

    def discussion(self, repo_id: str, num: int, repo_type: str = "model") -> dict[str, Any]:
        with self._lock:
            d = self._discussion_of(self._git_of(repo_type, repo_id), num)
            return {"title": d.title, "status": d.status, "is_pr": d.is_pr, "events": list(d.events)}

    # ---- helpers (handler threads, under the lock) ----

    def _git_of(self, repo_type: str, repo_id: str) -> _RepoGit:
        self._repo(repo_type, repo_id)  # 404 when missing
        git = self._git.get((repo_type, repo_id))
        if git is None:  # a repo made by another route family (e.g. duplicated): public, main only
            git = self._git[(repo_type, repo_id)] = _RepoGit(_sha("init", repo_type, repo_id))
        return git

    def _init_repo_git(self, repo: Any, settings: dict) -> None:
        """Called by the emulator when a repo is created: its visibility comes from the request."""
        private = settings.get("visibility") == "private" or bool(settings.get("private"))
        self._git[(repo.repo_type, repo.repo_id)] = _RepoGit(_sha("init", repo.repo_type, repo.repo_id), private=private)

    def _caller(self, call: Any) -> Any:
        """The calling user, None when anonymous; an unknown token is 401 as on the Hub."""
        if call.token is None:
            return None
        user = self._users.get(call.token)
        if user is None:
            raise Fail(401, _BAD_TOKEN, {"X-Error-Message": _BAD_TOKEN})
        return user

    @staticmethod
    def _is_member(user: Any, repo_id: str) -> bool:
        namespace = repo_id.split("/")[0]
        return user is not None and (namespace == user.name or namespace in user.orgs)

    def _readable(self, call: Any, repo_type: str | None = None) -> tuple[Any, _RepoGit, Any]:
        for n, (method, pattern, status, message, headers) in enumerate(self._repo_failures):
            if method == call.method and pattern.search(call.path):
                del self._repo_failures[n]
                raise Fail(status, message, headers)
        user = self._caller(call)
        repo_type = repo_type or call.params["type"][:-1]
        repo_id = call.params["repo"]
        repo = self._repo(repo_type, repo_id)
        git = self._git_of(repo_type, repo_id)
        if git.private and not self._is_member(user, repo_id):
            raise Fail(404, f"Repository {repo_id} not found", {"X-Error-Code": "RepoNotFound"})
        return repo, git, user

    def _writable(self, call: Any) -> tuple[Any, _RepoGit, Any]:
        repo, git, user = self._readable(call)
        if user is None:
            raise Fail(401, "You must be authenticated to do this")
        if not self._is_member(user, repo.repo_id):
            raise Fail(403, f"You don't have the rights to change {repo.repo_id}")
        return repo, git, user

    def _ref(self, repo: Any, git: _RepoGit, rev: str) -> Any:
        rev = unquote(rev)
        if rev == "main" or rev == git.main_head:
            return _MainRef(repo, git)
        if rev in git.branches:
            return git.branches[rev]
        match = re.fullmatch(r"refs/pr/(\d+)", rev)
        if match and int(match.group(1)) in git.prs:
            return git.prs[int(match.group(1))]
        if rev in git.tags:
            head, files, _ = git.tags[rev]
            return _Ref(files, head)
        raise Fail(404, f"Invalid rev id: {rev}", {"X-Error-Code": "RevisionNotFound"})

    def _commit_target(self, repo: Any, call: Any) -> Any:
        """Where a commit lands: ``create_pr=1`` opens a draft PR from the revision (its ref gets
        the commit), otherwise the branch or PR ref named in the path."""
        git = self._git_of(repo.repo_type, repo.repo_id)
        base = self._ref(repo, git, call.params["rev"])
        if not call.query.get("create_pr"):
            if unquote(call.params["rev"]) in git.tags:
                raise Fail(400, "You can only commit to a branch or a pull request")
            return base
        user = self._user(call)
        header = next((i["value"] for i in call.body if i.get("key") == "header"), {}) if isinstance(call.body, list) else {}
        d = self._open_discussion(repo, git, user.name, header.get("summary") or "Upload", header.get("description") or "",
                                  True, base=unquote(call.params["rev"]))
        ref = git.prs[d.num] = _Ref(dict(base.files), base.head, f"{repo.url(self.endpoint)}/discussions/{d.num}")
        return ref

    def _event(self, kind: str, author: str, data: dict) -> dict:
        return {"id": f"{next(self._event_ids):024x}", "type": kind, "createdAt": _iso(time.time()),
                "author": {"name": author}, "data": data}

    def _comment_event(self, author: str, text: str) -> dict:
        return self._event("comment", author, {"edited": False, "hidden": False, "latest": {"raw": text}})

    def _open_discussion(self, repo: Any, git: _RepoGit, author: str, title: str, description: str,
                         is_pr: bool, base: str = "main") -> _Discussion:
        num = len(git.discussions) + 1
        d = _Discussion(num, title, author, is_pr, "draft" if is_pr else "open", time.time(), base=base)
        d.events.append(self._comment_event(author, description))
        git.discussions.append(d)
        return d

    @staticmethod
    def _discussion_of(git: _RepoGit, num: int) -> _Discussion:
        for d in git.discussions:
            if d.num == num:
                return d
        raise Fail(404, f"Discussion {num} not found")

    def _discussion_json(self, repo: Any, d: _Discussion) -> dict:
        return {"num": d.num, "title": d.title, "status": d.status, "createdAt": _iso(d.created),
                "isPullRequest": d.is_pr, "author": {"name": d.author}, "pinned": False,
                "numComments": sum(e["type"] == "comment" for e in d.events),
                "repo": {"name": repo.repo_id, "type": repo.repo_type}}

    # ---- reading ----

    def _repo_info(self, call: Any) -> dict:
        repo, git, _ = self._readable(call)
        ref = self._ref(repo, git, call.params.get("rev") or "main")
        card_data = _card_data(ref.files.get("README.md", b"").decode("utf-8", "replace"))
        tags = card_data.get("tags") or []
        info = {"_id": _sha("id", repo.repo_id)[:24], "id": repo.repo_id, "author": repo.repo_id.split("/")[0],
                "sha": ref.head, "lastModified": _iso(time.time()), "createdAt": _iso(time.time()),
                "private": git.private, "gated": git.gated, "disabled": False, "tags": tags,
                "siblings": [{"rfilename": p} for p in sorted(ref.files)], "likes": 0, "downloads": 0,
                "cardData": card_data}
        if repo.repo_type == "space":
            info["sdk"] = repo.sdk
        return info

    def _repo_tree(self, call: Any) -> list:
        repo, git, _ = self._readable(call)
        ref = self._ref(repo, git, call.params["rev"])
        base = unquote(call.params.get("path") or "").strip("/")
        recursive = (call.query.get("recursive") or ["false"])[0].lower() in ("true", "1")
        prefix = f"{base}/" if base else ""
        if base and base in ref.files:
            raise Fail(400, f"{base} is a file, not a folder")
        under = sorted(p for p in ref.files if p.startswith(prefix))
        if base and not under:
            raise Fail(404, f"Entry not found: {base}", {"X-Error-Code": "EntryNotFound"})
        entries: dict[str, dict] = {}
        for path in under:
            rest = path[len(prefix):].split("/")
            if not recursive and len(rest) > 1:
                folder = prefix + rest[0]
                entries.setdefault(folder, {"type": "directory", "oid": _sha("tree", folder), "size": 0, "path": folder})
                continue
            if recursive:
                for depth in range(1, len(rest)):
                    folder = prefix + "/".join(rest[:depth])
                    entries.setdefault(folder, {"type": "directory", "oid": _sha("tree", folder), "size": 0, "path": folder})
            data = ref.files[path]
            entries[path] = {"type": "file", "oid": _sha("blob", data), "size": len(data), "path": path}
        return [entries[k] for k in sorted(entries)]

    def _resolve(self, call: Any) -> RawResponse:
        repo_type = {"datasets": "dataset", "spaces": "space"}.get(call.params.get("prefix") or "", "model")
        repo, git, user = self._readable(call, repo_type)
        if git.gated and not self._is_member(user, repo.repo_id) and (user is None or user.name not in git.granted):
            message = f"Access to {repo_type} {repo.repo_id} is restricted. You must have access to it and be authenticated to access it."
            raise Fail(403 if user else 401, message, {"X-Error-Code": "GatedRepo", "X-Error-Message": message})
        ref = self._ref(repo, git, call.params["rev"])
        path = unquote(call.params["path"])
        if path not in ref.files:
            raise Fail(404, "Entry not found", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": ref.head})
        data = ref.files[path]
        etag = f'"{_sha("blob", data)}"'
        return RawResponse(200, data, "application/octet-stream", {"X-Repo-Commit": ref.head, "ETag": etag})

    def _refs(self, call: Any) -> dict:
        repo, git, _ = self._readable(call)

        def info(name: str, ref: str, head: str) -> dict:
            return {"name": name, "ref": ref, "targetCommit": head}

        data = {"branches": [info("main", "refs/heads/main", git.main_head)]
                + [info(n, f"refs/heads/{n}", b.head) for n, b in git.branches.items()],
                "converts": [], "tags": [info(n, f"refs/tags/{n}", t[0]) for n, t in git.tags.items()]}
        if call.query.get("include_prs"):
            data["pullRequests"] = [info(f"refs/pr/{n}", f"refs/pr/{n}", r.head) for n, r in git.prs.items()]
        else:
            data["pullRequests"] = []
        return data

    # ---- branches and tags ----

    def _create_branch(self, call: Any) -> dict:
        repo, git, _ = self._writable(call)
        name = unquote(call.params["name"])
        if name == "main" or name in git.branches:
            raise Fail(409, f"Reference already exists: refs/heads/{name}")
        start = (call.body or {}).get("startingPoint") if isinstance(call.body, dict) else None
        base = self._ref(repo, git, start or "main")
        git.branches[name] = _Ref(dict(base.files), base.head)
        return {}

    def _delete_branch(self, call: Any) -> dict:
        _, git, _ = self._writable(call)
        name = unquote(call.params["name"])
        if name == "main":
            raise Fail(400, "You cannot delete the default branch")
        if git.branches.pop(name, None) is None:
            raise Fail(404, f"Invalid rev id: {name}", {"X-Error-Code": "RevisionNotFound"})
        return {}

    def _create_tag(self, call: Any) -> dict:
        repo, git, _ = self._writable(call)
        body = call.body if isinstance(call.body, dict) else {}
        tag = body.get("tag")
        if not tag:
            raise Fail(400, "a tag needs a name")
        if tag in git.tags:
            raise Fail(409, f"Tag {tag} already exists")
        base = self._ref(repo, git, call.params["rev"])
        git.tags[tag] = (base.head, dict(base.files), body.get("message") or "")
        return {}

    def _delete_tag(self, call: Any) -> dict:
        _, git, _ = self._writable(call)
        if git.tags.pop(unquote(call.params["name"]), None) is None:
            raise Fail(404, f"Invalid rev id: {unquote(call.params['name'])}", {"X-Error-Code": "RevisionNotFound"})
        return {}

    # ---- discussions and pull requests ----

    def _list_discussions(self, call: Any) -> dict:
        repo, git, _ = self._readable(call)
        kind = (call.query.get("type") or ["all"])[0]
        status = (call.query.get("status") or ["all"])[0]
        found = [d for d in git.discussions
                 if (kind == "all" or (kind == "pull_request") == d.is_pr)
                 and (status == "all" or d.status == status or (status == "open" and d.status == "draft"))]
        found.reverse()  # newest first, as on the Hub
        return {"discussions": [self._discussion_json(repo, d) for d in found], "count": len(found), "start": 0,
                "numClosedDiscussions": sum(d.status == "closed" for d in git.discussions)}

    def _create_discussion(self, call: Any) -> dict:
        repo, git, user = self._readable(call)
        if user is None:
            raise Fail(401, "You must be authenticated to open a discussion")
        body = call.body if isinstance(call.body, dict) else {}
        title = str(body.get("title") or "").strip()
        if len(title) < 3:
            raise Fail(400, "title must be at least 3 characters long")
        d = self._open_discussion(repo, git, user.name, title, str(body.get("description") or ""),
                                  bool(body.get("pullRequest")))
        if d.is_pr:
            git.prs[d.num] = _Ref(dict(repo.files), git.main_head, f"{repo.url(self.endpoint)}/discussions/{d.num}")
        return {"num": d.num, "url": f"{repo.url(self.endpoint)}/discussions/{d.num}", **self._discussion_json(repo, d)}

    def _get_discussion(self, call: Any) -> dict:
        repo, git, _ = self._readable(call)
        d = self._discussion_of(git, int(call.params["num"]))
        data = {**self._discussion_json(repo, d), "events": list(d.events)}
        if d.is_pr:
            ref = git.prs.get(d.num)
            changed = sorted(p for p in (ref.files if ref else {}) if repo.files.get(p) != ref.files[p])
            data["changes"] = {"base": f"refs/heads/{d.base}", **({"mergeCommitId": d.merge_commit} if d.merge_commit else {})}
            data["filesWithConflicts"] = []
            data["diff"] = "".join(f"diff --git a/{p} b/{p}\n" for p in changed)
        return data

    def _change_discussion(self, call: Any) -> dict:
        repo, git, user = self._readable(call)
        if user is None:
            raise Fail(401, "You must be authenticated to do this")
        d = self._discussion_of(git, int(call.params["num"]))
        body = call.body if isinstance(call.body, dict) else {}
        action = call.params["action"]
        if action == "comment":
            text = str(body.get("comment") or "").strip()
            if not text:
                raise Fail(400, "a comment cannot be empty")
            event = self._comment_event(user.name, text)
            d.events.append(event)
            return {"newMessage": event}
        if action == "title":
            event = self._event("title-change", user.name, {"from": d.title, "to": body.get("title")})
            d.title = str(body.get("title"))
            d.events.append(event)
            return {"newTitle": event}
        if not self._is_member(user, repo.repo_id) and d.author != user.name:
            raise Fail(403, "Only the author or the repo's owners can change this discussion")
        if action == "status":
            new = body.get("status")
            if new not in ("open", "closed"):
                raise Fail(400, "status must be 'open' or 'closed'")
            if d.status == "merged":
                raise Fail(400, "This pull request is already merged")
            if body.get("comment"):
                d.events.append(self._comment_event(user.name, str(body["comment"])))
            d.status = new
            event = self._event("status-change", user.name, {"status": new})
            d.events.append(event)
            return {"newStatus": event}
        # merge
        if not self._is_member(user, repo.repo_id):
            raise Fail(403, "Only the repo's owners can merge a pull request")
        if not d.is_pr:
            raise Fail(400, "This is a discussion, not a pull request")
        if d.status not in ("open", "draft"):
            raise Fail(400, f"This pull request is {d.status}; only an open pull request can be merged")
        target = self._ref(repo, git, d.base)
        target.files = dict(git.prs[d.num].files)
        oid = _sha("merge", repo.repo_id, d.num, time.time())
        target.head = d.merge_commit = oid
        if body.get("comment"):
            d.events.append(self._comment_event(user.name, str(body["comment"])))
        d.status = "merged"
        d.events.append(self._event("status-change", user.name, {"status": "merged"}))
        return {}

    def _repo_settings(self, call: Any) -> dict:
        _, git, _ = self._writable(call)
        body = call.body if isinstance(call.body, dict) else {}
        if "gated" in body:
            if body["gated"] not in ("auto", "manual", False):
                raise Fail(400, "gated must be 'auto', 'manual' or false")
            git.gated = body["gated"]
        if "visibility" in body:
            if body["visibility"] not in ("public", "private"):
                raise Fail(400, "visibility must be 'public' or 'private'")
            git.private = body["visibility"] == "private"
        return {}


def _card_data(card: str) -> dict:
    """The README's YAML front matter, as the Hub serves it in ``cardData``."""
    import yaml

    match = re.match(r"\A---\n(.*?)\n---\n", card, re.S)
    try:
        data = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        data = None
    return data if isinstance(data, dict) else {}
