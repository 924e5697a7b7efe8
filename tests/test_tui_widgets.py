"""Widget behaviour that needs no engine: pruning, following, hidden log pane, themes, copy."""

from __future__ import annotations

import json

from agent.protocol import AssistantMessage, Ready, ToolCallEvent, ToolLog
from tests.tui_support import AppUnderTest, feed, wait_for
from widgets.conversation import Conversation, Notice
from widgets.markdown_view import StreamedMarkdown
from widgets.tool_log import ToolLogPane


def ready() -> Ready:
    return Ready(model="demo", model_label="demo (scripted, no API key)", tool_count=5, cwd="/w", is_demo=True)


async def test_long_conversations_are_pruned_past_a_height_budget():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        conv = app.conversation
        conv.HIGH_MARK, conv.LOW_MARK = 300, 200
        for i in range(120):
            await conv.add_notice("info", f"line {i}\nsecond line")
        await pilot.pause()
        conv.prune()
        await pilot.pause()
        assert conv.pruned_blocks > 0
        assert conv.virtual_size.height <= 300
        texts = [str(n.render()) for n in conv.query(Notice)]
        assert "line 119" in texts[-1] and not any("line 0\n" in t for t in texts)


async def test_scrolled_up_reader_stays_put_and_following_resumes_at_the_bottom():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        conv = app.conversation
        for i in range(60):
            await conv.add_notice("info", f"block {i}")
        await pilot.pause()
        assert conv.is_following and conv.scroll_y == conv.max_scroll_y
        conv.scroll_to(y=5, animate=False)
        conv.release_anchor()  # what a mouse wheel / scrollbar drag does
        await pilot.pause()
        await conv.add_notice("info", "new output while reading")
        await pilot.pause()
        assert conv.scroll_y == 5 and not conv.is_following
        conv.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        await conv.add_notice("info", "more output")
        await pilot.pause()
        assert conv.is_following and conv.scroll_y == conv.max_scroll_y


async def test_hidden_log_pane_buffers_and_writes_when_shown():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.query_one(ToolLogPane)
        await pilot.press("f2")  # hide the side panes
        await pilot.pause()
        assert not app.query_one("#side").display
        await feed(app, ToolCallEvent(tool_call_id="c", tool="bash", arguments={"command": "seq 3"}),
                   *[ToolLog(tool="bash", tool_call_id="c", log=str(i)) for i in range(3)])
        assert pane.lines_written == 0  # nothing written while hidden
        await pilot.press("f2")
        await pilot.pause()
        assert pane.lines_written == 4  # header line + 3
        await pilot.press("ctrl+l")
        assert pane.follow is False and pane.border_subtitle == "paused"


async def test_theme_choice_is_kept_in_the_config(mlintern_home):
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.theme == "mlintern-dark"
        app.theme = "mlintern-hf"
        await pilot.pause()
    assert json.loads((mlintern_home / "config.json").read_text())["theme"] == "mlintern-hf"
    from agent.config import load_config

    app2 = AppUnderTest(config=load_config())
    async with app2.run_test(size=(120, 36)):
        assert app2.theme == "mlintern-hf"


async def test_a_broken_config_file_is_reported_and_left_alone(mlintern_home):
    path = mlintern_home / "config.json"
    path.write_text('{"theme": "mlintern-light",,}')
    from mlintern_tui.app import MLInternApp

    from mlintern_tui.screens.broken_config import BrokenConfigScreen

    app = MLInternApp(start_engine=False)
    async with app.run_test(size=(120, 36)) as pilot:  # the broken-config screen says why (tests/test_tui_config.py)
        await wait_for(pilot, lambda: isinstance(app.screen, BrokenConfigScreen)
                       and "not valid JSON" in str(app.screen.query_one(".config-error").render()),
                       what="the broken-config screen")
        app.theme = "mlintern-hf"
        await pilot.pause()
    assert path.read_text() == '{"theme": "mlintern-light",,}'


async def test_copy_says_what_it_sent_and_how():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await feed(app, ready(), AssistantMessage(content="Run this:\n\n```bash\npython train.py --lr 3e-4\n```\n", final=True))
        await pilot.press("ctrl+y")
        assert app.clipboard.startswith("Run this:")
        app.prompt.text = "/copy code"
        app.prompt.action_submit()
        await pilot.pause()
        assert app.clipboard == "python train.py --lr 3e-4\n"
        messages = [n.message for n in app._notifications]
        assert any("OSC 52" in m and "only if your terminal allows" in m for m in messages)


