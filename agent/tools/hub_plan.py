"""What a Hub write will send, worked out once and used twice: by the approval card's review
(before the user decides) and by the run (after). So the card lists exactly the files the
commit carries, with the README as it will be after provenance is added.

Local folders are walked like ``upload_folder`` does (sorted, ``patterns`` as allow-patterns,
the client's default ignores such as ``.git/``), but here, so the file list is known up front.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.hub_provenance import applies_to, with_provenance

#: files listed on an approval card; the rest are counted in a note
REVIEW_MAX_FILES = 200
#: the README is read as text for provenance and the diff only below this size
README_MAX_BYTES = 1_000_000


@dataclass
class PlannedFile:
    path: str
    size: int | None
    source: str
    #: inline bytes (``content`` or a rewritten README); None: read from ``local``
    data: bytes | None = None
    local: Path | None = None


@dataclass
class UploadPlan:
    files: list[PlannedFile] = field(default_factory=list)
    #: the README.md text the commit will write, when it writes one
    readme: str | None = None

    @property
    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)


class PlanError(Exception):
    """The arguments do not describe an upload or delete that can be made."""


def repo_path(path: str) -> str:
    clean = path.replace("\\", "/").strip().strip("/")
    if not clean or any(part in ("", ".", "..") for part in clean.split("/")):
        raise PlanError(f"{path!r} is not a usable path in a repo (no empty, '.' or '..' parts).")
    return clean


def plan_upload(params: Any, cwd: Path) -> UploadPlan:
    """The files an ``hf_repo_files upload`` call will commit (blocking: reads the disk)."""
    if (params.content is None) == (params.local_path is None):
        raise PlanError("upload needs exactly one of `content` (text) or `local_path` (a local file or folder).")
    plan = UploadPlan()
    if params.content is not None:
        dest = repo_path(params.path or params.path_in_repo or "")
        _add(plan, params.repo_type, PlannedFile(dest, None, "content", data=params.content.encode()))
        return plan
    local = (cwd / Path(params.local_path).expanduser()).resolve()
    if local.is_file():
        dest = repo_path(params.path_in_repo or params.path or local.name)
        _add(plan, params.repo_type, PlannedFile(dest, local.stat().st_size, _shown(local, cwd), local=local))
        return plan
    if not local.is_dir():
        raise PlanError(f"local_path {params.local_path!r} does not exist (looked for {local}).")
    from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS
    from huggingface_hub.utils import filter_repo_objects

    found = {p.relative_to(local).as_posix(): p for p in sorted(local.rglob("*")) if p.is_file()}
    chosen = list(filter_repo_objects(found, allow_patterns=params.patterns or None,
                                      ignore_patterns=list(DEFAULT_IGNORE_PATTERNS)))
    if not chosen:
        what = f" matching {params.patterns}" if params.patterns else ""
        raise PlanError(f"no files{what} in {local} to upload.")
    prefix = repo_path(params.path_in_repo) + "/" if params.path_in_repo and params.path_in_repo.strip("/") else ""
    for rel in chosen:
        file = found[rel]
        _add(plan, params.repo_type, PlannedFile(prefix + rel, file.stat().st_size, _shown(file, cwd), local=file))
    return plan


def _add(plan: UploadPlan, repo_type: str, item: PlannedFile) -> None:
    if applies_to(repo_type, item.path):
        raw = item.data if item.data is not None else _read_small(item.local)
        if raw is not None:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is not None:
                item.data = with_provenance(text).encode()
    if item.data is not None:
        item.size = len(item.data)
        if item.path == "README.md":
            plan.readme = item.data.decode("utf-8", "replace")
    plan.files.append(item)


def _read_small(path: Path | None) -> bytes | None:
    if path is None or path.stat().st_size > README_MAX_BYTES:
        return None
    return path.read_bytes()


def _shown(path: Path, cwd: Path) -> str:
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return str(path)


def commit_operations(plan: UploadPlan) -> list[Any]:
    """``CommitOperationAdd`` per planned file (blocking: hashes the files)."""
    from huggingface_hub import CommitOperationAdd

    return [CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=f.data if f.data is not None else str(f.local))
            for f in plan.files]


def match_deletions(remote: list[str], path: str | None, patterns: list[str] | None) -> list[str]:
    """Repo files a delete removes: ``path`` (a file, or every file under a folder) and files
    matching ``patterns`` (as ``delete_files`` matches them); never ``.gitattributes``."""
    from huggingface_hub.utils import filter_repo_objects

    chosen: set[str] = set()
    if path:
        clean = repo_path(path)
        chosen.update(p for p in remote if p == clean or p.startswith(clean + "/"))
    if patterns:
        chosen.update(filter_repo_objects(remote, allow_patterns=patterns))
    chosen.discard(".gitattributes")
    return sorted(chosen)


def card_diff(current: str | None, new: str | None) -> str | None:
    """Unified diff of README.md from ``current`` (None: absent) to ``new`` (None: deleted)."""
    if (current or "") == (new or ""):
        return None
    lines = difflib.unified_diff((current or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
                                 "a/README.md" if current is not None else "/dev/null",
                                 "b/README.md" if new is not None else "/dev/null")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
