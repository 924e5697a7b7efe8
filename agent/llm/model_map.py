"""litellm's map of model prices and context windows, without importing litellm.

Importing litellm costs seconds of CPU and ~150 MB; a model served by an OpenAI-compatible
server never needs it, yet its price and window may still be in the map (``openai/gpt-4o``
behind a proxy). The map ships with litellm as a JSON file: read here on first use (~35 ms,
~9 MB) when litellm itself is not loaded, and litellm's own copy is used once it is (the
same data: litellm runs offline with its local map, see ``agent.llm.runtime``). What a
lookup found is remembered in the data directory (keyed by the map file's path, size and
mtime), so the next start with the same model reads a small file instead.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from typing import Any

from agent.cache_files import read_json, write_json
from agent.llm import runtime

MAP_FILE = "model_prices_and_context_window_backup.json"
#: what earlier lookups found (or did not), so a start does not read the 9 MB map again for
#: the same model: {"source": [path, size, mtime_ns], "found": {names: entry or null}}
MEMO_FILE = "model-map-lookups.json"
MEMO_MAX = 256  # lookups remembered before the memo starts over

_lock = threading.Lock()
_entries: dict[str, Any] | None = None


def _map_path() -> Path | None:
    """The file inside litellm's package, found without importing the package."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / MAP_FILE
        if path.is_file():
            return path
    return None


def _load() -> dict[str, Any]:
    global _entries
    with _lock:
        if _entries is None:
            path = _map_path()
            try:
                data = json.loads(path.read_text(encoding="utf-8")) if path else {}
            except (OSError, ValueError):
                data = {}
            _entries = data if isinstance(data, dict) else {}
    return _entries


def _find(table: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any] | None:
    for name in names:
        if name:
            entry = table.get(name)
            if isinstance(entry, dict) and entry:
                return entry
    return None


def lookup(*names: str) -> dict[str, Any] | None:
    """The first entry found under any of ``names`` (None: the map does not know them)."""
    if runtime.is_loaded():
        return _find(runtime.get_litellm().model_cost, names)
    key = "\x1f".join(names)
    memo = _memo()
    if memo is not None and key in memo["found"]:
        found = memo["found"][key]
        return found if isinstance(found, dict) and found else None
    entry = _find(_load(), names)
    if memo is not None:
        if len(memo["found"]) >= MEMO_MAX:
            memo["found"] = {}
        memo["found"][key] = entry
        write_json(memo["path"], {"source": memo["source"], "found": memo["found"]})  # unwritten: read the map
    return entry


_memos: dict[Path, dict[str, Any]] = {}  # this process's, by file (a test's data directory is its own)


def _memo() -> dict[str, Any] | None:
    path = _memo_path()
    if path is None:
        return None
    memo = _memos.get(path)
    if memo is None:
        source = _source()
        if source is None:
            return None
        data = read_json(path)
        found = data.get("found") if isinstance(data, dict) and data.get("source") == source else None
        memo = _memos[path] = {"path": path, "source": source, "found": found if isinstance(found, dict) else {}}
    return memo


def _memo_path() -> Path | None:
    from agent.config import data_dir

    try:
        return data_dir() / "cache" / MEMO_FILE
    except (OSError, RuntimeError, ValueError):  # no home directory to speak of
        return None


def _source() -> list[Any] | None:
    path = _map_path()
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return [str(path), st.st_size, st.st_mtime_ns]
