"""Which Hub requests spend money or write, for the Hub gateway (agent/hub_gateway.py).

``classify(method, path, query)`` names the kind of a request that huggingface_hub 2.4
(hf_api.py, _commit_api.py, lfs.py) or the ``hf`` CLI sends. Reads pass through the
gateway untouched; every other kind is a decision of the policy. The rule that keeps this
safe as the Hub grows: a GET, HEAD or OPTIONS is a read, a handful of known read-only POSTs
are reads, upload preparation is allowed (the commit that uses it is gated), and any other
method on any other path is ``WRITE``, gated like the named kinds, never let through.

Inference endpoints live on another host (``constants.INFERENCE_ENDPOINTS_ENDPOINT``); their
paths are classified here so a gateway pointed at that host gates them too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any
from urllib.parse import unquote


class RouteKind(StrEnum):
    READ = "read"
    UPLOAD_PREP = "upload_prep"  # preupload and LFS batch: part of an upload; the commit is gated
    JOB_CREATE = "job_create"  # run, rerun (duplicate) and triggering a scheduled job
    JOB_CANCEL = "job_cancel"
    JOB_UPDATE = "job_update"  # labels, expose
    SCHEDULED_JOB_CREATE = "scheduled_job_create"
    SCHEDULED_JOB_UPDATE = "scheduled_job_update"
    SCHEDULED_JOB_DELETE = "scheduled_job_delete"
    SCHEDULED_JOB_SUSPEND = "scheduled_job_suspend"
    SCHEDULED_JOB_RESUME = "scheduled_job_resume"
    SPACE_HARDWARE = "space_hardware"  # request hardware, or duplicate a Space onto hardware
    SPACE_RUNTIME = "space_runtime"  # restart, pause, sleep time, dev mode, volumes
    SPACE_SECRETS = "space_secrets"
    SPACE_VARIABLES = "space_variables"
    ENDPOINT_CREATE = "inference_endpoint_create"
    ENDPOINT_UPDATE = "inference_endpoint_update"
    ENDPOINT_RESUME = "inference_endpoint_resume"
    ENDPOINT_SCALE = "inference_endpoint_scale"  # scale-to-zero
    ENDPOINT_PAUSE = "inference_endpoint_pause"
    ENDPOINT_DELETE = "inference_endpoint_delete"
    REPO_CREATE = "repo_create"  # create, or duplicate a repo
    REPO_DELETE = "repo_delete"
    REPO_MOVE = "repo_move"
    REPO_SETTINGS = "repo_settings"  # visibility, gating
    COMMIT = "commit"
    HISTORY_REWRITE = "history_rewrite"  # super-squash
    BRANCH_CREATE = "branch_create"
    BRANCH_DELETE = "branch_delete"
    TAG_CREATE = "tag_create"
    TAG_DELETE = "tag_delete"
    PR_MERGE = "pr_merge"
    DISCUSSION_CREATE = "discussion_create"
    DISCUSSION_COMMENT = "discussion_comment"
    DISCUSSION_STATUS = "discussion_status"
    DISCUSSION_EDIT = "discussion_edit"  # title, comment edit/hide
    GIT_PUSH = "git_push"
    WRITE = "write"  # any other non-read request: gated, never guessed harmless

    @property
    def gated(self) -> bool:
        return self not in (RouteKind.READ, RouteKind.UPLOAD_PREP)


_TYPES = r"(?P<type>models|datasets|spaces|kernels)"
_ID = r"(?P<repo>[^/]+/[^/]+)"
_API_REPO = rf"/api/{_TYPES}/{_ID}"
_NS = r"[^/]+"
_ONE = r"[^/]+"
_ENDPOINT = r"(?:/v2|/api)?/endpoints?"  # /v2/endpoint/{ns} on the endpoints host

# (methods, path regex, kind); the first full match wins; paths are percent-decoded.
_RULES: list[tuple[frozenset[str], re.Pattern[str], RouteKind]] = [
    (frozenset(methods.split()), re.compile(pattern), kind)
    for methods, pattern, kind in [
        # read-only POSTs (they carry a list in the body)
        ("POST", rf"{_API_REPO}/paths-info/.+", RouteKind.READ),
        ("POST", r"/api/validate-yaml", RouteKind.READ),
        ("POST", rf"/(?:(?:datasets|spaces)/)?{_ID}\.git/git-upload-pack", RouteKind.READ),  # git fetch
        # uploads: preparation passes, the commit is gated
        ("POST", rf"{_API_REPO}/preupload/.+", RouteKind.UPLOAD_PREP),
        ("POST", rf"/(?:(?:datasets|spaces)/)?{_ID}\.git/info/lfs/objects/batch", RouteKind.UPLOAD_PREP),
        ("POST", rf"{_API_REPO}/commit/.+", RouteKind.COMMIT),
        ("POST", rf"{_API_REPO}/super-squash/.+", RouteKind.HISTORY_REWRITE),
        ("POST", rf"/(?:(?:datasets|spaces)/)?{_ID}\.git/git-receive-pack", RouteKind.GIT_PUSH),
        # jobs
        ("POST", rf"/api/jobs/{_NS}", RouteKind.JOB_CREATE),
        ("POST", rf"/api/jobs/{_NS}/{_ONE}/duplicate", RouteKind.JOB_CREATE),
        ("POST", rf"/api/jobs/{_NS}/{_ONE}/cancel", RouteKind.JOB_CANCEL),
        ("PUT POST", rf"/api/jobs/{_NS}/{_ONE}/(?:labels|expose)", RouteKind.JOB_UPDATE),
        ("POST", rf"/api/scheduled-jobs/{_NS}", RouteKind.SCHEDULED_JOB_CREATE),
        ("POST", rf"/api/scheduled-jobs/{_NS}/{_ONE}/run", RouteKind.JOB_CREATE),
        ("POST", rf"/api/scheduled-jobs/{_NS}/{_ONE}/suspend", RouteKind.SCHEDULED_JOB_SUSPEND),
        ("POST", rf"/api/scheduled-jobs/{_NS}/{_ONE}/resume", RouteKind.SCHEDULED_JOB_RESUME),
        ("POST PUT", rf"/api/scheduled-jobs/{_NS}/{_ONE}/(?:schedule|labels)", RouteKind.SCHEDULED_JOB_UPDATE),
        ("DELETE", rf"/api/scheduled-jobs/{_NS}/{_ONE}", RouteKind.SCHEDULED_JOB_DELETE),
        # Spaces
        ("POST", rf"/api/spaces/{_ID}/hardware", RouteKind.SPACE_HARDWARE),
        ("POST DELETE", rf"/api/spaces/{_ID}/secrets", RouteKind.SPACE_SECRETS),
        ("POST DELETE", rf"/api/spaces/{_ID}/variables", RouteKind.SPACE_VARIABLES),
        ("POST PUT DELETE", rf"/api/spaces/{_ID}/(?:restart|pause|sleeptime|dev-mode|volumes)",
         RouteKind.SPACE_RUNTIME),
        # inference endpoints
        ("POST", rf"{_ENDPOINT}/{_NS}", RouteKind.ENDPOINT_CREATE),
        ("POST", r"(?:/api/v1)?/catalog/(?:recipe|model)/.+/deploy", RouteKind.ENDPOINT_CREATE),
        ("PUT PATCH", rf"{_ENDPOINT}/{_NS}/{_ONE}", RouteKind.ENDPOINT_UPDATE),
        ("DELETE", rf"{_ENDPOINT}/{_NS}/{_ONE}", RouteKind.ENDPOINT_DELETE),
        ("POST", rf"{_ENDPOINT}/{_NS}/{_ONE}/resume", RouteKind.ENDPOINT_RESUME),
        ("POST", rf"{_ENDPOINT}/{_NS}/{_ONE}/scale-to-zero", RouteKind.ENDPOINT_SCALE),
        ("POST", rf"{_ENDPOINT}/{_NS}/{_ONE}/pause", RouteKind.ENDPOINT_PAUSE),
        # repos
        ("POST", r"/api/repos/create", RouteKind.REPO_CREATE),
        ("POST", rf"{_API_REPO}/duplicate", RouteKind.REPO_CREATE),  # refined to SPACE_HARDWARE by body
        ("DELETE", r"/api/repos/delete", RouteKind.REPO_DELETE),
        ("POST", r"/api/repos/move", RouteKind.REPO_MOVE),
        ("PUT", rf"{_API_REPO}/settings", RouteKind.REPO_SETTINGS),
        ("POST", rf"{_API_REPO}/branch/.+", RouteKind.BRANCH_CREATE),
        ("DELETE", rf"{_API_REPO}/branch/.+", RouteKind.BRANCH_DELETE),
        ("POST", rf"{_API_REPO}/tag/.+", RouteKind.TAG_CREATE),
        ("DELETE", rf"{_API_REPO}/tag/.+", RouteKind.TAG_DELETE),
        # discussions and pull requests
        ("POST", rf"{_API_REPO}/discussions", RouteKind.DISCUSSION_CREATE),
        ("POST", rf"{_API_REPO}/discussions/\d+/merge", RouteKind.PR_MERGE),
        ("POST", rf"{_API_REPO}/discussions/\d+/comment", RouteKind.DISCUSSION_COMMENT),
        ("POST", rf"{_API_REPO}/discussions/\d+/status", RouteKind.DISCUSSION_STATUS),
        ("POST", rf"{_API_REPO}/discussions/\d+/(?:title|comment/{_ONE}/(?:edit|hide))", RouteKind.DISCUSSION_EDIT),
    ]
]

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_REPO_IN_PATH = [
    re.compile(rf"{_API_REPO}(?:/.*)?"),
    re.compile(r"/api/(?P<type>spaces)/(?P<repo>[^/]+/[^/]+)/.*"),
    re.compile(r"/(?:(?P<type>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+?)(?:\.git)?/(?:resolve|info|git-).*"),
]
_SINGULAR = {"models": "model", "datasets": "dataset", "spaces": "space", "kernels": "kernel", None: "model"}


def classify(method: str, path: str, query: Mapping[str, Sequence[str]] | None = None) -> RouteKind:
    """The kind of ``method path``; ``query`` is accepted for routes that may need it."""
    method = method.upper()
    if method in _READ_METHODS:
        return RouteKind.READ
    path = unquote(path)
    for methods, pattern, kind in _RULES:
        if method in methods and pattern.fullmatch(path):
            return kind
    return RouteKind.WRITE


def refine(kind: RouteKind, body: Any) -> RouteKind:
    """The kind once the body is known: duplicating a Space onto paid hardware spends."""
    if kind is RouteKind.REPO_CREATE and isinstance(body, dict) and body.get("hardware"):
        return RouteKind.SPACE_HARDWARE
    return kind


def repo_of(path: str) -> tuple[str, str] | None:
    """(repo_type, repo_id) when the path names a repo (``model``/``dataset``/``space``)."""
    path = unquote(path)
    if path.startswith("/api/") and not re.match(rf"/api/{_TYPES}/", path):
        return None
    for pattern in _REPO_IN_PATH:
        match = pattern.fullmatch(path)
        if match:
            return _SINGULAR[match.group("type")], match.group("repo")
    return None


def repo_from_body(kind: RouteKind, body: Any) -> tuple[str, str] | None:
    """The repo that create/delete/move name in their JSON body (they have none in the path)."""
    if not isinstance(body, dict):
        return None
    repo_type = str(body.get("type") or "model")
    if kind is RouteKind.REPO_MOVE and isinstance(body.get("fromRepo"), str):
        return repo_type, body["fromRepo"]
    if kind in (RouteKind.REPO_CREATE, RouteKind.REPO_DELETE) and isinstance(body.get("name"), str):
        namespace = body.get("organization")
        return repo_type, f"{namespace}/{body['name']}" if namespace else body["name"]
    return None


__all__ = ["RouteKind", "classify", "refine", "repo_from_body", "repo_of"]
