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

import operator
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class RoundMemo(Generic[T]):
    def __init__(self, make: Callable[[Any], T]) -> None:
        self._make = make
        self._messages: list[Any] = []
        self._values: list[T] = []

    def derive(self, messages: list[Any]) -> list[T]:
        """``make(m)`` for each message, reusing the value of every message the last call saw.

        The common case is the last request's messages, in order, plus new ones: found by one
        identity comparison per message in C (``map(operator.is_, ...)``), without a lookup."""
        old, old_values = self._messages, self._values
        same = list(map(operator.is_, old, messages))
        kept = same.index(False) if False in same else len(same)
        if kept == len(old):
            values = old_values + [self._make(m) for m in messages[kept:]]
        else:  # something went or changed: what is still there is found by identity
            seen = {id(m): (m, v) for m, v in zip(old[kept:], old_values[kept:])}
            values = old_values[:kept]
            for message in messages[kept:]:
                hit = seen.get(id(message))
                values.append(hit[1] if hit is not None and hit[0] is message else self._make(message))
        self._messages, self._values = list(messages), values
        return list(values)

    def forget(self) -> None:
        """After messages were changed in place (a heal that strips what the provider refused)."""
        self._messages, self._values = [], []

    def __len__(self) -> int:
        return len(self._messages)
