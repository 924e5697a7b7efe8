"""The app driven with keys, on a real Session talking to the scripted loopback model.

What each approval key did is read where it matters: in the tool results the model
receives on its next request.
"""

from __future__ import annotations

import json

import pytest

from tests.engine_support import make_session
from tests.fakes import Call, Hang, Text, ToolCalls
from tests.tui_support import (TEST_GRACE_S, AppUnderTest, approval_screen, palette_highlights, press_at_once,
                                type_keys, wait_for)
from widgets.conversation import Notice, UserBlock
from widgets.receipt import CostReport


def tool_results(body: dict) -> dict[str, str]:
    return {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}


async def start_app(pilot, app, llm_server, monkeypatch, tmp_path, **kw):
    session = make_session(llm_server, monkeypatch, tmp_path, **kw)
    app.approval_grace_s = TEST_GRACE_S
    app.attach_session(session)
    await wait_for(pilot, lambda: app.status_info.model_ready, what="engine ready")
    return session


async def send(pilot, text: str) -> None:
    """Type-and-enter without Pilot.press's wait for idle (which lasts as long as a stream)."""
    app = pilot.app
    app.prompt.text = text
    app.prompt.action_submit()
    await pilot.pause()


async def until_idle(pilot, app, turns: int = 1) -> None:
    # an answered card's op may still be on its way: the turn waiting for it is not over (the
    # session is not busy while it waits), so wait for the engine to take the answer
    await wait_for(pilot, lambda: not app.status_info.busy and not app.queued and app.session and not app.session.busy
                   and app.session.engine.pending is None,
                   what="turn end", timeout=20)


async def open_card(pilot, app, position: int = 1):
    await wait_for(pilot, lambda: approval_screen(app) is not None and approval_screen(app).position == position,
                   what=f"approval card {position}")
    card = approval_screen(app)
    # keys typed within the card's grace period are ignored: wait until the card itself says it is over
    await wait_for(pilot, lambda: not card._in_grace(), what=f"the grace period of card {position}")
    return card


BASH = [Call("b1", "bash", '{"command": "echo one"}'), Call("b2", "bash", '{"command": "echo two"}'),
        Call("b3", "bash", '{"command": "echo three"}')]


