"""widgets/key_footer.py: Textual's footer without a second restyle of every key each time
it is rebuilt (issue 17), and looking exactly like Textual's."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Input
from textual.widgets._footer import FooterKey

from widgets.key_footer import KeyFooter


class Keys(App):
    BINDINGS = [Binding("ctrl+q", "quit", "Quit"), Binding("f2", "noop('panes')", "Panes"),
                Binding("ctrl+g", "noop('jobs')", "Jobs"), Binding("ctrl+t", "noop('mode')", "Mode"),
                Binding("f3", "noop('receipt')", "Receipt")]

    def __init__(self, footer: type[Footer], compact: bool = False):
        super().__init__()
        self.footer_class = footer
        self.compact = compact
        self.restyled: list[str] = []

    def action_noop(self, name: str) -> None:
        pass

    def compose(self) -> ComposeResult:
        yield Input()
        yield self.footer_class(compact=self.compact)

    def update_styles(self, node, animate: bool = True) -> None:
        if isinstance(node, FooterKey):
            self.restyled.append(node.key)
        super().update_styles(node, animate=animate)


async def rebuilt(footer: type[Footer], compact: bool = False) -> tuple[int, str, list[bool]]:
    app = Keys(footer, compact)
    async with app.run_test(size=(100, 10)) as pilot:
        await pilot.pause()
        app.restyled.clear()
        app.query_one(Input).blur()  # the active bindings change: the footer builds its keys again
        await pilot.pause()
        app.query_one(Input).focus()
        await pilot.pause()
        await pilot.pause()
        keys = list(app.query(FooterKey))
        return len(app.restyled), "".join(k.render().plain for k in keys), [k.has_class("-compact") for k in keys]


async def test_rebuilt_keys_are_not_restyled_and_look_as_textuals():
    theirs, their_text, their_classes = await rebuilt(Footer)
    ours, our_text, our_classes = await rebuilt(KeyFooter)
    assert theirs > 0  # what the subclass spares: Textual's keys are restyled right after they are made
    assert ours == 0
    assert our_text == their_text and "Quit" in our_text and "Receipt" in our_text
    assert our_classes == their_classes


async def test_a_compact_footer_keeps_its_keys_compact():
    _, their_text, their_classes = await rebuilt(Footer, compact=True)
    _, our_text, our_classes = await rebuilt(KeyFooter, compact=True)
    assert our_text == their_text and our_classes == their_classes and all(our_classes)
