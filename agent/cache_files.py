"""Small JSON files of remembered things (a start's tool schemas, model-map lookups, recent
models, learned context windows, the router's catalog): read when they are whole, written
whole or not at all, and never a reason to fail."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def read_json(path: Path) -> Any:
    """The file's JSON, or None when it is missing, unreadable or broken."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Any, **dump: Any) -> bool:
    """Replace the file with ``data`` in one step (a reader sees the old or the new file, never
    half of one); False when it cannot be written (read-only or full disk), which the caller
    may say. ``dump``: ``json.dump``'s options (compact separators unless given)."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, **(dump or {"separators": (",", ":")}))
        os.replace(tmp, path)
        tmp = None
        return True
    except (OSError, TypeError, ValueError):
        return False
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