async def test_ctrl_c_twice_quits():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.is_running
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert app.return_code == 0 or app.return_code is None
    assert not app.is_running


async def test_conversation_is_a_stream_layout_anchored_at_the_bottom():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)):
        conv = app.query_one(Conversation)
        assert conv.styles.layout.name == "stream" and conv.is_anchored


async def test_page_keys_scroll_the_conversation_while_the_prompt_has_focus():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        conv = app.conversation
        for i in range(80):
            await conv.add_notice("info", f"block {i}")
        await pilot.pause()
        bottom = conv.scroll_y
        assert app.focused is app.prompt
        await pilot.press("pageup")
        await pilot.pause()
        assert conv.scroll_y < bottom and not conv.is_following
        await pilot.press("ctrl+home")
        await pilot.pause()
        assert conv.scroll_y == 0
        await pilot.press("ctrl+end")
        await pilot.pause()
        assert conv.scroll_y == conv.max_scroll_y and conv.is_following


async def test_output_pane_keeps_showing_the_newest_line_past_max_lines():
    """What reaches the terminal, not the widget state: Textual 8.2.8's Log stops repainting
    once it holds max_lines, so the newest line must appear in the driver's output."""
    from textual.widgets import Log

    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        from rich.console import Console

        painted: list[str] = []
        original = app._display

        def capture(screen, renderable):  # the compositor's updates, as sent to the terminal
            if renderable is not None:
                console = Console(width=120, file=None, record=True, force_terminal=True, color_system=None)
                with console.capture() as cap:
                    console.print(renderable)
                painted.append(cap.get())
            return original(screen, renderable)

        app._display = capture
        pane = app.query_one(ToolLogPane)
        for batch in range(12):  # 6,000 lines through a 5,000-line Log
            pane.write_lines([f"L{batch * 500 + i}" for i in range(500)], source="bash")
            await pilot.pause(0.05)
        assert pane.query_one(Log).line_count == ToolLogPane.MAX_LINES
        assert painted and "L5999" in "".join(painted[-3:])


async def test_conversation_prunes_by_block_count_too():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        conv = app.conversation
        for i in range(conv.MAX_BLOCKS + 20):
            await conv.add_notice("info", f"n{i}")
        await pilot.pause()
        conv.prune()
        await pilot.pause()
        assert len(conv.children) <= conv.MAX_BLOCKS and conv.pruned_blocks >= conv.MAX_BLOCKS - conv.LOW_BLOCKS
        # the top of the pane says how much is gone, once, and keeps counting
        from widgets.conversation import PrunedNote

        first = conv.pruned_blocks
        assert isinstance(conv.children[0], PrunedNote)
        assert f"↑ {first:,} earlier entries not shown" in str(conv.children[0].render())
        for i in range(conv.MAX_BLOCKS):
            await conv.add_notice("info", f"m{i}")
        await pilot.pause()
        conv.prune()
        await pilot.pause()
        notes = list(conv.query(PrunedNote))
        assert len(notes) == 1 and conv.children[0] is notes[0] and conv.pruned_blocks > first
        assert f"↑ {conv.pruned_blocks:,} earlier entries" in str(notes[0].render())
        # two prunes before the first removal is processed count each block once
        from widgets.conversation import Notice

        await conv.mount_all([Notice("info", f"k{i}") for i in range(conv.MAX_BLOCKS)])  # no prune of its own
        await pilot.pause()
        before = [c for c in conv.children if not isinstance(c, PrunedNote)]
        counted = conv.pruned_blocks
        conv.prune()
        conv.prune()
        await pilot.pause()
        after = [c for c in conv.children if not isinstance(c, PrunedNote)]
        assert conv.pruned_blocks - counted == len(before) - len(after) > 0
        assert len(after) == conv.LOW_BLOCKS  # the note is not one of the blocks
        # blocks whose removal is done are forgotten by the next prune (each prune walks them)
        removed = set(before) - set(after)
        conv.prune()
        assert removed and not (conv._leaving & removed)
        await conv.clear_blocks()
        assert conv.pruned_blocks == 0 and not conv.children


async def test_a_tool_card_is_one_widget_and_shows_a_bounded_expansion():
    from widgets.conversation import ToolCard

    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        card = await app.conversation.add_tool_call("c1", "bash", {"command": "seq 100"}, "running")
        card.set_output("\n".join(str(i) for i in range(1, 101)), True)
        await pilot.pause()
        assert list(card.children) == [] and card.outer_size.height == 1  # the header line
        await pilot.press("ctrl+o")
        await pilot.pause()
        text = str(card.render())
        assert "100 lines ▾" in text and "  40" in text and "  41" not in text and "60 more lines" in text
        assert card.outer_size.height == 1 + ToolCard.SHOWN_LINES + 1