async def test_y_approves_and_n_rejects(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls(BASH[:2]), Text("done"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        await send(pilot, "run two things")
        card = await open_card(pilot, app, 1)
        assert card.total == 2
        await pilot.press("y")
        await open_card(pilot, app, 2)
        await pilot.press("n")
        await until_idle(pilot, app)
    results = tool_results(llm_server.requests[1])
    assert "one" in results["b1"] and "rejected" in results["b2"] and "two" not in results["b2"]


async def test_keys_inside_the_grace_period_are_ignored(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls(BASH[:1]), Text("done"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        app.approval_grace_s = 1.5  # wide enough that a loaded CI machine still presses inside it
        await send(pilot, "run")
        await wait_for(pilot, lambda: approval_screen(app) is not None, what="card")
        await pilot.press("y", "y", "n")  # typed at once: must not answer
        card = approval_screen(app)
        assert card is not None and len(llm_server.requests) == 1
        await wait_for(pilot, lambda: not card._in_grace(), what="the end of the grace period", timeout=5)
        await pilot.press("y")
        await until_idle(pilot, app)
    assert "one" in tool_results(llm_server.requests[1])["b1"]


async def type_as_the_card_opens(pilot, llm_server, text: str):
    """Send "run", then type ``text`` as a terminal would while the call streams in: the card
    (grace 0.3 s) opens mid-word and the typing goes on. Returns the card, still open."""
    app = pilot.app
    app.approval_grace_s = 0.3
    await send(pilot, "run")
    opened: list[bool] = []
    await type_keys(pilot, text, each=lambda _: opened.append(approval_screen(app) is not None))
    card = approval_screen(app)
    assert any(opened), "the card never opened while typing"
    assert card is not None, "the typing answered the card"
    assert len(llm_server.requests) == 1  # nothing answered: the call has not run
    return card


async def answer_after_a_pause(pilot, card) -> None:
    """The user stops, reads and approves: after a pause, a key is an answer."""
    await wait_for(pilot, lambda: not card._in_grace(), what="a pause long enough to answer")
    await pilot.press("y")
    await until_idle(pilot, pilot.app)


async def test_typing_under_way_when_a_card_opens_never_answers_it(llm_server, monkeypatch, tmp_path):
    """A message typed while the agent works: the card opens mid-word, and the "y"s and "n"s that
    keep coming long after its grace period are not answers. After a pause, a key is."""
    # the call streams in over ~0.7 s: the card opens while the next message is being typed
    llm_server.script(ToolCalls(BASH[:1], content="Running it now, one moment.", delay=0.1), Text("done"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        card = await type_as_the_card_opens(pilot, llm_server, "yes now run it yearly, nanny, yes")
        await answer_after_a_pause(pilot, card)
    assert "one" in tool_results(llm_server.requests[1])["b1"]


async def test_keys_that_waited_out_a_busy_loop_are_still_the_typing(llm_server, monkeypatch, tmp_path):
    """The card opens while a message is being typed, and the loop is then stuck for 0.6 s (a long
    frame, a collection) as the typing goes on: the keys that waited come in a burst once it is
    free. They came 60 ms apart, so they are the same typing, not a pause and then an answer."""
    import time

    from textual import events

    # the call streams in over ~0.7 s: the card opens while the next message is being typed
    llm_server.script(ToolCalls(BASH[:1], content="Running it now, one moment.", delay=0.1), Text("done"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        card = await type_as_the_card_opens(pilot, llm_server, "yes now run it yearly, yes")
        waited = []
        for char in "nanny, yes":  # the loop is stuck (a blocking sleep): the driver still makes the events
            waited.append(events.Key("space" if char == " " else char, char))
            time.sleep(0.06)
        for event in waited:
            app.post_message(event)
        await type_keys(pilot, "")  # the app has taken them all
        assert approval_screen(app) is card and len(llm_server.requests) == 1, "a key that waited answered the card"
        await answer_after_a_pause(pilot, card)
    assert "one" in tool_results(llm_server.requests[1])["b1"]


async def test_f_rejects_with_typed_feedback(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls(BASH[:1]), Text("ok"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        await send(pilot, "run")
        await open_card(pilot, app)
        await pilot.press("f")
        await pilot.press(*"try a t4 instead")  # letters are text now, not answers
        await pilot.press("enter")
        await until_idle(pilot, app)
    result = tool_results(llm_server.requests[1])["b1"]
    assert "rejected" in result and "User feedback: try a t4 instead" in result


async def test_a_approves_the_whole_batch(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls(BASH), Text("all done"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        await send(pilot, "run three")
        card = await open_card(pilot, app)
        assert (card.position, card.total) == (1, 3)
        await pilot.press("a")
        await until_idle(pilot, app)
        assert approval_screen(app) is None
    results = tool_results(llm_server.requests[1])
    assert [("one" in results["b1"]), ("two" in results["b2"]), ("three" in results["b3"])] == [True] * 3


async def test_a_stops_at_a_call_that_must_be_seen_on_its_own(llm_server, monkeypatch, tmp_path):
    """'a' approves the rest of the batch, but a scheduled job (always asks) still gets its
    own card: approving a recurring job must never ride along unseen."""
    llm_server.script(ToolCalls([*BASH[:2], Call("s1", "hf_jobs", '{"operation": "scheduled ps"}')]), Text("done"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        await send(pilot, "run")
        await open_card(pilot, app)
        await pilot.press("a")
        card = await open_card(pilot, app, position=3)
        assert card.item.tool == "hf_jobs" and card.item.always_ask
        await pilot.press("n")
        await until_idle(pilot, app)
    results = tool_results(llm_server.requests[1])
    assert "one" in results["b1"] and "two" in results["b2"] and "rejected" in results["s1"]


async def test_e_edits_arguments_before_approving(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls(BASH[:1]), Text("ok"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        await send(pilot, "run")
        card = await open_card(pilot, app)
        await pilot.press("e")
        from textual.widgets import TextArea

        editor = card.query_one("#edit", TextArea)
        assert json.loads(editor.text) == {"command": "echo one"}
        editor.text = '{"command": "echo edited-in-the-card"}'
        await pilot.press("ctrl+s")
        await until_idle(pilot, app)
    result = tool_results(llm_server.requests[1])["b1"]
    assert "edited-in-the-card" in result and "edited the arguments" in result


async def test_escape_leaves_it_pending_and_ctrl_r_reopens(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls(BASH[:1]), Text("ok"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        session = await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        await send(pilot, "run")
        await open_card(pilot, app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: approval_screen(app) is None, what="card closed")
        assert session.engine.pending is not None and len(llm_server.requests) == 1
        await pilot.press("ctrl+r")
        await open_card(pilot, app)
        await pilot.press("y")
        await until_idle(pilot, app)
    assert "one" in tool_results(llm_server.requests[1])["b1"]


async def test_escape_interrupts_a_streaming_answer(llm_server, monkeypatch, tmp_path):
    llm_server.script(Hang(after_text="Thinking about **it**", seconds=20))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "explain")
        await wait_for(pilot, lambda: app.conversation.answer is not None and "Thinking" in app.conversation.answer.text,
                       what="streamed text")
        await pilot.press("escape")
        await until_idle(pilot, app)
        notices = [n for n in app.conversation.query(Notice) if n.kind == "interrupt"]
        assert notices and "partial answer was kept" in str(notices[-1].render())


async def test_the_status_bar_estimates_tokens_while_an_answer_streams(llm_server, monkeypatch, tmp_path):
    """Usage arrives only with the call's last chunk: until then the turn's output tokens
    are estimated from the streamed text (~ marks the estimate)."""
    from widgets.status import StatusBar

    llm_server.script(Hang(after_text="word " * 80, seconds=20))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "explain")
        await wait_for(pilot, lambda: "~100↓" in str(app.query_one(StatusBar).render()), what="the estimate")
        await pilot.press("escape")
        await until_idle(pilot, app)


async def test_alt_enter_queues_a_message_typed_while_working_then_delivers_it(llm_server, monkeypatch, tmp_path):
    """enter would send it into the running turn (tests/test_tui_steer_board.py); alt+enter keeps
    it for after the turn, as its own prompt."""
    # the tool runs until the test lets it end (a fixed sleep would be a guess at how long the keys take)
    command = json.dumps({"command": "until [ -e release ]; do sleep 0.02; done"})
    llm_server.script(ToolCalls([Call("s1", "bash", command)]), Text("first answer"), Text("second answer"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        session = await start_app(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "one")
        await wait_for(pilot, lambda: "s1" in app.conversation.cards and app.conversation.cards["s1"].state == "running",
                       what="a running tool")
        app.prompt.text = "two"
        await pilot.press("alt+enter")
        queued = [b for b in app.conversation.query(UserBlock) if b.text == "two"]
        assert queued and queued[0].queued and app.status_info.queued == 1
        assert app.conversation.cards["s1"].state == "running"  # still inside the turn
        (session.cwd / "release").touch()
        await until_idle(pilot, app)
        assert not queued[0].queued and app.status_info.queued == 0
    assert llm_server.requests[2]["messages"][-1] == {"role": "user", "content": "two"}


async def test_slash_commands_and_palette(llm_server, monkeypatch, tmp_path):
    llm_server.script(Text("hello"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "/help")
        await wait_for(pilot, lambda: any("Commands:" in str(n.render()) for n in app.conversation.query(Notice)), what="help")
        await send(pilot, "/nope")
        await wait_for(pilot, lambda: any("Unknown command: /nope" in str(n.render()) for n in app.conversation.query(Notice)),
                       what="unknown command")
        await send(pilot, "/yolo 2.5")
        await wait_for(pilot, lambda: app.status_info.mode == "yolo", what="yolo on")
        assert app.status_info.yolo_cap_usd == 2.5
        await send(pilot, "/model ollama/qwen3")
        await wait_for(pilot, lambda: app.status_info.model_label == "ollama/qwen3", what="model switch")
        await send(pilot, "/model openai/scripted-model")
        await wait_for(pilot, lambda: app.status_info.model_label == "openai/scripted-model", what="model back")
        await send(pilot, "hi")
        await until_idle(pilot, app)
        # the palette runs the same registry
        await pilot.press("ctrl+p")
        await press_at_once(pilot, *"/cost")
        await palette_highlights(pilot, "/cost")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("+ 1 call at unknown price, not counted" in r.text
                                          for r in app.conversation.query(CostReport)), what="/cost via palette")


async def test_prompt_history_and_completion(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path)
        prompt = app.prompt
        await pilot.press(*"/status")
        await pilot.press("enter")  # the real key path: enter sends, it does not add a line
        assert prompt.text == "" and prompt.prompt_history == ["/status"]
        await wait_for(pilot, lambda: any("Model: openai/scripted-model" in str(n.render()) for n in app.conversation.query(Notice)),
                       what="/status")
        prompt.prompt_history[:] = ["first prompt", "second prompt"]
        await pilot.press("up")
        assert prompt.text == "second prompt"
        await pilot.press("up")
        assert prompt.text == "first prompt"
        await pilot.press("down", "down")
        assert prompt.text == ""
        prompt.text = "/co"
        await pilot.pause()
        assert app.query_one("#hints").has_class("-visible")
        await pilot.press("tab")
        assert prompt.text.startswith("/co")  # /compact, /copy, /cost share "/co"
        prompt.text = "/cos"
        await pilot.press("tab")
        assert prompt.text == "/cost "


@pytest.mark.parametrize("width,narrow", [(120, False), (80, True)])
async def test_layout_adapts_to_width_without_losing_content(llm_server, monkeypatch, tmp_path, width, narrow):
    llm_server.script(Text("kept across resizes"))
    app = AppUnderTest()
    async with app.run_test(size=(width, 30)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "hi")
        await until_idle(pilot, app)
        assert app.screen.has_class("-narrow") is narrow
        await pilot.resize_terminal(200 - width, 30)
        await pilot.pause()
        assert app.screen.has_class("-narrow") is not narrow
        assert any(a.text == "kept across resizes" for a in app.conversation.query("AnswerBlock"))
        if app.screen.has_class("-narrow"):
            await pilot.press("f2")
            assert app.query_one("#side").display


async def test_a_message_after_deferring_an_approval_is_sent_and_abandons_it(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls(BASH[:1]), Text("doing something else"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        await send(pilot, "run")
        await open_card(pilot, app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: approval_screen(app) is None, what="card closed")
        await send(pilot, "never mind, do something else")
        assert not [b for b in app.conversation.query(UserBlock) if b.queued]
        await until_idle(pilot, app)
    assert "Abandoned" in tool_results(llm_server.requests[1])["b1"]
    assert app.pending_approval is None
