"""The output budget every tool result goes through (DESIGN §3).

Long outputs keep their head and tail (errors usually sit at the end, context at the
start); the full text is spilled to a file whose path is given to the model so nothing is
lost and it can ``read`` the part it needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

DEFAULT_MAX_CHARS = 25_000
HEAD_FRACTION = 0.25


def apply_output_budget(
    text: str,
    spill_dir: Path,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    label: str = "output",
) -> tuple[str, str | None]:
    """Return ``(text_for_model, spill_path)``; spill_path is None when nothing was cut."""
    if len(text) <= max_chars:
        return text, None
    spill_path: str | None = None
    try:
        spill_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:10]
        path = spill_dir / f"{label}-{int(time.time())}-{digest}.txt"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8", errors="replace")
        os.replace(tmp, path)
        spill_path = str(path)
    except OSError as exc:  # a full disk must not lose the head and tail we can still show
        spill_note = f"(the full text could not be saved: {exc})"
    else:
        spill_note = f"The full {len(text):,} characters are in {spill_path} (use read with offset/limit)."
    head_len = int(max_chars * HEAD_FRACTION)
    tail_len = max_chars - head_len
    omitted = len(text) - head_len - tail_len
    cut = (
        f"{text[:head_len]}\n\n... [{omitted:,} characters omitted. {spill_note}] ...\n\n"
        f"{text[-tail_len:]}"
    )
    return cut, spill_path


def human_size(n: Any, unknown: str = "?") -> str:
    """Bytes for people, in the Hub's decimal units: 512 B, 2.0 kB, 48.2 MB; ``unknown`` when
    ``n`` is not a byte count."""
    if isinstance(n, bool) or not isinstance(n, (int, float)) or n < 0:
        return unknown
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return unknown


def ago(seconds: float) -> str:
    """How long ago, for people: "just now", "12 min ago", "3 h ago", "4 days ago"."""
    if seconds < 120:
        return "just now"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def short_json(value: Any, limit: int = 100) -> str:
    """A call's arguments on one line, cut to ``limit`` characters (progress lines, headless status)."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
