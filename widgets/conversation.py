"""The conversation pane: prompts, streamed answers, tool cards and notices.

Blocks stack in a ``layout: stream`` scroll container that is anchored to the bottom: it
follows new output until the user scrolls up, stays where they are reading, and follows
again once they scroll back to the bottom. Old blocks are pruned past a height budget so a
day-long session stays fast (their text stays in the engine's history and the store).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from textual._styles_cache import StylesCache
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import var
from textual.widget import Widget
from textual.widgets import Static

from widgets.markdown_view import StreamedMarkdown, settled_virtual_size
from widgets.pin_mark import pin_text, show_pinned
from widgets.receipt import CostReport, ReceiptLine
from widgets.tool_card import ToolCard
from widgets.user_block import UserBlock

if TYPE_CHECKING:
    from agent.protocol import AwayJob, Compacted, CompactionPreview, Receipt, TranscriptItem
    from widgets.compaction_card import CompactionLedgerCard, CompactionPreviewCard
    from widgets.away_card import AwayCard


class AnswerBlock(StreamedMarkdown):
    """One assistant answer. Text arrives in coalesced batches (the bridge flushes ~20 times
    a second); see widgets/markdown_view.py for why this is not a Markdown widget."""

    # the left padding is a blank border, so the select mode's bar takes its place without
    # changing the width (a new width would render the whole answer again); no background
    # for the selected answer: its lines are cached with the one they were drawn with
    DEFAULT_CSS = """
    AnswerBlock { height: auto; margin: 1 0 0 0; padding: 0 1 0 0; border-left: blank; }
    AnswerBlock.-pinned { margin: 0; border-top: blank; border-title-color: $accent; border-title-style: bold; }
    AnswerBlock.-selected { border-left: outer $accent; }
    """

    async def write(self, fragment: str) -> None:
        self.append(fragment)

    async def finish(self, final_text: str | None = None) -> None:
        if final_text is not None and final_text != self.text:
            await self.reset()
            await self.write(final_text)

    async def reset(self) -> None:
        self.clear()


class Notice(Static):
    """Guards, compaction, interrupts, errors and info lines: always visible, never silent."""

    DEFAULT_CSS = """
    Notice { margin: 1 0 0 0; padding: 0 1; color: $text-muted; }
    Notice.-guard { color: $warning; border-left: thick $warning; }
    Notice.-error { color: $error; border-left: thick $error; }
    Notice.-compaction { color: $secondary; border-left: thick $secondary; }
    Notice.-interrupt { color: $warning; text-style: italic; }
    Notice.-receipt { margin: 0; color: $text-muted; text-style: dim; }
    """

    ICONS = {"guard": "⚠", "error": "✗", "compaction": "⇣", "interrupt": "⏹", "info": "ℹ", "receipt": ""}

    def __init__(self, kind: str, text: str):
        super().__init__(markup=False, classes=f"-{kind}")
        self.kind = kind
        icon = self.ICONS.get(kind, "")
        self.update(f"{icon} {text}" if icon else text)


class PrunedNote(Static):
    """The first line of a conversation whose oldest blocks were taken off the screen."""

    DEFAULT_CSS = "PrunedNote { color: $text-muted; text-style: italic; padding: 0 1; }"

    def __init__(self) -> None:
        super().__init__(markup=False)

    def show(self, count: int) -> None:
        self.update(f"↑ {count:,} earlier entr{'ies' if count != 1 else 'y'} not shown, to keep the screen fast "
                    "(the session keeps them)")


class Conversation(VerticalScroll):
    """Owns the blocks; the app's bridge calls these methods with protocol data.

    Select mode (``start_selecting``, alt+↑ in the app): a bar marks one message, ↑/↓ or k/j
    move it (home/g and end/G to the first and last shown), p/u pin or unpin it, y copies it,
    esc or enter go back to the prompt. The
    conversation has the keys while it has focus in the mode; what they do goes up as messages."""

    BINDINGS = [
        Binding("up,k", "select_step(-1)", "Move", key_display="↑↓ jk"),
        Binding("down,j", "select_step(1)", "Move", show=False),
        Binding("home,g", "select_step(-1_000_000)", "First", show=False),
        Binding("end,G", "select_step(1_000_000)", "Last", show=False),
        Binding("p", "pin_selected", "Pin"),
        Binding("u", "unpin_selected", "Unpin"),
        Binding("y", "copy_selected", "Copy"),
        Binding("escape,enter", "stop_selecting", "Back", key_display="esc"),
    ]
    SELECT_ACTIONS = frozenset({"select_step", "pin_selected", "unpin_selected", "copy_selected", "stop_selecting"})

    class PinRequested(Message):
        """p or u on the selected message: pin its text (``pin_text``), or unpin it."""

        def __init__(self, text: str, length: int, remove: bool, what: str) -> None:
            super().__init__()
            self.text, self.length, self.remove, self.what = text, length, remove, what

    class CopyRequested(Message):
        def __init__(self, text: str, what: str) -> None:
            super().__init__()
            self.text, self.what = text, what

    class SelectingStopped(Message):
        """esc or enter in select mode: the keys go back to the prompt."""

    #: what is pinned in the session (``pins_changed``): messages whose text is among them are marked
    pins: var[tuple[str, ...]] = var((), always_update=True)  # a resumed session redraws its messages

    #: prune when the content is taller than this many lines, down to the low mark
    HIGH_MARK = 4000
    LOW_MARK = 3000
    #: ... or holds more blocks than this. Every layout pass arranges every mounted block (and
    #: a pass comes with each new block): at 300 blocks a tool round of a fast model cost
    #: 75 ms of layout and drawing, at 120 about half (bench/tui_long_conversation.py)
    MAX_BLOCKS = 120
    LOW_BLOCKS = 80
    #: transcript items a resumed conversation redraws (the rest stay in the history): about
    #: as many blocks as pruning keeps, since a tool's output joins its call's card
    RESTORE_TAIL = 150

    DEFAULT_CSS = """
    Conversation { layout: stream; padding: 0 1 1 1; scrollbar-size-vertical: 1; }
    """
    virtual_size = settled_virtual_size()

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.answer: AnswerBlock | None = None
        self.cards: dict[str, ToolCard] = {}
        self.pruned_blocks = 0
        #: blocks being removed by a prune (children until Textual has processed it); each prune
        #: keeps only those still here, so the set stays as small as the removals in flight (a
        #: weak set kept every removed block until the collector freed it: ~600 late in a
        #: 1,000-message run, walked on every prune)
        self._leaving: set[Widget] = set()
        #: messages sent while the agent worked that have not reached the model yet, oldest first
        self.pending_steers: list[UserBlock] = []
        #: the message select mode marks (None: not in the mode)
        self.selected: UserBlock | AnswerBlock | None = None
        self._followed_before_selecting = False
        #: the streamed answer's text above a block that split it (end_answer(split=True))
        self._answer_above = ""
        #: the running turn's receipt line, blank until the turn ends (``open_turn``): the
        #: turn's blocks go above it
        self.turn_footer: ReceiptLine | None = None

    def on_mount(self) -> None:
        self.anchor()
        # one watcher for every answer in the pane, not one per answer: Textual drops the
        # watchers of removed widgets only when the theme changes, so a watcher per block kept
        # every pruned block alive and made each new one scan all of them
        self.watch(self.app, "theme", self._theme_changed, init=False)

    def _theme_changed(self) -> None:
        for block in self.query(StreamedMarkdown):  # their lines are cached per (width, theme)
            block.refresh(layout=True)

    # ------------------------------------------------------------------ select mode and pins

    @property
    def takes_escape(self) -> bool:
        """In select mode escape leaves it (the app's escape interrupts otherwise)."""
        return self.selected is not None

    def messages(self) -> list[UserBlock | AnswerBlock]:
        return [child for child in self.children if isinstance(child, (UserBlock, AnswerBlock)) and child.text.strip()]

    def start_selecting(self) -> bool:
        """Select mode on the newest message; False when there is none."""
        messages = self.messages()
        if not messages:
            return False
        if self.selected is None:
            self._followed_before_selecting = self.is_following
        self._select(messages[-1])
        self.focus(scroll_visible=False)
        return True

    def _select(self, block: UserBlock | AnswerBlock) -> None:
        if self.selected is not None:
            self.selected.remove_class("-selected")
        self.selected = block
        block.add_class("-selected")
        self.scroll_to_widget(block, animate=False)
        self.refresh_bindings()

    def _unselect(self) -> None:
        if self.selected is None:
            return
        self.selected.remove_class("-selected")
        self.selected = None
        if self._followed_before_selecting:
            self.scroll_end(animate=False)  # following again, as before the mode
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        selecting = self.selected is not None
        if action in self.SELECT_ACTIONS:
            return selecting
        # in the mode ↑/↓ move the mark; outside it (a click focused the pane) they scroll
        return not (selecting and action in ("scroll_up", "scroll_down", "scroll_home", "scroll_end"))

    def on_blur(self) -> None:
        # the terminal losing focus takes Textual's focus too, and gives it back: the mode stays
        if self.app.app_focus:
            self._unselect()

    def action_select_step(self, step: int) -> None:
        messages = self.messages()
        if not messages:
            self.action_stop_selecting()
            return
        if self.selected not in messages:  # pruned or undone under the mark: start again at the newest
            self._select(messages[-1])
            return
        index = messages.index(self.selected) + step
        self._select(messages[max(0, min(index, len(messages) - 1))])

    def _what(self, block: UserBlock | AnswerBlock) -> str:
        return "your message" if isinstance(block, UserBlock) else "the answer"

    def action_pin_selected(self, remove: bool = False) -> None:
        block = self.selected
        if block is None:
            return
        text, length = pin_text(block.text)
        if remove and text not in self.pins:
            self.notify("This message is not pinned (p pins it).")
        elif not remove and text in self.pins:
            self.notify("This message is pinned already (u unpins it).")
        elif block is self.answer and not remove:
            self.notify("This answer is still being written: pin it once it is complete.", severity="warning")
        else:
            self.post_message(self.PinRequested(text, length, remove, self._what(block)))

    def action_unpin_selected(self) -> None:
        self.action_pin_selected(remove=True)

    def action_copy_selected(self) -> None:
        if self.selected is not None:
            self.post_message(self.CopyRequested(self.selected.text, self._what(self.selected)))

    def action_stop_selecting(self) -> None:
        self._unselect()
        self.post_message(self.SelectingStopped())

    def watch_pins(self, pins: tuple[str, ...]) -> None:
        wanted = set(pins)
        for block in self.messages():
            show_pinned(block, bool(wanted) and pin_text(block.text)[0] in wanted)

    @property
    def is_following(self) -> bool:
        """True while new output scrolls into view. Textual releases the anchor when the
        user scrolls up and restores it once they are back at the bottom (8.2.8)."""
        return self.is_anchored and not self._anchor_released

    async def _add(self, widget: Widget) -> Widget:
        footer = self._kept_line()
        with self.app.batch_update():
            if footer is not None:
                await self.mount(widget, before=footer)
            else:
                await self.mount(widget)
        self.call_after_refresh(self.prune)
        return widget

    async def add_user(self, text: str, queued: bool = False) -> UserBlock:
        await self.end_answer(split=True)
        return await self._add(UserBlock(text, queued))  # type: ignore[return-value]

    async def add_steer(self, text: str) -> UserBlock:
        """A message sent while the agent works: shown at once, waiting for the next step."""
        block: UserBlock = await self.add_user(text)
        block.set_steer("pending")
        self.pending_steers.append(block)
        return block

    async def land_user_message(self, text: str, steered: bool) -> UserBlock | None:
        """The engine's ``user_message``: a message sent while the agent worked reached the model
        here, so it moves from where it was typed to this place in the turn. An ordinary prompt
        was drawn when it was sent (None); one sent as a steer just as the turn ended came back
        as an ordinary prompt and is shown as one."""
        block = next((b for b in self.pending_steers if b.text == text), None)
        if block is None and not steered:
            return None
        await self.end_answer(split=True)
        if block is not None:
            self.pending_steers.remove(block)
            if block.parent is self:
                await block.remove()
        landed = UserBlock(text)
        if steered:
            landed.set_steer("landed")
        return await self._add(landed)  # type: ignore[return-value]

    def drop_pending_steers(self) -> None:
        """The conversation was replaced before they reached the model: the engine forgot them."""
        for block in self.pending_steers:
            block.set_steer("dropped")
        self.pending_steers = []

    async def write_answer(self, fragment: str) -> None:
        if self.answer is None:
            self.answer = await self._add(AnswerBlock())  # type: ignore[assignment]
        await self.answer.write(fragment)

    async def reset_answer(self) -> None:
        self._answer_above = ""  # the model step starts again: its final text is all new
        if self.answer is not None:
            await self.answer.reset()

    async def end_answer(self, final_text: str | None = None, *, split: bool = False) -> None:
        """The answer block is done: ``final_text`` is the model step's whole answer.
        ``split``: a block goes under the answer while it streams (a notice, a message sent
        meanwhile) and the answer goes on below that block, which shows the rest of it, not
        the whole again."""
        above, self._answer_above = self._answer_above, ""
        if split:
            self._answer_above = above + (self.answer.text if self.answer is not None else "")
        elif final_text is not None and above and final_text.startswith(above):
            final_text = final_text[len(above):]
        if self.answer is not None:
            answer, self.answer = self.answer, None
            await answer.finish(final_text)
            if not answer.text.strip():
                await answer.remove()
        elif final_text:
            block = AnswerBlock()
            await self._add(block)
            await block.write(final_text)

    async def add_tool_call(self, call_id: str, tool: str, arguments: dict[str, Any], state: str = "pending") -> ToolCard:
        await self.end_answer()
        card = self.cards.get(call_id)
        if card is None:
            card = self.cards[call_id] = self._new_card(call_id, tool, arguments)
            await self._add(card)
        card.set_state(state)
        return card

    @staticmethod
    def _new_card(call_id: str, tool: str, arguments: dict[str, Any]) -> ToolCard:
        if tool == "research":
            from widgets.research_card import ResearchCard  # not before the first research call

            return ResearchCard(call_id, tool, arguments)
        return ToolCard(call_id, tool, arguments)

    def set_tool_state(self, call_id: str, state: str) -> None:
        if call_id in self.cards:
            self.cards[call_id].set_state(state)

    def set_tool_output(self, call_id: str, output: str, success: bool) -> None:
        if call_id in self.cards:
            self.cards[call_id].set_output(output, success)

    async def restore(self, items: Sequence[TranscriptItem], tail: int | None = None) -> int:
        """Redraw a resumed conversation: the last ``tail`` items (default ``RESTORE_TAIL``),
        under a note counting the ones left out, mounted at once (one layout pass, not one per
        block: a 1,000-turn session comes back in a blink). Returns how many were left out."""
        await self.clear_blocks()
        tail = self.RESTORE_TAIL if tail is None else tail
        hidden = max(0, len(items) - tail)
        blocks: list[Widget] = []
        if hidden:
            # counted as the screen would have drawn them: a tool's output is part of its call's card
            self.pruned_blocks = sum(1 for item in items[:hidden] if item.kind != "tool_output")
            note = PrunedNote()
            note.show(self.pruned_blocks)
            blocks.append(note)
        for item in items[hidden:]:
            if item.kind == "user":
                blocks.append(UserBlock(item.text))
            elif item.kind == "assistant":
                if item.text.strip():
                    answer = AnswerBlock()
                    answer.append(item.text)
                    blocks.append(answer)
            elif item.kind == "tool_call":
                call_id = item.tool_call_id or f"restored-{len(blocks)}"
                # some providers number calls per turn ("call_0" again and again): each card needs
                # its own widget id, and later events for the id go to the newest card, as live
                widget_id = call_id if call_id not in self.cards else f"{call_id}-restored-{len(blocks)}"
                card = self._new_card(widget_id, item.tool or "tool", item.arguments or {})
                self.cards[call_id] = card
                blocks.append(card)
            elif item.kind == "tool_output":
                card = self.cards.get(item.tool_call_id or "")
                if card is not None:  # its call may be before the tail
                    card.set_output(item.text, item.success)
            else:
                blocks.append(Notice("info", item.text))
        for card in self.cards.values():
            if card.state == "pending":  # no result was stored; a pending approval re-marks it "waiting"
                card.set_state("abandoned")
        if blocks:
            with self.app.batch_update():
                await self.mount_all(blocks)
        self.call_after_refresh(self.prune)
        return hidden

    async def add_away_card(self, jobs: Sequence[AwayJob], away_s: float, interrupted: bool) -> AwayCard:
        await self.end_answer(split=True)
        from widgets.away_card import AwayCard  # with the job records it shows: not on the way to the first frame

        return await self._add(AwayCard(list(jobs), away_s, interrupted))  # type: ignore[return-value]

    async def add_notice(self, kind: str, text: str) -> Notice:
        await self.end_answer(split=True)
        return await self._add(Notice(kind, text))  # type: ignore[return-value]

    async def add_compaction_preview(self, preview: CompactionPreview, *, confirm: bool = False,
                                     focus: str | None = None) -> CompactionPreviewCard:
        """What a compaction summarises and keeps; ``confirm``: /compact waits for enter or esc."""
        from widgets.compaction_card import CompactionPreviewCard  # not before the first frame

        await self.end_answer(split=True)
        return await self._add(CompactionPreviewCard(preview, confirm=confirm, focus=focus))  # type: ignore[return-value]

    async def add_compaction_ledger(self, compacted: Compacted) -> CompactionLedgerCard:
        """A compaction that happened: tokens before and after, its summary and what went."""
        from widgets.compaction_card import CompactionLedgerCard

        await self.end_answer(split=True)
        return await self._add(CompactionLedgerCard(compacted))  # type: ignore[return-value]

    async def open_turn(self) -> None:
        """A turn starts: a blank line under it keeps the place of its receipt, so that the
        end of the turn draws one line instead of mounting a block, laying the conversation
        out again and scrolling it (two passes over every block, and a whole redraw)."""
        if self._kept_line() is None:
            self.turn_footer = await self._add(ReceiptLine(None))  # type: ignore[assignment]

    def _kept_line(self) -> ReceiptLine | None:
        """The running turn's blank receipt line, while it is still in the conversation."""
        footer = self.turn_footer
        return footer if footer is not None and footer.receipt is None and footer.parent is self else None

    def close_turn(self) -> None:
        """The turn ended without a receipt (interrupted, failed): its blank line goes."""
        footer, self.turn_footer = self._kept_line(), None
        if footer is not None:
            footer.remove()

    async def add_receipt(self, receipt: Receipt) -> ReceiptLine:
        await self.end_answer()
        footer, self.turn_footer = self._kept_line(), None
        if footer is not None:
            footer.fill(receipt)
            return footer
        return await self._add(ReceiptLine(receipt))  # type: ignore[return-value]

    async def add_cost_report(self, report: Content) -> CostReport:
        await self.end_answer(split=True)
        return await self._add(CostReport(report))  # type: ignore[return-value]

    def latest_receipt(self) -> ReceiptLine | None:
        receipts = [r for r in self.query(ReceiptLine) if r.receipt is not None]
        return receipts[-1] if receipts else None

    def latest_card(self) -> ToolCard | None:
        cards = list(self.query(ToolCard))
        return cards[-1] if cards else None

    async def remove_last_turn(self) -> None:
        """Undo on screen: drop everything from the last prompt on."""
        users = [u for u in self.query(UserBlock) if not u.steered]  # a steer joined a turn, it did not start one
        if not users:
            return
        start = list(self.children).index(users[-1])
        doomed = list(self.children)[start:]
        for child in doomed:
            if isinstance(child, ToolCard):
                self.cards.pop(child.call_id, None)
        self.answer = None
        if self.turn_footer in doomed:
            self.turn_footer = None
        await self.remove_children(doomed)

    async def clear_blocks(self) -> None:
        if self.selected is not None:  # the marked message goes: so does the mode
            self.action_stop_selecting()
        self.answer, self._answer_above = None, ""
        self.turn_footer = None
        self.cards.clear()
        self.pending_steers = []
        self.pruned_blocks = 0
        self._leaving.clear()
        await self.remove_children()

    def prune(self) -> None:
        """Drop the oldest blocks past a height budget or a block budget: every layout pass
        walks every mounted widget, so a 1,000-message run must not keep 5,000 of them."""
        # blocks an earlier prune is still removing are children until their removal is
        # processed: not counted, or measured, twice
        leaving = self._leaving = {c for c in self._leaving if c.parent is self}
        note = next((c for c in self.children if isinstance(c, PrunedNote)), None)
        children = [c for c in self.children if c not in leaving and c is not note]
        height = self.virtual_size.height - sum(c.outer_size.height for c in leaving)
        too_tall = height > self.HIGH_MARK
        too_many = len(children) > self.MAX_BLOCKS
        if not too_tall and not too_many:
            return
        excess = height - self.LOW_MARK if too_tall else 0
        surplus = len(children) - self.LOW_BLOCKS if too_many else 0
        doomed = []
        for child in children:
            if (excess <= 0 and surplus <= 0) or child is self.answer or child is self.turn_footer:
                break
            excess -= child.outer_size.height
            surplus -= 1
            doomed.append(child)
        if not doomed:
            return
        for child in doomed:
            if isinstance(child, ToolCard):
                self.cards.pop(child.call_id, None)
        self.pruned_blocks += len(doomed)
        leaving.update(doomed)
        self.remove_children(doomed)
        # Textual memoizes StylesCache.get_inner_outer with an lru_cache on the method, so its
        # key holds the StylesCache of every widget drawn (up to 1,024), and with it the lines
        # that widget last rendered: after 300 tool rounds, 628 StylesCaches alive for ~145
        # widgets, and 5,300 strips instead of 3,600. The entries are two colours and two
        # styles, remade on the next frame for the widgets still here.
        clear = getattr(StylesCache.get_inner_outer, "cache_clear", None)
        if clear is not None:
            clear()
        # the top of the pane says that it is not the top of the conversation
        if note is None:
            note = PrunedNote()
            self.mount(note, before=0)
        note.show(self.pruned_blocks)
