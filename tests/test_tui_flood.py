"""The app while ``bash`` prints 500 MB (issue 18): the Output pane gets a few coalesced lines
that say how much was not shown, the card completes, the prompt takes keys during the flood
and after it, and the model is told the true size. A real Session on the scripted loopback
model; the flood runs in the app's own event loop, as it does in the installed app. Speed and
memory in the app are measured in bench/bash_flood.py."""

from __future__ import annotations

import json

from textual import events
from textual.widgets import Log

from tests.fakes import Call, Text, ToolCalls
from tests.test_bash_flood import FLOOD, FLOOD_BYTES
from tests.test_tui_pilot import send, start_app, until_idle
from tests.tui_support import AppUnderTest, wait_for


def type_without_waiting(app, text: str) -> None:
    """Keys sent the way Pilot.press sends them, minus its wait for the process to go idle
    after each one (which lasts as long as the flood)."""
    for char in text:
        key = events.Key("space" if char == " " else char, char)
        key.set_sender(app)
        app._driver.send_message(key)


def tool_result(body: dict, call_id: str) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "tool" and m["tool_call_id"] == call_id)


async def test_a_500_mb_flood_in_the_app_is_a_few_lines_and_the_app_stays_usable(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("f1", "bash", json.dumps({"command": FLOOD}))]), Text("It printed a lot."),
                      Text("You are welcome."))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "flood the pane")
        cards = app.conversation.cards
        await wait_for(pilot, lambda: "f1" in cards and cards["f1"].state == "running", what="the flood running")
        type_without_waiting(app, "typed during")
        await wait_for(pilot, lambda: app.prompt.text == "typed during", what="the keys in the prompt")
        assert cards["f1"].state == "running"  # the keys were handled while the flood ran, not after it
        await until_idle(pilot, app)
        app.tool_log.flush()

        lines = list(app.query_one(Log).lines)
        assert lines[0].startswith("── bash ")
        assert any("more lines" in line and "not shown live" in line for line in lines), lines
        assert len(lines) <= 40, f"{len(lines)} lines in the Output pane"  # a flood is counted, not shown
        assert lines[-1] == "THE-END"
        assert cards["f1"].state == "completed"
        assert f"the command printed {FLOOD_BYTES:,} bytes" in cards["f1"].output
        assert any(a.text == "It printed a lot." for a in app.conversation.query("AnswerBlock"))

        app.prompt.text = ""
        await pilot.press(*"thanks", "enter")  # the conversation goes on: typed, sent, answered
        await until_idle(pilot, app)
        await wait_for(pilot, lambda: any(a.text == "You are welcome." for a in app.conversation.query("AnswerBlock")),
                       what="the next answer")
    sent = tool_result(llm_server.requests[1], "f1")
    assert f"the command printed {FLOOD_BYTES:,} bytes" in sent and sent.rstrip().endswith("THE-END")
    assert len(sent) < 30_000
    assert llm_server.requests[2]["messages"][-1] == {"role": "user", "content": "thanks"}
