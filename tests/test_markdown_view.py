"""The streamed answer renderer: cut points, settling, height-only relayout, themes."""

from __future__ import annotations

from agent.protocol import Ready
from tests.tui_support import AppUnderTest, feed
from widgets.conversation import AnswerBlock
from widgets.markdown_view import SETTLE_CHARS, MarkdownPart, markdown_styles, settle_point


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


async def test_a_long_answer_settles_into_few_widgets_and_keeps_all_text():
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
        parts = list(block.query(MarkdownPart))
        assert block.text == text
        assert "".join(p.text for p in parts) == text  # nothing lost or duplicated at the cuts
        assert 10 < len(parts) < len(text) // SETTLE_CHARS + 5  # a widget per ~1,200 chars, not per paragraph
        assert len(list(block.walk_children())) == len(parts)
        await conv.end_answer(text)
        assert "".join(p.text for p in block.query(MarkdownPart)) == text


async def test_theme_switch_repaints_settled_parts():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await app.conversation.write_answer("## Heading\n\nSome **bold** text.\n\n")
        await pilot.pause()
        part = app.conversation.answer.query_one(MarkdownPart)
        dark = part.render_line(0)
        app.theme = "mlintern-light"
        await pilot.pause()
        assert part.render_line(0) != dark
