"""Local echo: a typed character appears before the UI loop gets to it.

The loop is often busy for a few milliseconds at a time (a frame of a streaming answer, a
layout pass of a long conversation, a collection), and a key waits for it: the echo of a key
is as slow as the slowest thing the loop does. Terminals over slow links solved this long ago
by drawing the character they are sure of at once and letting the real screen correct it. We
do the same between our own two threads:

- after every frame, the loop says where the next typed character would go (an
  ``EchoSlot``): only when the prompt has the focus on the top screen, its cursor is at the
  end of its text with room after it on the same row, nothing covers those cells, and every
  key read so far has been handled. The empty prompt too, for the first key of a message (the
  most typed-into moment, often while the agent works): when its placeholder fits in one row,
  the echo clears that row, in the colours of typed text the prompt has shown before;
- the input thread, reading one printable character and nothing else, draws it there with
  the prompt's own styles (the cell left of the cursor, the cursor cell) and moves the
  cursor one cell on, then gives the key to the app as always;
- the prompt, handling the key, draws its rows as usual, which writes the same cells again.
  If the key went somewhere else or the character landed elsewhere, the whole screen is
  drawn again (``LocalEcho.confirm`` and ``check``), so a wrong guess lasts milliseconds.

A slot serves one read at most and only if nothing was read after it was made, so a burst of
keys echoes its first key early and the rest at the loop's pace. The slot is withdrawn at once
when a screen is pushed or popped, the focus moves or the terminal is resized. Keys sent in
the kitty keyboard protocol (which Textual asks for) count as typed characters too. An error
here (Textual's internals it reads changing) turns local echo off with a notice, never a
frame."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content
from textual.events import InputEvent, Paste
from textual.geometry import Region
from textual.strip import Strip

from mlintern_tui.driver import EchoSlot, SteadyDriver

if TYPE_CHECKING:
    from textual.app import App
    from textual.events import Event

    from widgets.prompt import PromptArea

#: how long a drawn key may wait for the prompt before the screen is drawn again
CHECK_S = 0.25


class LocalEcho:
    def __init__(self, app: App, driver: SteadyDriver, prompt: PromptArea) -> None:
        self.app = app
        self.driver = driver
        self.prompt = prompt
        self._styled: tuple | None = None  # what the slot's strings were made for
        self._strings: tuple[bytes, bytes] = (b"", b"")
        #: by (theme, ANSI colours): the styles of typed text, the cursor and the row after
        #: them, as last drawn, for a first character typed into the empty prompt
        self._seen_styles: dict[tuple, tuple] = {}
        self._placeholder: tuple[str, int] = ("", 0)
        driver.echo_on = True

    # ------------------------------------------------------------------ the loop's side

    def arrived(self, event: Event) -> None:
        """An input event from the driver reached the app (not yet the widget it goes to)."""
        unarrived = self.driver.unarrived
        number = unarrived.pop(id(event), None)
        if number is not None and unarrived:
            # events come in the order they were read: one read before this that has not come
            # never will (dropped on the way), and must not hold the echo back for good
            for key in [k for k, n in list(unarrived.items()) if n < number]:
                unarrived.pop(key, None)
        echoed = self.driver.echoed
        if number is not None and echoed is not None and echoed[0] == number:
            self.app.set_timer(CHECK_S, lambda: self.check(number), name="echo check")

    def check(self, number: int) -> None:
        """The key drawn early never reached the prompt (a binding took it, a dialog opened):
        what is on the screen there is not the app's, so draw it all again."""
        echoed = self.driver.echoed
        if echoed is not None and echoed[0] == number:
            self.driver.echoed = None
            self.app.screen.refresh()

    def confirm(self) -> None:
        """The prompt took a printable key: if it was drawn early, was it drawn where the
        prompt now shows it (left of the cursor)?"""
        echoed, self.driver.echoed = self.driver.echoed, None
        if echoed is None:
            return
        x, y = self.prompt.cursor_screen_offset
        if (echoed[1], echoed[2]) != (x - 1, y):
            self.app.screen.refresh()

    def withdraw(self) -> None:
        """Something is about to change the screen (a dialog, the focus moving): no key is
        drawn early until a frame shows what changed."""
        self.driver.echo_slot = None

    def publish(self) -> None:
        """After a frame: where the next typed character goes, if it is sure."""
        try:
            self._publish()
        except Exception as error:  # noqa: BLE001 - Textual internals it reads may change
            self.stop(f"{type(error).__name__}: {error}")

    def stop(self, reason: str) -> None:
        """Off for the rest of the run, and the user is told why (keys still echo, from the
        loop)."""
        self.off()
        self.app.call_later(self.app.notify, f"Local echo is off for this run ({reason}); keys show when the app "
                            "draws them. Set local_echo: false to keep it off.", severity="warning", timeout=10)

    def off(self) -> None:
        """Off for the rest of the run (the config says so, or ``stop``)."""
        driver, app = self.driver, self.app
        driver.echo_on = False
        driver.echo_slot = None
        driver.unarrived.clear()
        if getattr(app, "_echo", None) is self:
            app._echo = None
        if getattr(self.prompt, "local_echo", None) is self:
            self.prompt.local_echo = None

    def _publish(self) -> None:
        driver = self.driver
        inputs = driver.inputs_read  # read first: anything read after makes the slot stale
        cell = None if driver.unarrived else self._cell()
        if cell is None:
            driver.echo_slot = None
            return
        x, y, region, empty = cell
        # the styles come from the prompt's rendered row (~60 us): read again only when the
        # cell, the prompt's place or the theme changed
        key = (x, y, region, self.app.theme, self.app.ansi_color, empty)
        if key != self._styled:
            strings = self._render_empty(x, y, region) if empty else self._render(x, y, region)
            if strings is None:
                driver.echo_slot = None
                return
            self._strings, self._styled = strings, key
        driver.echo_slot = EchoSlot(inputs, x, y, *self._strings)

    def _render(self, x: int, y: int, region: Region) -> tuple[bytes, bytes] | None:
        lines = self.prompt.render_lines(Region(0, y - region.y, region.width, 1))
        if not lines:
            return None
        text_style = _style_at(lines[0], x - 1 - region.x)
        cursor_style = _style_at(lines[0], x - region.x)
        blank_style = _style_at(lines[0], x + 1 - region.x)  # after the text: the row's own
        if text_style is None or cursor_style is None:
            return None
        if blank_style is not None:  # for the first key of the next message (_render_empty)
            self._seen_styles[(self.app.theme, self.app.ansi_color)] = (text_style, cursor_style, blank_style)
        return self._strings_for(x, y, text_style, cursor_style)

    def _render_empty(self, x: int, y: int, region: Region) -> tuple[bytes, bytes] | None:
        """The first character of a message: drawn where the placeholder starts, with the
        styles of typed text seen earlier (none seen yet, in this theme: no slot), and the
        rest of the placeholder's row cleared, as the prompt will draw it."""
        styles = self._seen_styles.get((self.app.theme, self.app.ansi_color))
        if styles is None:
            return None
        text_style, cursor_style, blank_style = styles
        return self._strings_for(x, y, text_style, cursor_style,
                                 (blank_style, self.prompt.content_region.right - (x + 2)))

    def _strings_for(self, x: int, y: int, text_style, cursor_style, blanks=None) -> tuple[bytes, bytes]:
        """The echo's bytes before and after the character; ``blanks`` (style, count): cells
        cleared after the cursor."""
        system = self.app.console._color_system
        text_on, text_off = style_edges(text_style, system)
        cursor = Strip.render_style(cursor_style, " ", color_system=system)
        cleared = "" if blanks is None else Strip.render_style(blanks[0], " " * blanks[1], color_system=system)
        # DECSC/DECRC keep the frame's cursor (position and pen) as it was
        return (f"\x1b7\x1b[{y + 1};{x + 1}H{text_on}".encode(), f"{text_off}{cursor}{cleared}\x1b8".encode())

    def _cell(self):
        prompt, app = self.prompt, self.app
        screen = app.screen
        if (screen is not prompt.screen or screen.focused is not prompt or app._batch_count
                or prompt.read_only or _holds_input(prompt)):
            return None
        if prompt._repaint_required or prompt._layout_required or prompt._scroll_required:
            return None  # the screen does not show the prompt as it is
        # (not the screen's layout flags: a frame goes out in the middle of the layout pass that
        # made it, before the screen lowers them, and _paint_now draws only when no pending
        # pass can move the prompt)
        selection = prompt.selection
        if selection.start != selection.end or selection.end != prompt.document.end:
            return None
        empty = not prompt.text
        if empty:  # the placeholder is there: only if it is one row, cleared by the echo
            if prompt.scroll_offset != (0, 0) or self._placeholder_width() >= prompt.content_size.width:
                return None
        elif prompt._cursor_offset[0] < 1:
            return None  # the cursor starts a row: the cell to its left is not the text's
        x, y = prompt.cursor_screen_offset
        content = prompt.content_region
        left = content.x if empty else content.x + 1  # typed text: its last character left of x
        if not (left <= x and x + 2 < content.right and content.y <= y < content.bottom):
            return None  # the character would wrap or scroll the prompt
        compositor = screen._compositor
        try:
            for cell_x in (x - 1, x, x + 1):
                widget, region = compositor.get_widget_at(cell_x, y)
                if widget is not prompt:
                    return None  # something drawn over the prompt (a menu, a toast)
            if empty and compositor.get_widget_at(content.right - 1, y)[0] is not prompt:
                return None  # the end of the row the echo clears is covered
        except Exception:  # noqa: BLE001 - Textual's NoWidget, or a map being rebuilt
            return None
        return x, y, region, empty

    def _placeholder_width(self) -> int:
        """The prompt's placeholder in cells (measured once per placeholder text)."""
        text = str(self.prompt.placeholder)
        if self._placeholder[0] != text:
            self._placeholder = (text, Content(text).cell_length)
        return self._placeholder[1]


def style_edges(style, color_system) -> tuple[str, str]:
    """The escape sequences that start and end text in ``style`` on this terminal."""
    on, off = Strip.render_style(style, "\0", color_system=color_system).split("\0")
    return on, off


def _holds_input(widget) -> bool:
    """Whether input the app passed on (a key, a click, a paste) still waits in the widget's
    queue (its own messages about the last key, Changed and SelectionChanged, do not count)."""
    waiting = getattr(widget._message_queue, "values", None)  # textual._queue.Queue's deque
    if waiting is None:  # another Textual: any message waiting holds the echo back
        return not widget._message_queue.empty()
    return any(isinstance(message, (InputEvent, Paste)) for message in waiting)


def _style_at(strip: Strip, x: int):
    end = 0
    for segment in strip:
        if segment.control:
            continue
        end += segment.cell_length
        if x < end:
            return segment.style
    return None
