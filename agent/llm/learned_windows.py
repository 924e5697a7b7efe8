"""What servers taught us about themselves, remembered per model: the context window they
stated, and whether they stream nothing when offered tools.

A provider whose real window is smaller than the one we assumed (a local server started with a
short ``--ctx-size``, a router provider serving a cut-down variant) says so in its overflow
error ("maximum context length is 4096 tokens", "context size (4096 tokens)", "210000 tokens >
200000 maximum"). ``stated_window`` reads the number; ``LearnedWindows`` keeps it in
``<data dir>/model_windows.json`` so the next session starts with it.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from agent.cache_files import write_json

log = logging.getLogger(__name__)

FILE = "model_windows.json"
_NUMBER = r"(\d[\d,_]*)"
_PATTERNS = (
    re.compile(rf"maximum context length is {_NUMBER}", re.I),  # OpenAI, vLLM
    re.compile(rf"context (?:size|window|length)[^\d]{{0,20}}{_NUMBER}\s*(?:tokens)?", re.I),  # llama.cpp, others
    re.compile(rf"> ?{_NUMBER} maximum", re.I),  # Anthropic: "210000 tokens > 200000 maximum"
    re.compile(rf"max(?:imum)?[ _](?:input[ _])?tokens?[^\d]{{0,12}}{_NUMBER}", re.I),
)
_PLAUSIBLE = range(512, 20_000_001)


def stated_window(text: str) -> int | None:
    """The context window an overflow error states, or None when it states none."""
    for pattern in _PATTERNS:
        match = pattern.search(text or "")
        if match:
            value = int(re.sub(r"[,_]", "", match.group(1)))
            if value in _PLAUSIBLE:
                return value
    return None


class LearnedWindows:
    def __init__(self, path: Path):
        self.path = path
        self._windows: dict[str, int] | None = None

    def all(self) -> dict[str, int]:
        if self._windows is None:
            try:
                data = json.loads(self.path.read_text())
                self._windows = {str(k): int(v) for k, v in data.items() if isinstance(v, int) and v > 0}
            except (OSError, ValueError, AttributeError):
                self._windows = {}
        return dict(self._windows)

    def record(self, model_id: str, tokens: int) -> None:
        windows = self.all()
        windows[model_id] = tokens
        self._windows = windows
        # written whole, then moved into place: a crash never leaves half a file
        if not write_json(self.path, windows, indent=1, sort_keys=True):
            log.warning("could not remember the context window of %s in %s", model_id, self.path)


NO_STREAM_FILE = "no_stream_servers.json"


class NoStreamServers:
    """Servers (model id and base URL) that answer an empty stream when offered tools, kept in
    ``<data dir>/no_stream_servers.json``: their tool requests go out without streaming from
    the first request of a later session on."""

    def __init__(self, path: Path | None):
        self.path = path
        self._known: set[tuple[str, str]] | None = None

    def _load(self) -> set[tuple[str, str]]:
        if self._known is None:
            self._known = set()
            if self.path is not None:
                try:
                    for item in json.loads(self.path.read_text()):
                        if isinstance(item, list) and len(item) == 2:
                            self._known.add((str(item[0]), str(item[1])))
                except (OSError, ValueError, TypeError):
                    pass
        return self._known

    def __contains__(self, server: tuple[str, str | None]) -> bool:
        return (server[0], server[1] or "") in self._load()

    def add(self, server: tuple[str, str | None]) -> None:
        known = self._load()
        known.add((server[0], server[1] or ""))
        if self.path is None:
            return
        if not write_json(self.path, sorted(list(pair) for pair in known)):
            log.warning("could not remember in %s that %s streams nothing with tools", self.path, server[0])


def merged(config_windows: dict[str, int], learned: dict[str, int]) -> dict[str, int]:
    """The windows to use: the config's, except where a server stated a smaller one."""
    out = dict(learned)
    for model_id, tokens in config_windows.items():
        out[model_id] = min(tokens, learned.get(model_id, tokens))
    return out
