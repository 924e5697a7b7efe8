"""What a Hub write will send, worked out by the approval card's review (before the user
decides) and worked out again by the run (after), so the card lists the files the commit
carries, with the README as it will be after provenance is added. The two plans are compared
by ``fingerprint``: a file added, removed or changed on disk in between makes the run upload
nothing rather than something the user did not see (``changed_since_review``).

Local folders are walked like ``upload_folder`` does (sorted, ``patterns`` as allow-patterns,
the client's default ignores such as ``.git/``), but here, so the file list is known up front.
Symbolic links are not followed out of the folder: a link whose target lies outside it is
skipped and named in ``UploadPlan.skipped`` (shown on the card and in the result); links to
folders are never descended (as ``upload_folder`` does not). A ``local_path`` that is itself a
link (or under one) leading out of the working directory is refused.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.hub_provenance import applies_to, with_provenance

#: files listed on an approval card; the rest are counted in a note
REVIEW_MAX_FILES = 200
#: the README is read as text for provenance and the diff only below this size
README_MAX_BYTES = 1_000_000
#: skipped links named one by one on the card and in the result; the rest are counted
SKIPPED_MAX_LISTED = 20


@dataclass
class PlannedFile:
    path: str
    size: int | None
    source: str
    #: inline bytes (``content`` or a rewritten README); None: read from ``local``
    data: bytes | None = None
    #: the real file (never a link) read for the commit
    local: Path | None = None
    #: what identifies this version of the file: (size, mtime_ns, real path) on disk, or
    #: ("content", sha256) for text given in the call
    stamp: tuple[Any, ...] = ()


@dataclass
class UploadPlan:
    files: list[PlannedFile] = field(default_factory=list)
    #: the README.md text the commit will write, when it writes one
    readme: str | None = None
    #: one sentence per link in the folder that is not uploaded ("skipped: … is a link …")
    skipped: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)

    def skipped_notes(self) -> list[str]:
        shown = self.skipped[:SKIPPED_MAX_LISTED]
        rest = len(self.skipped) - len(shown)
        return shown + ([f"skipped: {rest} more links that lead out of the folder or to folders"] if rest else [])


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
        data = params.content.encode()
        _add(plan, params.repo_type, PlannedFile(dest, None, "content", data=data,
                                                 stamp=("content", hashlib.sha256(data).hexdigest())))
        return plan
    given = cwd / Path(params.local_path).expanduser()
    local = given.resolve()
    if _links_out(given, cwd):
        raise PlanError(f"local_path {params.local_path!r} leads through a link to {local}, outside the working "
                        "directory; it is not uploaded (copy the files into the working directory to upload them).")
    if local.is_file():
        dest = repo_path(params.path_in_repo or params.path or local.name)
        _add(plan, params.repo_type, _on_disk(dest, local, cwd))
        return plan
    if not local.is_dir():
        raise PlanError(f"local_path {params.local_path!r} does not exist (looked for {local}).")
    from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS
    from huggingface_hub.utils import filter_repo_objects

    found, links = _walk(local)
    ignore = list(DEFAULT_IGNORE_PATTERNS)
    chosen = list(filter_repo_objects(found, allow_patterns=params.patterns or None, ignore_patterns=ignore))
    for rel, (kind, is_dir) in sorted(links.items()):
        wanted = filter_repo_objects([rel], ignore_patterns=ignore) if is_dir else \
            filter_repo_objects([rel], allow_patterns=params.patterns or None, ignore_patterns=ignore)
        if list(wanted):
            plan.skipped.append(f"skipped: {rel} is a link to {kind}")
    if not chosen:
        what = f" matching {params.patterns}" if params.patterns else ""
        also = ("; " + "; ".join(plan.skipped_notes())) if plan.skipped else ""
        raise PlanError(f"no files{what} in {local} to upload{also}.")
    prefix = repo_path(params.path_in_repo) + "/" if params.path_in_repo and params.path_in_repo.strip("/") else ""
    for rel in chosen:
        _add(plan, params.repo_type, _on_disk(prefix + rel, found[rel], cwd))
    return plan


def _on_disk(dest: str, real: Path, cwd: Path) -> PlannedFile:
    st = real.stat()
    return PlannedFile(dest, st.st_size, _shown(real, cwd), local=real, stamp=(st.st_size, st.st_mtime_ns, str(real)))


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _links_out(given: Path, cwd: Path) -> bool:
    """Whether ``given`` reaches outside the working directory through a link: it is a link
    itself, or a link in its part under the working directory, and it resolves outside it."""
    lexical, base = Path(os.path.normpath(given)), Path(os.path.normpath(cwd))
    if _inside(lexical.resolve(), base.resolve()):
        return False
    try:
        parts = lexical.relative_to(base).parts
    except ValueError:
        return lexical.is_symlink()
    step = base
    for part in parts:
        step = step / part
        if step.is_symlink():
            return True
    return False


def _walk(root: Path) -> tuple[dict[str, Path], dict[str, tuple[str, bool]]]:
    """The files under ``root`` (an already resolved folder), sorted: repo-relative path ->
    the real file; and the links not followed: path -> (what it leads to, whether a folder).
    A link to a file inside ``root`` is uploaded (from its target); every other link is not."""
    found: dict[str, Path] = {}
    links: dict[str, tuple[str, bool]] = {}
    pending = [root]
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                path = Path(entry.path)
                rel = path.relative_to(root).as_posix()
                if entry.is_symlink():
                    target = path.resolve()
                    inside = _inside(target, root)
                    if target.is_dir():
                        links[rel] = ("another folder inside the folder (not followed)" if inside
                                      else "a folder outside the folder", True)
                    elif not target.exists():
                        links[rel] = ("nothing (a broken link)", False)
                    elif inside and target.is_file():
                        found[rel] = target
                    else:
                        links[rel] = ("a file outside the folder", False)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                elif entry.is_file(follow_symlinks=False):
                    found[rel] = path
    return dict(sorted(found.items())), links


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
    """``CommitOperationAdd`` per planned file (blocking: hashes the files). A planned file
    that has become a link since it was planned is refused, not followed."""
    from huggingface_hub import CommitOperationAdd

    for f in plan.files:
        if f.data is None and f.local is not None and f.local.resolve() != f.local:
            raise PlanError(f"{f.source} became a link since the upload was planned; nothing was uploaded.")
    return [CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=f.data if f.data is not None else str(f.local))
            for f in plan.files]


def fingerprint(plan: UploadPlan | None) -> dict[str, tuple[Any, ...]]:
    """Repo path -> the version of what goes there (None: a plan that could not be made,
    which fingerprints as no files)."""
    return {f.path: f.stamp for f in plan.files} if plan is not None else {}


def changed_since_review(before: dict[str, tuple[Any, ...]], now: dict[str, tuple[Any, ...]]) -> str | None:
    """The sentence refusing an upload whose files are no longer the ones the user approved,
    or None when they are the same."""
    changes = []
    for path in sorted(before.keys() | now.keys()):
        if path not in before:
            changes.append(f"{path} (new)")
        elif path not in now:
            changes.append(f"{path} (removed)")
        elif before[path] != now[path]:
            changes.append(f"{path} (modified)")
    if not changes:
        return None
    shown = ", ".join(changes[:20]) + (f" and {len(changes) - 20} more" if len(changes) > 20 else "")
    count = f"{len(changes)} file" + ("s" if len(changes) != 1 else "")
    return (f"ERROR: {count} changed since the user approved this upload: {shown} - nothing was uploaded; "
            "ask again so the user sees the current files.")


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
