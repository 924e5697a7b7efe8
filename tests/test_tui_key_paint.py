"""A typed character is drawn by the key's own handler (``PromptArea._paint_now``): one write
to the terminal per key, in the same callback, with nothing else waiting for a frame lost, and
the usual way (a layout pass) whenever the prompt changes size."""

from __future__ import annotations

from textual.app import App
from textual.screen import Screen

from tests.tui_support import AppUnderTest, press_at_once, wait_for
from widgets.prompt import PromptArea


def _count_calls(monkeypatch, owner, name: str) -> list[str]:
    calls: list[str] = []
    original = getattr(owner, name)

    def wrapper(self, *args, **kwargs):
        calls.append(name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


async def settled(pilot) -> None:
    """Until the first screen has no pass, scroll or repaint waiting (a fixed pause is not
    enough on a loaded machine: a key typed before the start's last layout pass goes the
    usual way, rightly)."""
    screen = pilot.app.screen
    await wait_for(pilot, lambda: not (screen._layout_required or screen._scroll_required or screen._dirty_widgets
                                       or screen._layout_widgets), what="the first screen settled")
    await pilot.pause(0.05)


async def test_a_key_is_painted_in_its_own_handler(monkeypatch):
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.3)
        await settled(pilot)
        inside: list[bool] = []
        displays: list[bool] = []
        paint, display = PromptArea._paint_now, App._display

        def painting(self):
            inside.append(True)
            try:
                return paint(self)
            finally:
                inside.pop()

        def displaying(self, screen, update):
            displays.append(bool(inside))
            return display(self, screen, update)

        monkeypatch.setattr(PromptArea, "_paint_now", painting)
        monkeypatch.setattr(App, "_display", displaying)
        frames = _count_calls(monkeypatch, Screen, "_on_timer_update")
        for ch in "jqjq":
            await pilot.press(ch)
            await pilot.pause(0.05)
        assert app.prompt.text == "jqjq"
        # each key written by its own handler: the timer's frames that follow find those rows
        # already drawn (a frame for something else may still come, and is not a key's)
        assert displays.count(True) == 4, (displays, frames)
        lines = app.screen._compositor.render_update(full=True).render_segments(app.console)
        assert "jqjq" in lines
        # a deleted character too (backspace is a binding, not a typed key: the edit paints)
        await pilot.press("backspace")
        await pilot.pause(0.05)
        assert app.prompt.text == "jqj" and displays.count(True) == 5, displays


async def test_other_widgets_still_get_their_frame(monkeypatch):
    """A widget waiting for a frame when a key is painted is drawn by the next frame."""
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.3)
        await app.conversation.add_notice("info", "before the key")
        app.conversation.refresh()
        await pilot.press("x")
        await pilot.pause(0.2)
        lines = app.screen._compositor.render_update(full=True).render_segments(app.console)
        assert "before the key" in lines and "x" in app.prompt.text


async def test_a_key_that_grows_the_prompt_takes_a_layout_pass():
    app = AppUnderTest()
    async with app.run_test(size=(60, 30)) as pilot:
        await pilot.pause(0.3)
        before = app.prompt.outer_size.height
        words = app.prompt.content_size.width // 5 + 2  # one row and a bit
        # most of the first row as one burst; the keys around the wrap one by one, as typed
        await press_at_once(pilot, *("word " * (words - 4)))
        await pilot.pause(0.2)
        assert app.prompt.outer_size.height == before and app.prompt.text == "word " * (words - 4)
        await pilot.press(*("word " * 4))
        await pilot.pause(0.2)
        assert app.prompt.outer_size.height == before + 1  # the prompt grew (soft wrap), laid out again
        lines = app.screen._compositor.render_update(full=True).render_segments(app.console)
        assert lines.count("word") >= words


async def test_a_layout_pending_elsewhere_does_not_hold_the_key_back(monkeypatch):
    """A pass pending inside the conversation (it took a block, an answer grew) cannot move the
    prompt: the key is drawn by its handler all the same. One pending for a container of the
    prompt, or asked for without saying where (a resize), could: the key waits for it."""
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.3)
        await settled(pilot)  # a start still settling on a loaded machine holds the key back, rightly
        screen, prompt = app.screen, app.prompt
        drawn = _count_calls(monkeypatch, App, "_display")

        def key_with_a_pass_pending(where) -> bool:
            drawn.clear()
            screen._layout_required = True
            screen._layout_widgets.clear()
            if where is not None:
                screen._layout_widgets[where] = {where}
            try:
                prompt.insert("k")  # as a printable key does: the edit paints, or leaves it to the pass
            finally:
                screen._layout_widgets.clear()
                screen._layout_required = False
            return bool(drawn)

        state = lambda: dict(batch=app._batch_count, prompt_layout=prompt._layout_required,  # noqa: E731
                             scroll=screen._scroll_required, current=screen.is_current)
        before = state()
        assert key_with_a_pass_pending(app.conversation), (before, state())
        assert not key_with_a_pass_pending(prompt.parent)  # the box around the prompt may grow
        assert not key_with_a_pass_pending(None)  # a resize, a style change
        await pilot.pause(0.1)
        assert app.prompt.text == "kkk"
