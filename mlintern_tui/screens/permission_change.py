"""The config file gives the agent more room than the user last agreed to: a screen that asks
before anything starts (agent/permissions.py).

It lists each widening (a new allow rule, a removed deny rule, a higher YOLO cap, YOLO mode,
a credential in ``pass_env``, a new or trusted MCP server) and any narrowing, which already
applies. Until the user answers, the agent does not run; it then runs with what the user
agreed to unless they accept. ``a`` accepts the file's settings (remembered, not asked
again); ``k`` or escape keeps what was agreed (the file's permission settings are put back).
Keys pressed within the grace period of the screen appearing are ignored, so typing that was
meant for the prompt never accepts anything.

Dismisses with True (accept) or False (keep).
"""

from __future__ import annotations


from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from agent.permissions import PermissionReview
from agent.terminal_text import visible
from mlintern_tui.screens.approval import GRACE_S
from widgets.type_ahead import KeyGuard


class PermissionChangeScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("a", "answer(True)", "Accept the new settings"),
        Binding("k,escape", "answer(False)", "Keep what you agreed to"),
    ]
    DEFAULT_CSS = """
    PermissionChangeScreen { align: center middle; background: $background 80%; }
    PermissionChangeScreen > Vertical {
        width: 100; max-width: 95%; height: auto; max-height: 95%; border: thick $warning; background: $surface;
        padding: 0 1; border-title-color: $foreground; border-title-style: bold;
    }
    PermissionChangeScreen .permission-question { text-style: bold; }
    PermissionChangeScreen VerticalScroll { height: auto; max-height: 20; margin: 1 0 0 0; }
    PermissionChangeScreen .permission-wider { color: $warning; }
    PermissionChangeScreen .permission-narrower { color: $foreground-muted; margin: 1 0 0 0; }
    PermissionChangeScreen .permission-detail { color: $foreground-muted; margin: 1 0 0 0; }
    PermissionChangeScreen .permission-keys { margin: 1 0 0 0; }
    """

    def __init__(self, review: PermissionReview, grace_s: float = GRACE_S):
        super().__init__()
        self.review = review
        self.grace_s = grace_s
        self._keys: KeyGuard | None = None

    def compose(self) -> ComposeResult:
        review = self.review
        with Vertical() as box:
            box.border_title = "Your permissions were changed outside mlintern"
            yield Static(Content(f"{visible(str(review.config_file))} gives the agent more room than you last "
                                 "agreed to:"), classes="permission-question")
            with VerticalScroll():
                yield Static(Content("\n".join(f"+ {visible(line)}" for line in review.wider)),
                             classes="permission-wider")
                if review.narrower:
                    yield Static(Content("Narrower, and already in force:\n" + "\n".join(
                        f"- {visible(line)}" for line in review.narrower)), classes="permission-narrower")
            if review.note:
                yield Static(Content(visible(review.note)), classes="permission-detail")
            yield Static(Content(
                "The agent, a program or a hand edit changed the file; mlintern cannot tell which. Nothing has "
                "started yet, and until you accept, the agent keeps what you agreed to."), classes="permission-detail")
            yield Static(Content.from_markup(
                "[b $accent]a[/] accept these settings (they apply now and are remembered) · [b $accent]k[/] or "
                "[b $accent]esc[/] keep what you agreed to (the file's permission settings are put back)"),
                classes="permission-keys")

    def on_mount(self) -> None:
        # it can open a moment after the first frame, as the user starts typing: those keys are not
        # answers, nor is a key within the grace period (typed before the question could be read)
        self._keys = KeyGuard(self.app, self.grace_s, grace_s=self.grace_s)

    def action_answer(self, accept: bool) -> None:
        if self._keys is None or not self._keys.is_answer():
            return
        self.dismiss(accept)
