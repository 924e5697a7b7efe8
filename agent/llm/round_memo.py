"""What a request derives from each history message, worked out once per message.

An agent sends its whole history with every request, so whatever a request does per message
(the wire form of a tool result, its JSON) grows with the conversation: at 1,200 messages
encoding the body alone took 5 ms a round, on the loop that draws the screen.

History messages are not changed in place once appended: a change (compaction shrinking one,
a prompt joined to a guard note) makes a new dict. So a message that is the very object the
last request sent has the same derived value. The memo keeps only the messages of the last
request, with a reference to each: a message that left the history (undo, compaction) is
dropped with the next request, and its id cannot be reused by another object while it is kept.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class RoundMemo(Generic[T]):
    def __init__(self, make: Callable[[Any], T]) -> None:
        self._make = make
        self._kept: dict[int, tuple[Any, T]] = {}

    def derive(self, messages: list[Any]) -> list[T]:
        """``make(m)`` for each message, reusing the value of every message the last call saw."""
        old, kept, out = self._kept, {}, []
        for message in messages:
            hit = old.get(id(message))
            if hit is None or hit[0] is not message:
                hit = (message, self._make(message))
            kept[id(message)] = hit
            out.append(hit[1])
        self._kept = kept
        return out

    def __len__(self) -> int:
        return len(self._kept)
