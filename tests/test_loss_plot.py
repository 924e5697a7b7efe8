"""The loss plot: a known curve drawn in a small host app, read back from the screen."""

from __future__ import annotations

import math
import time

from textual.app import App, ComposeResult
from textual.color import Color
from textual.geometry import Region

from themes import DEFAULT_THEME, THEMES
from widgets.loss_plot import EVAL_MARK, LossPlot, plot_lines

BRAILLE = range(0x2801, 0x2900)  # 0x2800 is the blank pattern

#: a typical fine-tune: fast drop, then a slow tail towards 0.4
TRAIN = tuple((step, round(2.5 * math.exp(-step / 300) + 0.4, 4)) for step in range(0, 1201, 10))
EVAL = tuple((step, round(2.5 * math.exp(-step / 300) + 0.5, 4)) for step in range(200, 1201, 200))


class PlotHost(App):
    CSS = "LossPlot { height: 1fr; }"

    def __init__(self, points=(), eval_points=(), theme: str = DEFAULT_THEME):
        super().__init__()
        self._initial = (points, eval_points)
        self._theme_name = theme

    def compose(self) -> ComposeResult:
        yield LossPlot()

    def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        self.theme = self._theme_name
        plot = self.query_one(LossPlot)
        plot.points, plot.eval_points = self._initial


def screen_strips(plot: LossPlot) -> list:
    """The widget as drawn on screen, border and titles included."""
    return plot.render_lines(Region(0, 0, *plot.outer_size))


def screen_lines(plot: LossPlot) -> list[str]:
    return [strip.text for strip in screen_strips(plot)]


def highest_dot_rows(lines: list[str]) -> list[int]:
    """For each screen column holding braille, the first line it appears on, left to right."""
    found: dict[int, int] = {}
    for row, line in enumerate(lines):
        for column, char in enumerate(line):
            if ord(char) in BRAILLE and column not in found:
                found[column] = row
    return [found[column] for column in sorted(found)]


async def test_a_descending_curve_is_drawn_descending_with_its_labels_and_title():
    app = PlotHost(TRAIN)
    async with app.run_test(size=(60, 12)) as pilot:
        await pilot.pause()
        plot = app.query_one(LossPlot)
        lines = screen_lines(plot)
        assert "loss 0.4458 @ step 1,200" in lines[0]
        assert lines[1].lstrip("│╭ ").startswith("2.9┤")  # the max, on the top row
        assert "0.446┤" in lines[-3]  # the min, on the last plot row
        axis = lines[-2]
        assert "└0─" in axis and axis.rstrip(" │").endswith("1,200")
        heights = highest_dot_rows(lines)
        assert len(heights) >= 50  # the curve spans the width
        assert heights == sorted(heights) and heights[0] < heights[-1]  # and only ever goes down


async def test_a_rising_curve_goes_up():
    app = PlotHost(tuple((step, step / 100) for step in range(0, 500, 5)))
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        heights = highest_dot_rows(screen_lines(app.query_one(LossPlot)))
        assert heights == sorted(heights, reverse=True) and heights[0] > heights[-1]


async def test_waiting_until_the_first_points_arrive_then_following_them():
    app = PlotHost()
    async with app.run_test(size=(60, 12)) as pilot:
        await pilot.pause()
        plot = app.query_one(LossPlot)
        lines = screen_lines(plot)
        assert any("waiting for loss lines…" in line for line in lines)
        assert not highest_dot_rows(lines)
        plot.points = TRAIN[:60]
        await pilot.pause()
        lines = screen_lines(plot)
        assert "loss 0.7498 @ step 590" in lines[0]
        assert not any("waiting" in line for line in lines) and highest_dot_rows(lines)
        plot.points = TRAIN
        await pilot.pause()
        assert "@ step 1,200" in screen_lines(plot)[0]
        assert plot.lines() is plot.lines()  # repaints without new data reuse the drawing


