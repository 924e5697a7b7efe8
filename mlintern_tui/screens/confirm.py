"""A yes/no question over the app, answered with one key.

Only ``y`` says yes: enter and escape never do, so a key meant for the prompt (or a held
enter) cannot confirm something the user did not read.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; background: $background 50%; }
    ConfirmScreen > Vertical {
        width: 72; max-width: 95%; height: auto; border: thick $warning; background: $surface; padding: 0 1;
        border-title-color: $foreground; border-title-style: bold;
    }
    ConfirmScreen .confirm-question { text-style: bold; }
    ConfirmScreen .confirm-detail { color: $foreground-muted; margin: 1 0 0 0; }
    ConfirmScreen .confirm-keys { color: $foreground-muted; margin: 1 0 0 0; }
    """

    def __init__(self, title: str, question: str, detail: str = "", *, yes: str = "yes", no: str = "no"):
        """``yes`` and ``no`` say what each key does ("cancel the job", "keep it running")."""
        super().__init__()
        self.title_text = title
        self.question = question
        self.detail = detail
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Content(self.title_text)
            yield Static(self.question, classes="confirm-question", markup=False)
            if self.detail:
                yield Static(self.detail, classes="confirm-detail", markup=False)
            yield Static(f"y {self.yes} · n or esc {self.no}", classes="confirm-keys", markup=False)

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
