"""The prompt: multi-line input, Enter sends, history on up/down, slash-command completion.

While the agent works, enter sends the message into the running turn (the app steers with
it); alt+enter asks the app to keep it for after the turn instead (``Submitted.queue``)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea


@dataclass(frozen=True)
class CommandHint:
    name: str  # "/model"
    usage: str  # "/model [id]"
    help: str


class PromptArea(TextArea):
    """Enter sends; ctrl+j (or shift+enter where the terminal reports it) adds a line.
    Up on the first line and down on the last walk the history. Tab completes a slash
    command; the matching commands are announced with ``CompletionsChanged``."""

    BINDINGS = [
        Binding("ctrl+j,shift+enter", "newline", "New line", show=False),
        Binding("tab", "complete", "Complete", show=False),
    ]
    DEFAULT_CSS = """
    PromptArea { height: auto; min-height: 3; max-height: 10; border: round $primary; padding: 0 1; }
    PromptArea:focus { border: round $accent; }
    """

    class Submitted(Message):
        """``queue``: keep it for after the running turn (alt+enter), not into it."""

        def __init__(self, text: str, queue: bool = False):
            super().__init__()
            self.text = text
            self.queue = queue

    class CompletionsChanged(Message):
        def __init__(self, hints: tuple[CommandHint, ...]):
            super().__init__()
            self.hints = hints

    def __init__(self, **kwargs):
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)
        # a steady cursor: blinking redrew the prompt's rows (and the pane beside them) twice a
        # second for as long as the app is open, ~10 ms of CPU a second with nothing happening
        self.set_reactive(TextArea.cursor_blink, False)
        self.prompt_history: list[str] = []
        self._history_index: int | None = None
        self._draft = ""
        self.commands: tuple[CommandHint, ...] = ()
        self._last_hints: tuple[CommandHint, ...] = ()
        self.local_echo = None  # the app's LocalEcho, on a real terminal

    async def _on_key(self, event: events.Key) -> None:
        if event.key in ("enter", "alt+enter"):
            # alt+enter reaches us only from terminals that report it (kitty keyboard protocol,
            # CSI u); elsewhere it arrives as enter, and the palette's queue toggle does the job
            event.stop()
            event.prevent_default()
            self.action_submit(queue=event.key == "alt+enter")
            return
        await super()._on_key(event)
        if event.is_printable and self.local_echo is not None:
            self.local_echo.confirm()  # drawn early by the input thread: in the right place?

    def edit(self, edit):
        """Every change to the text (a typed or deleted character, a paste, a completion)
        is drawn at once (``_paint_now``)."""
        result = super().edit(edit)
        self._paint_now()
        return result

    def _paint_now(self) -> None:
        """Put a typed character on the screen from the key's own handler.

        Textual's way to the terminal is a refresh, an idle check of this widget, an update
        message to the screen, its idle check, and the screen's frame timer, which fires on the
        next tick of its fixed rate: ~4 ms of the ~5 ms from key to terminal (measured with a
        stream on screen). A key that only changes this widget's rows needs none of that: its
        rows are drawn here, alone, and whatever else waits for a frame keeps waiting for it.
        Anything that needs a layout pass that could move the prompt (the prompt growing a
        row, a resize) or a batch in progress goes the usual way; a pass pending elsewhere (the
        conversation took a block, an answer grew) does not hold the key back."""
        app, screen = self.app, self.screen
        if (app._batch_count or screen is not app.screen or not screen.is_current or self._layout_required
                or screen._scroll_required or not self._repaint_required):
            return
        if screen._layout_required and not self._spared_by_layout(screen):
            return
        waiting = set(screen._dirty_widgets)
        # drawn here: no second frame for the same rows. Lowered before the frame goes out, so
        # that the app's frame hook (local echo's slot) sees the prompt as drawn
        self._repaint_required = False
        try:
            screen._compositor.update_widgets({self})
            screen._compositor_refresh()
        finally:
            screen._dirty_widgets.update(waiting - {self})

    def _spared_by_layout(self, screen) -> bool:
        """Whether the pending layout pass leaves the prompt where it is: Textual notes, per
        widget that needs one, its containers up to the first of a fixed size, which is as far
        as a change inside can reach. If none of them holds the prompt, the prompt cannot move.
        A pass asked for without such a note (a resize, a style change) could move anything."""
        pending = getattr(screen, "_layout_widgets", None)
        if not pending:
            return False
        mine = set(self.ancestors_with_self)
        return not any(container in mine for container in pending)

    def action_submit(self, queue: bool = False) -> None:
        text = self.text.strip()
        if not text:
            return
        if not self.prompt_history or self.prompt_history[-1] != text:
            self.prompt_history.append(text)
        self._history_index = None
        self.text = ""
        self.post_message(self.Submitted(text, queue))

    def action_newline(self) -> None:
        self.insert("\n")

    def action_cursor_up(self, select: bool = False) -> None:
        if not select and self.cursor_location[0] == 0 and self.prompt_history:
            if self._history_index is None:
                self._draft = self.text
                self._history_index = len(self.prompt_history)
            if self._history_index > 0:
                self._history_index -= 1
                self._load(self.prompt_history[self._history_index])
            return
        super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        last_row = self.document.line_count - 1
        if not select and self._history_index is not None and self.cursor_location[0] == last_row:
            self._history_index += 1
            if self._history_index >= len(self.prompt_history):
                self._history_index = None
                self._load(self._draft)
            else:
                self._load(self.prompt_history[self._history_index])
            return
        super().action_cursor_down(select)

    def _load(self, text: str) -> None:
        self.text = text
        self.move_cursor(self.document.end)

    def matching_commands(self) -> tuple[CommandHint, ...]:
        text = self.text
        if not text.startswith("/") or " " in text or "\n" in text:
            return ()
        return tuple(c for c in self.commands if c.name.startswith(text))

    def action_complete(self) -> None:
        matches = self.matching_commands()
        if not matches:
            self.screen.focus_next()
            return
        names = [m.name for m in matches]
        common = names[0]
        for name in names[1:]:
            while not name.startswith(common):
                common = common[:-1]
        self._load(common + " " if len(matches) == 1 else common)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        hints = self.matching_commands()
        if hints != self._last_hints:
            self._last_hints = hints
            self.post_message(self.CompletionsChanged(hints))