async def test_a_timer_flush_racing_the_final_message_makes_one_answer():
    import asyncio

    from agent.protocol import AssistantChunk, AssistantMessage
    from widgets.conversation import AnswerBlock

    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        bridge = app.bridge
        await bridge.handle(AssistantChunk(content="Hello world"))
        timer_flush = asyncio.create_task(bridge.flush_text())  # what the 20 Hz interval does
        await asyncio.sleep(0)  # it has taken the text and awaits the mount ...
        await bridge.handle(AssistantMessage(content="Hello world"))  # ... while the final message lands
        await timer_flush
        await pilot.pause()
        assert [a.text for a in app.conversation.query(AnswerBlock)] == ["Hello world"]


def test_approval_cards_show_what_matters_for_jobs_and_sandboxes():
    from agent.protocol import ApprovalItem
    from widgets.approval_card import detail_rows

    job = dict(detail_rows(ApprovalItem(
        tool_call_id="j", tool="hf_jobs", reason="GPU job", estimated_cost_usd=2.0,
        arguments={"operation": "run", "script": "print(1)\n", "hardware_flavor": "a10g-small", "timeout": "2h"})))
    assert job["hardware"] == "a10g-small" and job["timeout"] == "2h" and job["script"] == "print(1)\n"
    assert job["estimate"] == "$2.00 at most (hourly price × timeout)"
    local = dict(detail_rows(ApprovalItem(tool_call_id="l", tool="hf_jobs", reason="CPU job", estimated_cost_usd=0.0,
                                          arguments={"operation": "run", "script": "print(1)\n"})))
    assert local["estimate"] == "$0 (runs on this machine's CPU)"
    paid = dict(detail_rows(ApprovalItem(tool_call_id="s", tool="sandbox_create", reason="GPU sandbox",
                                         estimated_cost_usd=0.6, arguments={"hardware": "t4-small"})))
    assert paid["hardware"] == "t4-small" and "HF_TOKEN" in paid["HF token"]
    assert paid["estimate"] == "$0.60 for the first hour" and "arguments" not in paid
    free = dict(detail_rows(ApprovalItem(tool_call_id="s", tool="sandbox_create", reason="token",
                                         arguments={"store_hf_token": False})))
    assert free == {"hardware": "cpu-basic"}


async def test_the_80_column_footer_shows_only_keys_that_fit_and_apply():
    """At 80 columns the footer has room for about seven keys: the receipt key hides, and the
    output-pane keys follow whichever of conversation / side panes is on screen."""
    app = AppUnderTest()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.check_action("toggle_last_receipt", ()) is False
        assert app.check_action("toggle_follow", ()) is False and app.check_action("toggle_last_output", ()) is True
        await pilot.press("f2")  # the side panes cover the conversation
        await pilot.pause()
        assert app.check_action("toggle_follow", ()) is True and app.check_action("toggle_last_output", ()) is False
        await pilot.resize_terminal(120, 36)
        await pilot.pause()
        assert app.check_action("toggle_last_receipt", ()) is True and app.check_action("toggle_follow", ()) is True


def test_joined_lines_claim_exactly_the_cells_they_fill():
    """Textual's Content.join counts one separator too many; a line that claims more cells
    than it fills is drawn short and leaves old characters at its end."""
    from rich.cells import cell_len
    from textual.content import Content

    from widgets.content_join import join_line

    line = join_line(" │ ", [Content.from_markup("mode [b]$m[/]", m="ask"), Content("ctx 7%"), Content("$0.01")])
    assert line.plain == "mode ask │ ctx 7% │ $0.01"
    assert line.cell_length == cell_len(line.plain)
    assert line.spans  # the styles survive


async def test_a_status_line_that_gets_shorter_leaves_nothing_behind():
    from tests.tui_support import TerminalRecorder, rendered_text

    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = TerminalRecorder(app, 120, 36)
        app.update_status(model_label="demo (scripted, no API key)", is_demo=True, model_ready=True,
                          context_tokens=9000, context_window=131072, turn_tokens_in=46100, turn_tokens_out=3400,
                          mode="yolo", yolo_cap_usd=5.0, budget_left_usd=5.0)
        await pilot.pause(0.2)
        app.update_status(mode="ask", budget_left_usd=None)  # 9 cells shorter
        await pilot.pause(0.2)
        assert screen.text()[-2] == rendered_text(app)[-2]
        assert screen.text()[-2].endswith("session $0.0000")


