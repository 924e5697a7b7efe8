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

A question nobody was typing into answers its first key after the grace period. The app
records when the last two keys came (``last_key_at``, ``previous_key_at``, from
``time.perf_counter``) as it takes each key.
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
        self.opened_at = now = time.perf_counter()
        #: keys were coming when the question appeared: they are the prompt's until a pause
        self.streak = now - getattr(app, "last_key_at", float("-inf")) < quiet_s

    def too_soon(self) -> bool:
        return time.perf_counter() - self.opened_at < self.grace_s

    def typing_now(self) -> bool:
        """Whether a key coming now would not be an answer (no side effects)."""
        return self.too_soon() or (self.streak and time.perf_counter() - self.app.last_key_at < self.quiet_s)

    def is_answer(self) -> bool:
        """Whether the key being handled (the app's last one) is meant for the question."""
        if self.too_soon():
            return False
        if self.streak:
            app = self.app
            if app.last_key_at - app.previous_key_at < self.quiet_s:
                return False  # still the same burst of typing
            self.streak = False
        return True
