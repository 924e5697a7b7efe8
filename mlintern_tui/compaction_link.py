"""The app's side of compaction you can see: ``/compact [focus]`` first asks the session what it
would summarise and keep (``compact`` with ``preview``, nothing changes), shows that as a card
in the conversation that asks to confirm, and sends the real ``compact`` only on enter or y.
A preview sent before an automatic compaction and the ledger of each compaction are cards too.

Built by the app on first use; it gets the few things it uses, not the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from agent.protocol import Compact, Compacted, CompactionPreview, Op

if TYPE_CHECKING:
    from widgets.compaction_card import CompactionPreviewCard
    from widgets.conversation import Conversation


class CompactionLink:
    def __init__(self, *, submit: Callable[[Op], None], notice: Callable[[str, str], Awaitable[None]],
                 conversation: Callable[[], Conversation], focus_prompt: Callable[[], Any]):
        self.submit = submit
        self.notice = notice
        self.conversation = conversation
        self.focus_prompt = focus_prompt
        #: the focus of each /compact whose preview has not come back yet, oldest first
        self._asked: list[str | None] = []

    def ask(self, focus: str | None) -> None:
        """``/compact [focus]``: the preview first; the card asks before anything changes."""
        self._asked.append(focus)
        self.submit(Compact(focus=focus, preview=True))

    async def on_preview(self, preview: CompactionPreview) -> None:
        asked = not preview.automatic and bool(self._asked)
        focus = self._asked.pop(0) if asked else None
        card = await self.conversation().add_compaction_preview(preview, confirm=asked, focus=focus)
        if card.takes_escape:
            card.focus()

    async def on_compacted(self, compacted: Compacted) -> None:
        await self.conversation().add_compaction_ledger(compacted)

    def on_answer(self, answer: CompactionPreviewCard.Answered) -> None:
        if answer.compact:
            self.submit(Compact(focus=answer.focus))
        self.focus_prompt()