async def test_a_quiet_settings_update_moves_the_badge_without_a_notice():
    """A sandbox's next hour reserved in the background changes the budget left: the badge
    follows, the conversation gets no notice (every hour would add one)."""
    from agent.protocol import SettingsChanged
    from widgets.status import StatusBar

    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        base = dict(model="m", model_label="m", effort=None, yolo=True, yolo_cap_usd=5.0, context_window=1000,
                    approval_mode="yolo")
        await feed(app, SettingsChanged(**base, budget_left_usd=4.0))
        notes = len(app.conversation.query(Notice))
        await feed(app, SettingsChanged(**base, budget_left_usd=3.4, quiet=True))
        await pilot.pause()
        assert "$3.40 left" in str(app.query_one(StatusBar).render())
        assert len(app.conversation.query(Notice)) == notes


async def test_a_stream_faster_than_anyone_reads_is_drawn_less_often(monkeypatch):
    """Text batches reach the answer every timer tick while a stream is readable; once it runs
    faster than FAST_CHARS_PER_S, every FAST_FLUSH_S. Any other event still flushes at once."""
    from agent.protocol import AssistantChunk, AssistantMessage
    from mlintern_tui import bridge as bridge_module

    now = [100.0]
    import types

    monkeypatch.setattr(bridge_module, "time", types.SimpleNamespace(monotonic=lambda: now[0]))  # the bridge's clock only
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        bridge = app.bridge
        writes: list[str] = []
        write_answer = app.conversation.write_answer

        async def recording(text: str) -> None:
            writes.append(text)
            await write_answer(text)

        monkeypatch.setattr(app.conversation, "write_answer", recording)

        async def tick(text: str, late: float = 0.0) -> None:  # one timer interval: text, then the timer
            now[0] += bridge_module.TEXT_FLUSH_S + late
            await bridge.handle(AssistantChunk(content=text))
            await bridge.flush_text()

        for _ in range(4):  # a model typing at reading speed: every batch is drawn
            await tick("word ")
        assert writes == ["word "] * 4
        fast = "x" * int(bridge_module.FAST_CHARS_PER_S * bridge_module.TEXT_FLUSH_S * 2)
        await tick(fast)  # a fast batch is drawn, and marks the stream fast
        assert len(writes) == 5
        await tick(fast)
        await tick(fast)  # 0.10 s since the last draw: both wait
        assert len(writes) == 5
        await tick(fast, late=0.01)  # 0.16 s: drawn, all three batches at once
        assert writes[-1] == fast * 3
        await bridge.handle(AssistantChunk(content="tail."))
        await bridge.handle(AssistantMessage(content="end"))  # any other event flushes what waits
        assert writes[-1] == "tail."
        await pilot.pause()


async def test_commands_that_need_the_engine_say_it_is_still_loading():
    from mlintern_tui.commands import REGISTRY

    app = AppUnderTest()  # no engine started
    async with app.run_test(size=(120, 36)) as pilot:
        shown: list[str] = []
        app.notify = lambda message, **kw: shown.append(str(message))  # type: ignore[method-assign]
        await REGISTRY.run(app, "/compact")
        app.request_mode("ask")
        app.show_resume_picker()
        await pilot.pause()
        assert shown == ["The model is still loading."] * 3


async def test_pruned_answers_are_let_go_and_a_theme_switch_repaints_the_rest():
    import gc
    import weakref

    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        conv = app.conversation
        first = first_lines = None
        for i in range(conv.MAX_BLOCKS + 40):
            text = f"Answer {i}: some **bold** text."
            await conv.write_answer(text)
            first = first or weakref.ref(conv.answer)
            await conv.end_answer(text)
            if i == 0:
                await pilot.pause()  # drawn: its lines are in its StylesCache
                first_lines = weakref.ref(first()._styles_cache)
        await pilot.pause()
        conv.prune()
        await wait_for(pilot, lambda: first() is None or first().parent is None, what="the first answer pruned")
        await pilot.pause()
        gc.collect()
        assert first() is None  # nothing holds a pruned answer (a theme watcher per block did)
        assert first_lines() is None  # nor the lines it drew (Textual's lru_cache on get_inner_outer did)
        assert len(getattr(app, "__watchers", {}).get("theme", [])) <= 2
        last = conv.query(StreamedMarkdown).last()
        assert last._live_key is not None and last._live_key[2] == "mlintern-dark"
        app.theme = "mlintern-light"
        await pilot.pause()
        await pilot.pause()
        assert last._live_key[2] == "mlintern-light"  # drawn again by the screen in the new theme
