"""Frame pacing (mlintern_tui/pacing.py): after an expensive frame the screen's timer holds
the next one back for PACE times its cost (at most MAX_GAP_S), a cheap frame holds nothing,
input lifts the hold, and nothing waiting to be drawn is lost."""

from __future__ import annotations

import asyncio

import pytest
from textual.app import App
from textual.widgets import Static

from agent.config import Config
from mlintern_tui import pacing
from mlintern_tui.pacing import INPUT_GRACE_S, MAX_GAP_S, PACE, PacedScreen
from tests.tui_support import AppUnderTest, wait_for


class Clock:
    """perf_counter as the pacing module sees it: real time plus what the test adds."""

    def __init__(self, real):
        self.real, self.offset = real, 0.0

    def __call__(self) -> float:
        return self.real() + self.offset


class Board(App):
    def __init__(self, paced: bool = True):
        super().__init__()
        self.paced = paced

    def get_default_screen(self) -> PacedScreen:
        return PacedScreen(id="_default", paced=self.paced)

    def compose(self):
        yield Static("start", id="text")


@pytest.fixture
def clock(monkeypatch):
    fake = Clock(pacing.perf_counter)
    monkeypatch.setattr(pacing, "perf_counter", fake)
    return fake


def frames_costing(monkeypatch, screen: PacedScreen, clock: Clock, cost_s: float) -> list[float]:
    """Every frame the screen draws takes ``cost_s`` on the pacing module's clock; returns the
    list of (clock) times at which frames started."""
    drawn: list[float] = []
    draw = PacedScreen._on_timer_update

    def costly(self):
        drawn.append(clock())
        draw(self)
        clock.offset += cost_s

    monkeypatch.setattr(PacedScreen, "_on_timer_update", costly)
    return drawn


async def test_an_expensive_frame_holds_the_next_for_pace_times_its_cost(monkeypatch, clock):
    app = Board()
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PacedScreen)
        drawn = frames_costing(monkeypatch, screen, clock, 0.02)
        screen._paced_tick()  # a frame of 20 ms: the next may start 60 ms after it began
        assert len(drawn) == 1
        start = drawn[0]
        clock.offset += (start + 0.05) - clock()  # 50 ms after it began
        app.query_one("#text", Static).update("changed")
        screen._paced_tick()
        assert len(drawn) == 1 and screen.held_ticks == 1  # held: too soon
        clock.offset += (start + PACE * 0.02 + 0.001) - clock()
        screen._paced_tick()
        assert len(drawn) == 2 and screen.held_ticks == 1  # drawn once the pace allows
        assert "changed" in screen._compositor.render_update(full=True).render_segments(app.console)


async def test_the_hold_never_passes_max_gap(monkeypatch, clock):
    app = Board()
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        drawn = frames_costing(monkeypatch, screen, clock, 0.5)  # PACE × 0.5 s would be 1.5 s
        screen._paced_tick()
        clock.offset += (drawn[0] + MAX_GAP_S - 0.01) - clock()
        screen._paced_tick()
        assert len(drawn) == 1
        clock.offset += (drawn[0] + MAX_GAP_S + 0.001) - clock()
        screen._paced_tick()
        assert len(drawn) == 2


async def test_a_cheap_frame_holds_nothing(monkeypatch, clock):
    app = Board()
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        drawn = frames_costing(monkeypatch, screen, clock, 0.003)  # a streamed token's frame
        for _ in range(5):
            screen._paced_tick()
        assert len(drawn) == 5 and screen.held_ticks == 0


async def test_input_lifts_the_hold(monkeypatch, clock):
    app = Board()
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        drawn = frames_costing(monkeypatch, screen, clock, 0.03)
        screen._paced_tick()
        screen._paced_tick()
        assert len(drawn) == 1  # held
        screen.input_at = clock()  # a key, a click, a scroll
        screen._paced_tick()
        assert len(drawn) == 2
        clock.offset += INPUT_GRACE_S + 0.01  # the grace is over: the pace holds again
        screen._paced_tick()
        screen._paced_tick()
        assert len(drawn) == 3 and screen.held_ticks == 2


async def test_pacing_off_draws_every_tick(monkeypatch, clock):
    app = Board(paced=False)
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        drawn = frames_costing(monkeypatch, screen, clock, 0.05)
        for _ in range(4):
            screen._paced_tick()
        assert len(drawn) == 4 and screen.held_ticks == 0


async def test_what_a_held_frame_would_have_drawn_reaches_the_screen(monkeypatch, clock):
    """The real timer, with frames made expensive on the module's clock: updates made while
    frames are held are all drawn, and some ticks were held on the way."""
    app = Board()
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        frames_costing(monkeypatch, screen, clock, 0.03)  # each frame holds the next ~90 ms
        text = app.query_one("#text", Static)
        for n in range(12):
            text.update(f"update {n}")
            await asyncio.sleep(0.012)  # the timer ticks by itself (a Pilot pause would force a frame)

        def shown() -> bool:
            return "update 11" in screen._compositor.render_update(full=True).render_segments(app.console)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while not shown() and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert shown()
        assert screen.held_ticks > 0


async def test_the_app_paces_its_main_screen_as_configured():
    app = AppUnderTest()
    async with app.run_test(size=(100, 30)):
        assert isinstance(app.screen_stack[0], PacedScreen) and app.screen_stack[0].paced
    app = AppUnderTest(config=Config(frame_pacing=False))
    async with app.run_test(size=(100, 30)):
        assert not app.screen_stack[0].paced


async def test_a_binding_key_lifts_the_hold_and_a_typed_character_does_not():
    app = AppUnderTest()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        screen = app.screen_stack[0]
        screen.input_at = 0.0
        await pilot.press("a")  # drawn by the prompt itself: no frames at full rate for it
        assert screen.input_at == 0.0
        await pilot.press("pageup")  # a scroll: the user waits for the screen to move
        assert screen.input_at > 0.0
        await wait_for(pilot, lambda: app.prompt.text == "a", what="the typed key")
