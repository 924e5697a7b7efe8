"""Keys typed for the prompt are not a dialog's answers.

A dialog that opens while the user is typing (the config file read just after the first
frame turns out broken or wider than agreed, a moment after the prompt took its first keys)
would otherwise take the next letters as choices: an ``s`` in "this" starting without the
config, an ``a`` accepting wider permissions. So a dialog that opens within ``QUIET_S`` of a
key ignores keys until one comes after a pause of ``QUIET_S``; a dialog nobody was typing
into answers its first key, as before.
"""

from __future__ import annotations

import time
from typing import Any

#: a pause this long before a key makes it an answer (the approval cards' grace period)
QUIET_S = 0.4


class TypeAhead:
    def __init__(self, app: Any, quiet_s: float = QUIET_S) -> None:
        self.app = app
        self.quiet_s = quiet_s
        #: keys were coming when the dialog opened: they are the prompt's until a pause
        self.streak = time.perf_counter() - getattr(app, "last_key_at", float("-inf")) < quiet_s

    def typing_now(self) -> bool:
        """Whether a key coming now would still count as the typing (no side effects)."""
        return self.streak and time.perf_counter() - self.app.last_key_at < self.quiet_s

    def is_answer(self) -> bool:
        """Whether the key being handled (the app's last one) is meant for the dialog."""
        if self.streak:
            app = self.app
            if app.last_key_at - app.previous_key_at < self.quiet_s:
                return False  # still the same burst of typing
            self.streak = False
        return True