async def test_eval_points_are_marked_and_summarised_in_the_subtitle():
    app = PlotHost(TRAIN, EVAL)
    async with app.run_test(size=(60, 12)) as pilot:
        await pilot.pause()
        lines = screen_lines(app.query_one(LossPlot))
        assert sum(line.count(EVAL_MARK) for line in lines) == len(EVAL)
        assert "eval 0.5458 @ 1,200" in lines[-1]


async def test_only_eval_points():
    app = PlotHost((), ((100, 0.9), (200, 0.7)))
    async with app.run_test(size=(40, 8)) as pilot:
        await pilot.pause()
        lines = screen_lines(app.query_one(LossPlot))
        assert "eval loss 0.7 @ step 200" in lines[0]
        assert sum(line.count(EVAL_MARK) for line in lines) == 2


async def test_colours_come_from_the_theme():
    for theme in THEMES:
        app = PlotHost(TRAIN, theme=theme.name)
        async with app.run_test(size=(60, 12)) as pilot:
            await pilot.pause()
            plot = app.query_one(LossPlot)
            colours = {segment.style.color.triplet for strip in screen_strips(plot)
                       for segment in strip if segment.text and ord(segment.text[0]) in BRAILLE}
            accent = Color.parse(theme.accent).rgb
            assert len(colours) == 1, theme.name
            # within rounding of the theme's accent (Textual blends the text colour in 8 bits)
            assert all(abs(a - b) <= 2 for a, b in zip(colours.pop(), accent)), theme.name
            # the axis is muted: between the theme's text and background colours, not either
            label = next(seg for seg in screen_strips(plot)[1] if "┤" in seg.text)
            text, ground = Color.parse(theme.foreground).rgb, Color.parse(theme.background).rgb
            axis = tuple(label.style.color.triplet)
            assert axis not in (text, ground), theme.name
            assert all(min(t, g) <= a <= max(t, g) for a, t, g in zip(axis, text, ground)), theme.name


def test_small_sizes_still_draw():
    for width, height in ((20, 4), (20, 3), (8, 4), (3, 2), (1, 1)):
        lines = plot_lines(TRAIN, EVAL, width, height)
        assert len(lines) == height and all(line.cell_length <= width for line in lines), (width, height)
    lines = [line.plain for line in plot_lines(TRAIN, (), 20, 4)]
    assert lines[0].lstrip().startswith("2.9┤") and lines[2].startswith("0.446┤") and lines[3].endswith("1,200")


def test_a_flat_or_single_point_curve_sits_mid_plot():
    lines = [line.plain for line in plot_lines(((5, 0.5),), (), 20, 5)]
    assert [n for n, line in enumerate(lines) if "0.5┤" in line] == [2]
    assert highest_dot_rows(lines) == [2]


def test_drawing_5000_points_is_cheap():
    points = tuple((step, 2.5 * math.exp(-step / 3000) + 0.4 + 0.05 * math.sin(step)) for step in range(5000))
    start = time.perf_counter()
    for _ in range(10):
        plot_lines(points, EVAL, 200, 40)
    per_draw = (time.perf_counter() - start) / 10
    print(f"loss plot: 5,000 points at 200x40 in {per_draw * 1000:.2f} ms")
    assert per_draw < 0.1  # a 15 Hz log pane can afford it many times over


def test_snapshot_of_a_fine_tune_with_evals(snap_compare):
    """A 60x12 plot of a fine-tune: the title reads "loss 0.4458 @ step 1,200", the subtitle
    "eval 0.5458 @ 1,200"; the accent-coloured braille curve falls steeply from 2.9 (top-left
    label) and flattens towards 0.446 (bottom-left label); six warning-coloured ● eval markers
    sit just above the curve; the bottom line runs from step 0 to 1,200."""
    assert snap_compare(PlotHost(TRAIN, EVAL), terminal_size=(60, 12))


def test_snapshot_of_the_empty_state(snap_compare):
    """A 60x12 empty plot: the border title says "loss" and the middle line reads, muted and in
    italics, "waiting for loss lines…"; no axis is drawn."""
    assert snap_compare(PlotHost(), terminal_size=(60, 12))
