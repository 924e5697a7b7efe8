"""A typed character is drawn by the key's own handler (``PromptArea._paint_now``): one write
to the terminal per key, in the same callback, with nothing else waiting for a frame lost, and
the usual way (a layout pass) whenever the prompt changes size."""

from __future__ import annotations

from textual.app import App
from textual.screen import Screen

from tests.tui_support import AppUnderTest
from widgets.prompt import PromptArea


def _count_calls(monkeypatch, owner, name: str) -> list[str]:
    calls: list[str] = []
    original = getattr(owner, name)

    def wrapper(self, *args, **kwargs):
        calls.append(name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


async def test_a_key_is_painted_in_its_own_handler(monkeypatch):
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.3)
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
        # one write per key, made by the key's handler: the timer's frames that follow find
        # those rows already drawn
        assert displays == [True] * 4, (displays, frames)
        lines = app.screen._compositor.render_update(full=True).render_segments(app.console)
        assert "jqjq" in lines


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
        await pilot.press(*("word " * words))
        await pilot.pause(0.2)
        assert app.prompt.outer_size.height == before + 1  # the prompt grew (soft wrap), laid out again
        lines = app.screen._compositor.render_update(full=True).render_segments(app.console)
        assert lines.count("word") >= words
