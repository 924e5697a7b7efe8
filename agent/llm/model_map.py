"""litellm's map of model prices and context windows, without importing litellm.

Importing litellm costs seconds of CPU and ~150 MB; a model served by an OpenAI-compatible
server never needs it, yet its price and window may still be in the map (``openai/gpt-4o``
behind a proxy). The map ships with litellm as a JSON file: read here on first use (~35 ms,
~9 MB) when litellm itself is not loaded, and litellm's own copy is used once it is (the
same data: litellm runs offline with its local map, see ``agent.llm.runtime``).
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from typing import Any

from agent.llm import runtime

MAP_FILE = "model_prices_and_context_window_backup.json"

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


def lookup(*names: str) -> dict[str, Any] | None:
    """The first entry found under any of ``names`` (None: the map does not know them)."""
    table = runtime.get_litellm().model_cost if runtime.is_loaded() else _load()
    for name in names:
        if name:
            entry = table.get(name)
            if isinstance(entry, dict) and entry:
                return entry
    return None
