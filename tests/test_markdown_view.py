"""The streamed answer renderer: cut points, settling, height-only relayout, themes."""

from __future__ import annotations

from agent.protocol import Ready
from tests.tui_support import AppUnderTest, feed
from widgets.markdown_view import markdown_styles, settle_point


def test_settle_point_never_cuts_inside_a_code_fence():
    text = "intro\n\n```python\na = 1\n\nb = 2\n```\n\nafter\n\ntail"
    cut = settle_point(text)
    assert text[:cut].endswith("after\n\n") and text[cut:] == "tail"
    assert settle_point("```\nopen fence\n\nstill inside") == 0
    assert settle_point("no blank line at all") == 0


def test_translucent_theme_colours_become_opaque_for_rich():
    styles, code_theme = markdown_styles({"primary": "#112233", "foreground-muted": "#FFFFFF80",
                                          "background": "#000000"}, "test-theme", dark=True)
    assert styles["markdown.hr"] == "#7F7F7F" or styles["markdown.hr"].startswith("#8")
    assert styles["markdown.h2"] == "bold #112233" and code_theme == "monokai"


async def test_a_long_answer_is_one_widget_and_keeps_all_text():
    paragraphs = [f"Paragraph {i}: " + "word " * 60 for i in range(200)]
    text = "\n\n".join(paragraphs) + "\n\n```python\n" + "x = 1\n" * 50 + "```\n\nThe end."
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(app, Ready(model="m", model_label="m", tool_count=1, cwd="/", is_demo=False))
        conv = app.conversation
        for i in range(0, len(text), 350):  # the bridge's batches
            await conv.write_answer(text[i:i + 350])
        await pilot.pause()
        block = conv.answer
        assert block.text == text
        assert "".join(block.chunks) + block.live_text == text  # nothing lost or duplicated at the cuts
        assert len(block.chunks) > 10 and len(block.live_text) < 2_000
        assert list(block.children) == []  # one widget, however long the answer
        # the lines are the chunks rendered in order, then the live tail
        lines = [block.render_line(y).text for y in range(block.size.height)]
        assert lines[0].strip().startswith("Paragraph 0:")
        assert any("Paragraph 199:" in line for line in lines)
        assert lines[-1].strip() == "The end."
        await conv.end_answer(text)
        assert block.text == text


async def test_lines_follow_width_and_theme():
    text = "\n\n".join(f"Paragraph {i}: " + "word " * 40 for i in range(60)) + "\n\ntail"
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await app.conversation.write_answer(text)
        await pilot.pause()
        settled = app.conversation.answer
        assert settled.chunks
        narrow_height, first = settled.size.height, settled.render_line(0)
        await pilot.resize_terminal(200, 36)
        await pilot.pause()
        assert settled.size.width > 100
        assert settled.size.height < narrow_height  # re-wrapped at the new width, not clipped
        app.theme = "mlintern-light"
        await pilot.pause()
        assert settled.render_line(0) != first
        assert "Paragraph 0:" in settled.render_line(0).text


async def test_theme_switch_repaints_the_live_tail():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await app.conversation.write_answer("## Heading\n\nSome **bold** text.\n\n")
        await pilot.pause()
        part = app.conversation.answer
        assert not part.chunks and part.live_text
        dark = part.render_line(0)
        app.theme = "mlintern-light"
        await pilot.pause()
        assert part.render_line(0) != dark


async def test_what_reaches_the_terminal_matches_the_widgets_while_an_answer_streams():
    """The renderer skips Textual's second layout pass per batch (settled_virtual_size):
    the terminal must still end up showing exactly what a fresh render of the widgets
    shows, at the bottom of a long answer and after scrolling back up."""
    from tests.tui_support import TerminalRecorder, rendered_text

    text = "\n\n".join(f"## Step {i}\n\nParagraph {i}: " + "token " * (20 + i % 30) +
                       ("\n\n```python\n" + "\n".join(f"x{j} = {j}" for j in range(i % 7)) + "\n```" if i % 4 == 0 else "")
                       for i in range(18)) + "\n\nThe last line of the answer."
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = TerminalRecorder(app, 120, 36)
        conv = app.conversation
        i, step = 0, 0
        while i < len(text):
            size = 6 if step % 4 == 1 else 230  # small batches that keep the height, large ones that grow it
            await conv.write_answer(text[i:i + size])
            i, step = i + size, step + 1
            # a frame is due within ~10 ms; allow a slow machine (first run compiles
            # modules) up to a second: a repaint that never comes still fails here
            for _ in range(100):
                await pilot.pause(0.01)
                if screen.text() == rendered_text(app):
                    break
            assert screen.text() == rendered_text(app), f"stale screen after {i} chars"
        await pilot.pause(0.1)
        assert screen.frames > 20
        shown = screen.text()
        assert shown == rendered_text(app)
        assert any("The last line of the answer." in line for line in shown)
        conv.scroll_to(y=conv.max_scroll_y // 2, animate=False)
        await pilot.pause(0.1)
        assert screen.text() == rendered_text(app) != shown
