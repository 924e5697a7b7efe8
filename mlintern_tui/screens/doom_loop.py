"""The doom-loop card: a repetition guard paused the turn, and the user picks a remedy with one
key - ``s`` stop, ``h`` type a hint and continue, ``m`` switch model and continue, ``c``
continue. Like the approval card, keys pressed within ``GRACE_S`` of it appearing are ignored,
and so is typing under way when it appeared until a pause (``widgets/type_ahead.py``): someone
typing in the prompt must not pick a remedy by accident. Escape is "stop": the turn
already ended, nothing more is sent.

Dismisses with a ``Remedy``; the app sends the ops (``mlintern_tui/remedies.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from agent.protocol import Guard
from mlintern_tui.screens.approval import GRACE_S
from widgets.doom_loop_card import DoomLoopCard
from widgets.type_ahead import KeyGuard

RemedyKind = Literal["stop", "hint", "switch_model", "continue"]


@dataclass(frozen=True)
class Remedy:
    kind: RemedyKind
    hint: str = ""


class DoomLoopScreen(ModalScreen[Remedy]):
    BINDINGS = [
        Binding("s", "pick('stop')", "Stop"),
        Binding("h", "hint", "Hint"),
        Binding("m", "pick('switch_model')", "Switch model"),
        Binding("c", "pick('continue')", "Continue"),
        Binding("escape", "escape", "Stop"),
    ]
    DEFAULT_CSS = """
    DoomLoopScreen { align: center middle; background: $background 50%; }
    DoomLoopScreen > Vertical { width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 0 1;
        border-title-color: $foreground; border-title-style: bold; }
    DoomLoopScreen Input { display: none; }
    DoomLoopScreen.-hint Input { display: block; }
    DoomLoopScreen .doom-keys { color: $foreground-muted; margin: 1 0 0 0; }
    """

    def __init__(self, guard: Guard, grace_s: float = GRACE_S):
        super().__init__()
        self.guard = guard
        self.grace_s = grace_s
        self._keys: KeyGuard | None = None

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Repetition guard"
            yield DoomLoopCard(self.guard)
            yield Input(placeholder="A hint for the agent, e.g. read the traceback before running the tests again",
                        id="doom-hint")
            yield Static(self.key_hint(), classes="doom-keys")

    def on_mount(self) -> None:
        self._keys = KeyGuard(self.app, self.grace_s, grace_s=self.grace_s)
        self.app.bell()

    def key_hint(self) -> Content:
        if self.has_class("-hint"):
            return Content("enter continue with this hint · esc back")
        return Content("s stop · h hint · m switch model · c continue · esc stop")

    def _in_grace(self) -> bool:
        """Whether a key coming now would be ignored."""
        return self._keys is None or self._keys.typing_now()

    def _not_an_answer(self) -> bool:
        return self._keys is None or not self._keys.is_answer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.has_class("-hint") and action in ("pick", "hint"):
            return False  # letters are the hint's text
        if action == "pick" and parameters and parameters[0] not in self.guard.remedies:
            return False
        if action == "hint" and "hint" not in self.guard.remedies:
            return False
        return True

    def action_pick(self, kind: str) -> None:
        if not self._not_an_answer():
            self.dismiss(Remedy(kind))  # type: ignore[arg-type]

    def action_hint(self) -> None:
        if self._not_an_answer():
            return
        self.add_class("-hint")
        self.query_one(".doom-keys", Static).update(self.key_hint())
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        hint = " ".join(event.value.split())
        if hint:
            self.dismiss(Remedy("hint", hint))

    def action_escape(self) -> None:
        if self.has_class("-hint"):
            self.remove_class("-hint")
            self.query_one(".doom-keys", Static).update(self.key_hint())
            self.set_focus(None)
            return
        self.dismiss(Remedy("stop"))
