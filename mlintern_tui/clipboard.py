"""Copying the last answer, its last code block or a message picked in the conversation's
select mode to the clipboard (OSC 52), and saying
honestly what that means: the terminal never confirms a clipboard write."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mlintern_tui.commands import REGISTRY
from widgets.conversation import AnswerBlock, Conversation

if TYPE_CHECKING:
    from mlintern_tui.app import MLInternApp


class CopyMixin:
    def action_copy_answer(self) -> None:
        answers = list(self.conversation.query(AnswerBlock))
        text = answers[-1].text if answers else ""
        self.copy_text(text, "the last answer")

    def on_conversation_copy_requested(self, message: Conversation.CopyRequested) -> None:
        self.copy_text(message.text, message.what)  # y on a message in select mode

    def copy_text(self, text: str, what: str) -> None:
        if not text:
            self.notify(f"Nothing to copy: there is no {what} yet.", severity="warning")
            return
        self.copy_to_clipboard(text)
        # OSC 52 is fire-and-forget: the terminal never confirms, so we cannot know it worked
        self.notify(f"Sent {what} ({len(text):,} chars) to the clipboard with OSC 52. It arrives only if your "
                    "terminal allows clipboard writes (tmux: set -g set-clipboard on).", timeout=6)


_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)


@REGISTRY.add("/copy", "/copy [code]", "Copy the last answer, or its last code block")
async def _copy(app: MLInternApp, arg: str) -> None:
    answers = list(app.conversation.query(AnswerBlock))
    text = answers[-1].text if answers else ""
    if arg == "code":
        blocks = _FENCE.findall(text)
        app.copy_text(blocks[-1] if blocks else "", "code block")
    else:
        app.copy_text(text, "the last answer")
