"""The knowledge tools' response cache: answers on disk with a TTL (see agent/net.py)."""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.net import Response

log = logging.getLogger(__name__)


@dataclass
class _CacheEntry:
    ts: float
    url: str
    status: int
    headers: dict[str, str]
    content: bytes


@dataclass
class ResponseCache:
    """Responses on disk with a TTL (one small JSON file each, written atomically)."""

    root: Path

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str, ttl: float) -> _CacheEntry | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entry = _CacheEntry(data["ts"], data["url"], data["status"], data["headers"],
                                base64.b64decode(data["body"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if time.time() - entry.ts > ttl:
            return None
        return entry

    def put(self, key: str, response: Response) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            keep = {k: v for k, v in response.headers.items() if k in ("content-type", "etag", "last-modified")}
            tmp.write_text(json.dumps({"ts": time.time(), "url": response.url, "status": response.status,
                                       "headers": keep, "body": base64.b64encode(response.content).decode()}),
                           encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # a full disk costs the cache, never the answer
            log.debug("response cache write failed: %s", exc)


def prune_cache(root: Path, ttl_s: float, max_bytes: int) -> int:
    """Delete cache files older than ``ttl_s``, then the oldest until the rest fits in
    ``max_bytes``. Returns how many were deleted; never raises (it is only a cache)."""
    now = time.time()
    entries: list[tuple[float, int, Path]] = []
    deleted = 0
    try:
        paths = list(root.glob("*/*.json"))
    except OSError:
        return 0
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        if now - st.st_mtime > ttl_s:
            try:
                path.unlink()
                deleted += 1
            except OSError:
                pass
        else:
            entries.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= max_bytes:
            break
        try:
            path.unlink()
            deleted += 1
            total -= size
        except OSError:
            pass
    return deleted
