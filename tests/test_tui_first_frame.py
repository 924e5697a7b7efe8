"""What the first frame and an idle app cost (issue 17): the config's theme is in place before
any style sheet is parsed, so each is parsed once; an app with nothing happening draws
nothing and its flush timers do not tick."""

from __future__ import annotations

import pytest
import textual.css.stylesheet as stylesheet_module
from textual.screen import Screen

from agent.config import Config
from agent.protocol import AssistantChunk, ToolLog
from mlintern_tui.app import MLInternApp
from mlintern_tui.bridge import Bridge
from tests.tui_support import AppUnderTest, rendered_text, wait_for
from themes import THEMES


@pytest.fixture
def parses(monkeypatch):
    """The style sheets parsed, by where they were read from."""
    seen: list[str] = []
    real = stylesheet_module.parse

    def counting(scope, css, read_from, *args, **kwargs):
        seen.append(str(read_from[0] if isinstance(read_from, tuple) else read_from))
        return real(scope, css, read_from, *args, **kwargs)

    monkeypatch.setattr(stylesheet_module, "parse", counting)
    return seen


def colours(app) -> list[str]:
    """What a few widgets are drawn with (border, text, background)."""
    out = []
    for widget in (app.prompt, app.conversation, app.plan_view, app.tool_log, app.query_one("#status")):
        styles = widget.styles
        out += [styles.border_top[1].hex, styles.color.hex, styles.background.hex]
    return out


async def drawn(name: str, *, ordinary: bool) -> tuple[list[str], set[str], str]:
    with pytest.MonkeyPatch.context() as mp:
        if ordinary:  # the theme set the way a user's later pick is: through Textual's watcher
            mp.setattr(AppUnderTest, "_first_theme", AppUnderTest._apply_theme)
        app = AppUnderTest(theme=name)
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            return colours(app), {c for c in app.classes if c.startswith("-")}, app.theme


@pytest.mark.parametrize("name", [t.name for t in THEMES])
async def test_the_configured_theme_is_there_from_the_first_frame_and_each_sheet_is_parsed_once(
        name, parses):
    theme = next(t for t in THEMES if t.name == name)
    ours = await drawn(name, ordinary=False)
    app_sheets = [p for p in parses if p.endswith("app.tcss")]
    parses.clear()
    theirs = await drawn(name, ordinary=True)
    assert ours == theirs  # the same colours, classes and theme as the watcher's way
    assert ours[2] == name and f"-theme-{name}" in ours[1]
    assert ("-dark-mode" in ours[1]) is theme.dark and ("-light-mode" in ours[1]) is not theme.dark
    if theme.dark:  # without the watcher every sheet is parsed once; with it, twice
        assert len(app_sheets) == 1, app_sheets
        assert len([p for p in parses if p.endswith("app.tcss")]) == 2
    else:  # a light theme goes the watcher's way (its ANSI colour map)
        assert len(app_sheets) == 2


async def test_a_theme_picked_later_is_applied_and_saved(mlintern_home):
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        app.theme = "mlintern-light"
        await pilot.pause()
        assert app.has_class("-light-mode") and not app.has_class("-theme-mlintern-dark")
        light = colours(app)
    started_light = AppUnderTest(theme="mlintern-light")  # drawn as if it had started with it
    async with started_light.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert colours(started_light) == light
    assert '"mlintern-light"' in (mlintern_home / "config.json").read_text()


async def test_an_idle_app_draws_nothing_and_its_timers_rest(monkeypatch):
    ticks: list[str] = []
    flush_text, flush_logs = Bridge.flush_text, Bridge.flush_logs

    async def counted_text(self):
        ticks.append("text")
        await flush_text(self)

    def counted_logs(self):
        ticks.append("logs")
        flush_logs(self)

    monkeypatch.setattr(Bridge, "flush_text", counted_text)
    monkeypatch.setattr(Bridge, "flush_logs", counted_logs)
    frames: list[int] = []
    refresh = Screen._compositor_refresh

    def counted_refresh(self):
        frames.append(1)
        refresh(self)

    monkeypatch.setattr(Screen, "_compositor_refresh", counted_refresh)
    app = MLInternApp(config=Config(), start_engine=False)  # as shipped (AppUnderTest stops the blink itself)
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.prompt.cursor_blink is False  # a steady cursor, as shipped
        await pilot.pause(0.3)
        ticks.clear(), frames.clear()
        await pilot.pause(1.0)
        assert ticks == [] and frames == [] and app.bridge.idle
        # a streamed chunk and a tool's output wake the timers; once drawn they rest again
        await app.bridge.handle(AssistantChunk(content="Hello **there**"))
        await app.bridge.handle(ToolLog(tool="bash", tool_call_id="c1", log="line 1"))
        await wait_for(pilot, lambda: app.bridge.idle and "Hello there" in "\n".join(rendered_text(app))
                       and "line 1" in "\n".join(rendered_text(app)), what="the flush")
        assert "text" in ticks and "logs" in ticks and frames
        await pilot.pause(0.3)
        ticks.clear(), frames.clear()
        await pilot.pause(0.6)
        assert ticks == [] and frames == []


async def test_a_blinking_cursor_is_there_for_who_asks_for_it():
    app = MLInternApp(config=Config(cursor_blink=True), start_engine=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.prompt.cursor_blink is True


async def test_a_model_that_cannot_start_says_why_and_the_prompt_stays(tmp_path):
    from widgets.conversation import Notice

    app = MLInternApp(model="nope", config=Config(), cwd=tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        def said() -> bool:
            texts = [str(n.render()) for n in app.conversation.query(Notice)]
            return any("Could not start the agent" in t and "unknown model 'nope'" in t for t in texts)

        await wait_for(pilot, said, what="the reason")
        assert app.session is None and not app.status_info.model_ready
        assert app.status_info.model_label == "no model"
        app.prompt.text = "hello"
        app.prompt.action_submit()
        await pilot.pause()
        assert app.session is None  # nothing crashed: the message waits, the user picks a model
