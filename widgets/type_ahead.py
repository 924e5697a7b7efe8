"""Keys typed for the prompt are not a question's answers.

A question that appears on its own (an approval card in the middle of a turn, the repetition
guard's remedies, a broken or widened config file read just after the first frame) can
appear while the user is typing. Without a guard, the next letters would be taken as
choices: a ``y`` in "yes, and then" approving a call, an ``s`` in "this" starting without
the config, an ``a`` accepting wider permissions.

``KeyGuard`` gives a question two rules:
- a grace period (``grace_s``) after it appears, in which no key is an answer: it was typed
  before the question could be read;
- if keys were coming when it appeared, the typing goes on being the prompt's until a
  pause of ``quiet_s``: only a key after such a pause is an answer.

A question nobody was typing into answers its first key after the grace period.

Every time here is when a key came: the key event's own time (``time.monotonic`` when the
driver read it), not when the loop got to it. The app records the times of the last keys
(``key_times``, ``last_key_at``) and of the key whose bindings run now (``key_in_hand``). A
loop busy for half a second while the user types takes the keys that waited as they came, one
burst: not a pause and then an answer. And a key is judged by its own time even when the app
has already taken the keys typed after it.
"""

from __future__ import annotations

import time
from typing import Any

#: a pause this long before a key makes it an answer (the approval cards' grace period)
QUIET_S = 0.4


class KeyGuard:
    def __init__(self, app: Any, quiet_s: float = QUIET_S, grace_s: float = 0.0) -> None:
        self.app = app
        self.quiet_s = quiet_s
        self.grace_s = grace_s
        self.opened_at = time.monotonic()
        #: whether keys were coming when the question appeared (they are the prompt's until a
        #: pause); None until a key asks: keys that came just before it opened may still wait
        #: in the loop's queue as it opens, and they count
        self.streak: bool | None = None

    def _typing_at_open(self) -> bool:
        return any(self.opened_at - self.quiet_s <= t <= self.opened_at for t in getattr(self.app, "key_times", ()))

    def too_soon(self, at: float | None = None) -> bool:
        """Whether a key at ``at`` (now: None) comes within the grace period, or before the
        question appeared."""
        return (time.monotonic() if at is None else at) - self.opened_at < self.grace_s

    def typing_now(self) -> bool:
        """Whether a key coming now would not be an answer (no side effects)."""
        streak = self._typing_at_open() if self.streak is None else self.streak
        return self.too_soon() or (streak and time.monotonic() - self.app.last_key_at < self.quiet_s)

    def is_answer(self) -> bool:
        """Whether the key being handled (the app's ``key_in_hand``) is meant for the question."""
        app = self.app
        at = getattr(app, "key_in_hand", None)
        if at is None or at == float("-inf"):
            at = app.last_key_at
        if self.too_soon(at):
            return False
        if self.streak is None:
            self.streak = self._typing_at_open()
        if self.streak:
            before = max((t for t in getattr(app, "key_times", ()) if t < at), default=float("-inf"))
            if at - before < self.quiet_s:
                return False  # still the same burst of typing
            self.streak = False
        return True
