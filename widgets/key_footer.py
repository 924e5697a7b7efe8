"""Textual's footer, without restyling every key twice each time it is rebuilt.

``Footer`` rebuilds its keys whenever the active bindings change (focus moves, a screen
opens, the app refreshes its bindings). A new ``FooterKey`` starts out compact and is then
bound to the footer's ``compact``, which is False: every key had its class removed again
right after it was made, and each removal re-applied the style sheet to that key. That was
about 15 ms of a start's ~450 ms. Here each key starts out the way it will stay, so the
binding finds nothing to change; the footer looks and behaves exactly as Textual's.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeyFooter(Footer):
    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                # the command palette's key is not bound to the footer's compact: it stays compact,
                # as every FooterKey starts (tests/test_key_footer.py compares with Textual's)
                compact = True if widget.has_class("-command-palette") else self.compact
                widget.set_reactive(FooterKey.compact, compact)
                widget.set_class(compact, "-compact", update=False)
            yield widget
