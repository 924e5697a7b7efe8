"""A terminal that reports it is not focused before the app's first frame (a tmux pane not in
view, a window behind another): the first frame is drawn without waiting for Textual's answer
to it (the prompt letting go of the focus, the footer rebuilt, every widget restyled), and
that answer comes right after, unless the terminal said it is focused again meanwhile."""

from __future__ import annotations

from textual import events

from tests.tui_support import AppUnderTest, wait_for
from widgets.prompt import PromptArea


class ReportingTerminal(AppUnderTest):
    """The reports a terminal sends as soon as focus reporting is on, queued before the first frame."""

    def __init__(self, *reports: type[events.Event], **kwargs):
        super().__init__(**kwargs)
        self.reports = reports
        self.at_first_frame: tuple[bool, object] | None = None

    def on_mount(self) -> None:
        for report in self.reports:
            self.post_message(report())

    def on_ready(self) -> None:
        self.at_first_frame = (self.app_focus, self.screen.focused)


async def test_a_blur_before_the_first_frame_is_applied_after_it():
    app = ReportingTerminal(events.AppBlur)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.at_first_frame is not None, what="the first frame")
        prompt = app.query_one(PromptArea)
        assert app.at_first_frame == (True, prompt)  # drawn focused, not restyled first
        # then as the terminal is
        await wait_for(pilot, lambda: not app.app_focus and app.screen.focused is None, what="the blur")
        await pilot.press("x")  # a key brings the focus back to the prompt, as Textual does
        await wait_for(pilot, lambda: prompt.text == "x", what="the key in the prompt")
        assert app.app_focus is True and app.screen.focused is prompt


async def test_focused_again_before_the_first_frame_nothing_is_applied():
    app = ReportingTerminal(events.AppBlur, events.AppFocus)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.at_first_frame is not None, what="the first frame")
        await pilot.pause(0.1)
        assert app.app_focus is True and app.screen.focused is app.query_one(PromptArea)


async def test_a_blur_after_the_first_frame_is_applied_at_once():
    app = ReportingTerminal()
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.at_first_frame is not None, what="the first frame")
        assert app.at_first_frame == (True, app.query_one(PromptArea))
        app.post_message(events.AppBlur())
        await pilot.pause()
        assert app.app_focus is False and app.screen.focused is None


async def test_a_focus_report_right_after_the_first_frame_wins_over_the_held_blur():
    """Blurred before the first frame, focused again just after it: the held blur is applied
    before the later report, so the app ends up focused."""

    class FocusedJustAfter(ReportingTerminal):
        def on_ready(self) -> None:  # Textual runs every class's on_ready, this one first
            self.post_message(events.AppFocus())  # queued before MLInternApp.on_ready runs

    app = FocusedJustAfter(events.AppBlur)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.at_first_frame is not None, what="the first frame")
        await pilot.pause(0.1)
        assert app.app_focus is True and app.screen.focused is app.query_one(PromptArea)
