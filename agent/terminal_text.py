"""Text that is about to reach a terminal, made harmless: escape sequences and control
characters are shown as visible placeholders, never emitted (issue 19). ``␛]52;c;…`` from a
model, a web page or a README can then neither write the clipboard nor retitle the window nor
clear the screen. Newlines and tabs stay; ``\\r`` becomes ``␍``."""

from __future__ import annotations

import re

_TABLE = {c: 0x2400 + c for c in range(0x20) if c not in (0x09, 0x0A)}  # C0 -> control pictures
_TABLE[0x1B] = 0x241B  # ESC -> ␛
_TABLE[0x7F] = 0x2421  # DEL -> ␡
for _c in range(0x80, 0xA0):  # C1 controls (a single-byte CSI/OSC in some terminals)
    _TABLE[_c] = 0xFFFD


def visible(text: str) -> str:
    """``text`` with every control character but newline and tab replaced by a visible sign."""
    return text.translate(_TABLE) if text else text


#: the characters ``visible`` replaces: a search for one is far cheaper than a translation
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def has_controls(text: str) -> bool:
    return _CONTROLS.search(text) is not None
