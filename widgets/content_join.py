"""Joining Textual ``Content`` on one line without Textual 8.2's width miscount.

``Content.join`` starts its running cell length at the separator's own length, so a joined
line claims one separator's worth of cells more than its text fills. The strip drawn from it
then stops short of the widget's right edge, and when the line gets shorter (the status bar
leaving YOLO, a job row losing its cost) the old characters stay on screen.
"""

from __future__ import annotations

from typing import Iterable

from textual.content import Content


def join_line(separator: Content | str, parts: Iterable[Content]) -> Content:
    """``separator.join(parts)`` with the right cell length."""
    sep = separator if isinstance(separator, Content) else Content(separator)
    items: list[Content] = []
    for part in parts:
        if items:
            items.append(sep)
        items.append(part)
    return Content.assemble(*items)
