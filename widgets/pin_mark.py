"""A message as a pin, and the mark a pinned message carries in the conversation.

A pinned message is a ``pin`` op with the message's text: the engine keeps each pin as one
line of the system prompt, so the text is flattened to one line and a long message is cut.
A message is marked pinned when its pin text is among the session's pins (``pins_changed``),
whoever pinned it: ``p`` in the conversation's select mode, ``/pin`` with the same words, or
the session that was resumed.
"""

from __future__ import annotations

from textual.widget import Widget

#: a message pin keeps this much of the message: every model request carries the pins
PIN_CHARS = 1_000
PIN_TITLE = "◆ pinned"


def pin_text(text: str) -> tuple[str, int]:
    """The pin for a message: one line, cut at a word past ``PIN_CHARS``. Also returns the
    length of the flattened message (longer than the pin when it was cut)."""
    flat = " ".join(text.split())
    if len(flat) <= PIN_CHARS:
        return flat, len(flat)
    cut = flat.rfind(" ", PIN_CHARS // 2, PIN_CHARS)
    return flat[: cut if cut > 0 else PIN_CHARS] + " …", len(flat)


def show_pinned(block: Widget, pinned: bool) -> None:
    """The mark: a line over the message (in place of the blank line above it) saying it is
    pinned, so marking moves nothing on screen (see the ``-pinned`` rules of each block)."""
    if pinned != block.has_class("-pinned"):
        block.set_class(pinned, "-pinned")
        block.border_title = PIN_TITLE if pinned else None


def quoted_start(text: str, limit: int = 60) -> str:
    """A pin or a message in a line of feedback: its start, quoted."""
    flat = " ".join(text.split())
    return f"“{flat if len(flat) <= limit else flat[: limit - 1] + '…'}”"
