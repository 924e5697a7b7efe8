"""The line a running turn keeps for its receipt (Conversation.open_turn): the turn's blocks go
above it, the receipt fills it in place at the end (nothing moves, nothing is laid out again),
and a turn that ends without a receipt leaves no blank line behind."""

from __future__ import annotations

from tests.fakes import Call, Hang, Text, ToolCalls
from tests.test_tui_pilot import send, start_app, until_idle
from tests.tui_support import AppUnderTest, wait_for
from widgets.conversation import AnswerBlock, Notice
from widgets.receipt import ReceiptLine
from widgets.tool_card import ToolCard
from widgets.user_block import UserBlock


def kinds(app) -> list[str]:
    return [type(c).__name__ + ("(blank)" if isinstance(c, ReceiptLine) and c.receipt is None else "")
            for c in app.conversation.children]


async def test_a_turn_keeps_the_last_line_for_its_receipt_and_fills_it_in_place(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("b1", "bash", '{"command": "echo hi"}')]),
                      Text("Done: " + "it printed hi. " * 3, chunk_chars=6, delay=0.05))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="yolo")
        await send(pilot, "say hi")
        conv = app.conversation
        await wait_for(pilot, lambda: conv.answer is not None and "printed" in conv.answer.text, what="the answer streaming")
        footer = conv.turn_footer
        assert footer is not None and footer.receipt is None and not footer.can_focus
        assert kinds(app) == ["UserBlock", "ToolCard", "AnswerBlock", "ReceiptLine(blank)"]  # blocks went above it
        assert footer.size.height == 1 and footer.text == ""
        assert conv.latest_receipt() is None  # a kept line is not a receipt: f3 has nothing to open
        await until_idle(pilot, app)
        await pilot.pause()
        assert conv.turn_footer is None
        receipt = conv.latest_receipt()
        assert receipt is footer  # the same line, not a block mounted under the answer
        assert receipt.text.startswith("turn: ") and receipt.can_focus
        assert kinds(app) == ["UserBlock", "ToolCard", "AnswerBlock", "ReceiptLine"]
        assert receipt.size.height == 1


async def test_filling_the_receipt_asks_for_no_layout(llm_server, monkeypatch, tmp_path):
    """The end of a turn draws one line: the receipt that fits its line asks for no layout pass
    (which would walk every block of the conversation again)."""
    llm_server.script(Text("hello there, a short answer", chunk_chars=4, delay=0.05))  # frames while it streams
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path)
        conv = app.conversation
        filled: list[tuple] = []
        original = ReceiptLine.fill

        def spy(self, receipt):
            height = self.size.height
            original(self, receipt)
            filled.append((height, self._layout_required))

        monkeypatch.setattr(ReceiptLine, "fill", spy)
        await send(pilot, "hi")
        await until_idle(pilot, app)
        await pilot.pause()
        [(height, layout_asked)] = filled
        assert height == 1 and not layout_asked
        assert conv.latest_receipt().size.height == 1


async def test_a_receipt_too_wide_for_a_narrow_column_is_laid_out_again(llm_server, monkeypatch, tmp_path):
    llm_server.script(Text("hello"))
    app = AppUnderTest()
    async with app.run_test(size=(40, 30)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "hi")
        await until_idle(pilot, app)
        await pilot.pause()
        receipt = app.conversation.latest_receipt()
        assert receipt is not None and receipt.size.height >= 2  # wrapped, not cut to its first line
        assert receipt.size.width < len(receipt.text)


async def test_an_interrupted_turn_leaves_no_blank_line(llm_server, monkeypatch, tmp_path):
    llm_server.script(Hang(after_text="Thinking about **it**", seconds=20), Text("second answer"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "explain")
        conv = app.conversation
        await wait_for(pilot, lambda: conv.answer is not None and "Thinking" in conv.answer.text, what="streamed text")
        await pilot.press("escape")
        await until_idle(pilot, app)
        await pilot.pause()
        assert conv.turn_footer is None
        assert not [c for c in conv.query(ReceiptLine) if c.receipt is None]
        assert isinstance(conv.children[-1], Notice)  # "Interrupted…" is the turn's last line
        await send(pilot, "again")  # the next turn keeps a line of its own, and fills it
        await until_idle(pilot, app)
        await pilot.pause()
        assert [type(c) for c in conv.children][-3:] == [UserBlock, AnswerBlock, ReceiptLine]
        assert conv.latest_receipt() is conv.children[-1]


async def test_a_failed_turn_leaves_no_blank_line(llm_server, monkeypatch, tmp_path):
    llm_server.script()  # nothing scripted: the model answers 500, and the turn ends in an error
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        from agent.config import Config, LLMSettings

        await start_app(pilot, app, llm_server, monkeypatch, tmp_path,
                        config=Config(llm=LLMSettings(max_attempts=1, backoff_base_s=0.01)))
        await send(pilot, "hi")
        await until_idle(pilot, app)
        await pilot.pause()
        conv = app.conversation
        assert conv.turn_footer is None and not list(conv.query(ReceiptLine))
        assert [n.kind for n in conv.query(Notice)][-1] == "error"


async def test_a_kept_line_is_never_pruned(llm_server, monkeypatch, tmp_path):
    llm_server.script(*[ToolCalls([Call(f"b{i}", "bash", '{"command": "true"}')]) for i in range(6)], Text("end"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="yolo")
        conv = app.conversation
        monkeypatch.setattr(conv, "MAX_BLOCKS", 4)
        monkeypatch.setattr(conv, "LOW_BLOCKS", 2)
        await send(pilot, "loop")
        await until_idle(pilot, app)
        await pilot.pause()
        receipts = [c for c in conv.children if isinstance(c, ReceiptLine)]
        assert len(receipts) == 1 and receipts[0].receipt is not None and conv.children[-1] is receipts[0]
        assert conv.pruned_blocks > 0 and len(list(conv.query(ToolCard))) <= 4
