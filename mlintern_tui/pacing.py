"""Frame pacing for the main screen: expensive frames come no closer than their own cost
allows, so a flood of updates cannot spend the whole loop drawing.

Textual draws a screen on the next tick of a fixed-rate timer (60 a second) after anything on
it changed. A frame that lays out the conversation costs 12-35 ms once it holds a hundred
blocks. In a run of fast tool calls (dozens of rounds a second, each mounting blocks) every
tick finds something new, so frames run back to back and take about half the loop; nobody
reads 25 rounds a second. bench/tui_long_conversation.py, 500 rounds: app CPU 19-21 s without
pacing, 15-16 s with it (bench/README.md).

``PacedScreen`` times each frame its timer draws and lets the next one start no sooner than
``PACE`` times that cost after the last began (so drawing takes at most 1/``PACE`` of the
loop) and never later than ``MAX_GAP_S`` after it. A cheap frame (a token of a streaming
answer: a few ms) is never held: ``PACE`` × its cost is shorter than a tick. Nothing is lost
by holding: the screen keeps its pending layout, scroll and dirty widgets, and the timer keeps
ticking until a tick is allowed to draw them.

Input is not held back: for ``INPUT_GRACE_S`` after a key binding, a click or a scroll the
screen draws at the timer's full rate. A character typed into the prompt does not need that:
the prompt draws its own rows (widgets/prompt.py ``_paint_now``). Pilot's ``pause`` and
anything else that calls ``_on_timer_update`` directly still draws at once.
"""

from __future__ import annotations

from time import perf_counter

from textual.screen import UPDATE_PERIOD, Screen
from textual.timer import Timer

#: frames take at most 1/PACE of the loop while updates flood in
PACE = 3.0
#: the longest a pending frame waits, whatever the last one cost (10 frames a second)
MAX_GAP_S = 0.1
#: after input, frames run at the timer's full rate for this long
INPUT_GRACE_S = 0.25


class PacedScreen(Screen):
    """The app's main screen (``MLInternApp.get_default_screen``)."""

    def __init__(self, *args, paced: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: False (config ``frame_pacing: false``): every tick draws, as Textual's own screen does
        self.paced = paced
        self._paced_timer: Timer | None = None
        #: perf_counter before which the timer's tick does not draw (0: draw at the next tick)
        self._hold_until = 0.0
        #: when the app last passed on input (set by MLInternApp.on_event)
        self.input_at = 0.0
        #: ticks that found a frame held back (the tests read it)
        self.held_ticks = 0

    @property
    def _update_timer(self) -> Timer:  # Screen's own creates its timer with _on_timer_update
        timer = self._paced_timer
        if timer is None:
            timer = self._paced_timer = self.set_interval(UPDATE_PERIOD, self._paced_tick, name="screen_update",
                                                          pause=True)
        return timer

    def _paced_tick(self) -> None:
        start = perf_counter()
        if start < self._hold_until and start - self.input_at > INPUT_GRACE_S:
            self.held_ticks += 1
            return  # the timer stays running: the next tick asks again
        self._on_timer_update()
        if self.paced:
            cost = perf_counter() - start
            self._hold_until = start + min(PACE * cost, MAX_GAP_S) if PACE * cost > UPDATE_PERIOD else 0.0
