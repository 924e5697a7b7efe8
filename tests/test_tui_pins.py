"""Pinning from the conversation: the select mode (alt+↑) with p/u/y on a message, ``/pins`` and
``/unpin N``, and pins that survive a compaction and a resume.

The end-to-end tests run a real Session on the scripted loopback model: a pin goes to the engine
as the ``pin`` op (recorded on its way), the engine answers with ``pins_changed`` and the mark
appears, and the next model request's system prompt (read from ``llm_server.requests``) carries
the pinned text.
"""

from __future__ import annotations

from agent.protocol import AssistantChunk, AssistantMessage, Compact, Pin, PinsChanged
from tests.fakes import Hang, Text
from tests.test_tui_snapshots import SIZE, ready
from tests.test_tui_steer_board import notices, of, send, start, until_idle
from tests.tui_support import AppUnderTest, feed, press_at_once, rendered_text, wait_for
from widgets.compaction_card import GRACE_S as CARD_GRACE_S
from widgets.compaction_card import CompactionLedgerCard, CompactionPreviewCard
from widgets.conversation import AnswerBlock, UserBlock
from widgets.pin_mark import PIN_CHARS, PIN_TITLE, pin_text

PLAN = "Use lr 2e-5 and 3 epochs; the eval set is test_clean.jsonl."
RULE = "Never train on test_clean.jsonl: it is the eval set."


def footer(app) -> str:
    return rendered_text(app)[-1]


def system_prompt(llm_server) -> str:
    return llm_server.requests[-1]["messages"][0]["content"]


def toasts(app) -> list[str]:
    return [n.message for n in app._notifications]


def pinned(block) -> bool:
    return block.has_class("-pinned") and block.border_title == PIN_TITLE


async def say(pilot, text: str) -> None:
    """Typed key by key into the prompt, then enter: the prompt has the keys again."""
    await pilot.press(*text)
    assert pilot.app.prompt.text == text
    await pilot.press("enter")


async def two_messages(pilot, app, llm_server, monkeypatch, tmp_path, **kw):
    """A session with one exchange on screen: RULE from the user, PLAN from the model."""
    llm_server.script(Text(PLAN))
    session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path, **kw)
    await send(pilot, RULE)
    await until_idle(pilot, app)
    return session, sent


# --------------------------------------------------------------------------- the select mode

def test_a_message_pin_is_one_line_cut_at_a_word():
    assert pin_text("  Use lr 2e-5\n\n- and   3 epochs ") == ("Use lr 2e-5 - and 3 epochs", 26)
    long = "word " * 400  # 2,000 characters
    text, length = pin_text(long)
    assert length == 1_999 and text.endswith("word …") and len(text) <= PIN_CHARS + 2
    assert pin_text(text.removesuffix(" …"))[0] == text.removesuffix(" …")  # what the engine keeps, unchanged


async def test_alt_up_selects_the_newest_message_and_the_keys_move_the_mark(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await two_messages(pilot, app, llm_server, monkeypatch, tmp_path)
        conv = app.conversation
        user, answer = conv.query_one(UserBlock), conv.query_one(AnswerBlock)
        assert "alt+↑ Pin" in footer(app)
        await pilot.press("alt+up")
        assert app.focused is conv and conv.selected is answer and answer.has_class("-selected")
        assert footer(app).startswith(" ↑↓ jk Move  p Pin  u Unpin  y Copy  esc Back") and "alt+↑" not in footer(app)
        await pilot.press("up")
        assert conv.selected is user and not answer.has_class("-selected")
        await pilot.press("k")  # the first message: the mark stays on it
        assert conv.selected is user
        await pilot.press("j")
        assert conv.selected is answer
        await pilot.press("down")
        assert conv.selected is answer
        await pilot.press("escape")  # leaves the mode: no interrupt, the prompt has the keys again
        assert app.focused is app.prompt and conv.selected is None and not conv.query(".-selected")
        assert "alt+↑ Pin" in footer(app)
        await pilot.press("alt+up", "enter")  # enter leaves too
        assert app.focused is app.prompt and conv.selected is None
        await pilot.press(*"hi")
        assert app.prompt.text == "hi"
        assert sent == sent[:1]  # the prompt alone: moving and leaving send nothing


async def test_the_marked_message_scrolls_into_view_and_esc_follows_again():
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        conv = app.conversation
        for n in range(12):
            await conv.add_user(f"question {n}")
            await conv.end_answer(f"answer {n}\n\nwith a second paragraph")
        await pilot.pause()
        assert conv.is_following and conv.max_scroll_y > 0
        await pilot.press("alt+up")
        assert conv.selected.text.startswith("answer 11")
        await press_at_once(pilot, *"k" * 23)
        await pilot.wait_for_scheduled_animations()
        first = conv.query_one(UserBlock)
        assert conv.selected is first and conv.scroll_y == 0
        assert conv.region.contains_region(first.region)
        await pilot.press("G")
        assert conv.selected.text.startswith("answer 11")
        await pilot.press("home")
        assert conv.selected is first and conv.scroll_y == 0
        await pilot.press("escape")
        await pilot.pause()
        assert conv.scroll_y == conv.max_scroll_y and conv.is_following  # as before the mode


async def test_alt_up_in_80_columns_and_not_under_the_side_panes():
    app = AppUnderTest()
    async with app.run_test(size=(80, 24)) as pilot:
        await feed(app, ready())
        await app.conversation.add_user("a message")
        await pilot.press("alt+up")
        assert app.conversation.selected is not None and "esc Back" in footer(app)
        await pilot.press("escape", "f2")  # the side panes cover the conversation
        await pilot.press("alt+up")
        assert app.conversation.selected is None
        await pilot.press("f2", "alt+up")
        assert app.conversation.selected is not None


async def test_nothing_to_select_says_so():
    app = AppUnderTest()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("alt+up")
        assert app.focused is app.prompt and toasts(app) == ["No message to select yet."]


# --------------------------------------------------------------------------- p, u, y

async def test_p_pins_the_answer_and_your_message_and_the_next_request_carries_them(llm_server, monkeypatch,
                                                                                        tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        session, sent = await two_messages(pilot, app, llm_server, monkeypatch, tmp_path)
        conv = app.conversation
        user, answer = conv.query_one(UserBlock), conv.query_one(AnswerBlock)
        assert "Pinned by the user" not in system_prompt(llm_server)
        await pilot.press("alt+up", "p")
        await wait_for(pilot, lambda: pinned(answer), what="the answer marked")
        assert session.engine.pins == [PLAN] and conv.pins == (PLAN,) and not pinned(user)
        assert (f"Pinning the answer: “{PLAN}”. It survives every compaction; /pins lists what is pinned."
                in toasts(app))
        assert any(f"Pinned (kept through every compaction): {PLAN} · 1 pinned" in n for n in notices(app))
        await pilot.press("up", "p")
        await wait_for(pilot, lambda: pinned(user), what="your message marked")
        assert session.engine.pins == [PLAN, RULE] and pinned(answer)
        await pilot.press("p")  # pinned already: said, not sent again
        assert "This message is pinned already (u unpins it)." in toasts(app)
        assert [(op.text, op.remove) for op in of(sent, Pin)] == [(PLAN, False), (RULE, False)]
        await pilot.press("escape")
        assert app.focused is app.prompt and pinned(user) and pinned(answer)  # the marks stay
        llm_server.script(Text("Noted."))
        await say(pilot, "what next?")
        await until_idle(pilot, app)
    system = system_prompt(llm_server)
    assert llm_server.requests[-1]["messages"][-1] == {"role": "user", "content": "what next?"}
    assert "Pinned by the user" in system and f"- {PLAN}\n- {RULE}" in system


async def test_u_unpins_and_the_next_request_no_longer_carries_it(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        session, sent = await two_messages(pilot, app, llm_server, monkeypatch, tmp_path)
        answer = app.conversation.query_one(AnswerBlock)
        await pilot.press("alt+up", "u")  # not pinned: said, nothing sent
        assert "This message is not pinned (p pins it)." in toasts(app) and not of(sent, Pin)
        await pilot.press("p")
        await wait_for(pilot, lambda: pinned(answer), what="pinned")
        await pilot.press("u")
        await wait_for(pilot, lambda: not answer.has_class("-pinned"), what="unpinned")
        assert answer.border_title is None and session.engine.pins == [] and app.conversation.pins == ()
        assert [(op.text, op.remove) for op in of(sent, Pin)] == [(PLAN, False), (PLAN, True)]
        assert any(t.startswith("Unpinning the answer: “") for t in toasts(app))
        await pilot.press("escape")
        llm_server.script(Text("ok"))
        await say(pilot, "go on")
        await until_idle(pilot, app)
    assert "Pinned by the user" not in system_prompt(llm_server)


async def test_y_copies_the_marked_message(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await two_messages(pilot, app, llm_server, monkeypatch, tmp_path)
        await pilot.press("alt+up", "y")
        assert app.clipboard == PLAN
        await pilot.press("up", "y")
        assert app.clipboard == RULE
        assert any(t.startswith(f"Sent your message ({len(RULE)} chars) to the clipboard with OSC 52") for t in toasts(app))
        assert app.conversation.selected is not None  # copying keeps the mode


async def test_a_long_answer_is_pinned_cut_and_says_how_much(llm_server, monkeypatch, tmp_path):
    long = " ".join(f"step{n}" for n in range(400))  # 2,889 characters
    llm_server.script(Text(long, chunk_chars=400))
    app = AppUnderTest()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "plan it")
        await until_idle(pilot, app)
        await pilot.press("alt+up", "p")
        answer = app.conversation.query_one(AnswerBlock)
        await wait_for(pilot, lambda: pinned(answer), what="the long answer marked")
        [pin] = session.engine.pins
        assert pin == pin_text(long)[0] and pin.endswith(" …") and len(pin) <= PIN_CHARS + 2
        kept = len(pin) - 2
        assert any(t.startswith(f"Pinning the answer (its first {kept:,} of {len(long):,} characters)")
                   for t in toasts(app))
        assert any(n.endswith("… · 1 pinned") for n in notices(app))  # the notice shows the start, /pins more


async def test_an_answer_still_streaming_is_not_pinned_and_esc_does_not_interrupt(llm_server, monkeypatch, tmp_path):
    llm_server.script(Hang(after_text="Thinking about the learning rate", seconds=30))
    app = AppUnderTest()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "what lr?")
        await wait_for(pilot, lambda: app.conversation.answer is not None and app.conversation.answer.text,
                       what="the answer streaming")
        await pilot.press("alt+up")
        assert app.conversation.selected is app.conversation.answer
        await pilot.press("p")
        assert "This answer is still being written: pin it once it is complete." in toasts(app)
        assert not of(sent, Pin)
        await pilot.press("up", "p")  # your message: ops wait for the running turn, and the toast says so
        assert "Pinning your message once the running turn ends: “what lr?”" in toasts(app)[-1]
        assert [op.text for op in of(sent, Pin)] == ["what lr?"] and session.engine.pins == []
        await pilot.press("escape")
        assert app.focused is app.prompt and session.busy  # esc left the mode; the turn runs on
        await pilot.press("escape")  # from the prompt: the interrupt
        await until_idle(pilot, app)
        await wait_for(pilot, lambda: pinned(app.conversation.query_one(UserBlock)), what="pinned after the turn")
        assert session.engine.pins == ["what lr?"]


# --------------------------------------------------------------------------- /pins, /unpin N

async def test_pins_lists_what_is_pinned_and_unpin_takes_its_number(llm_server, monkeypatch, tmp_path):
    long = "keep " * 60  # 299 characters once flattened
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "/pins")
        assert notices(app)[-1] == ("ℹ Nothing is pinned. /pin <fact> keeps a fact through every compaction; alt+↑ "
                                    "selects a message in the conversation, and p pins it.")
        await send(pilot, f"/pin {RULE}")
        await send(pilot, f"/pin {long}")
        await wait_for(pilot, lambda: len(app.conversation.pins) == 2, what="two pins")
        await send(pilot, "/pins")
        listing = notices(app)[-1].splitlines()
        assert listing[0] == "ℹ Pinned (2), in the system prompt and kept through every compaction:"
        assert listing[1] == f"1. {RULE}  · /unpin 1"
        assert listing[2].startswith("2. keep keep") and listing[2].endswith("… (299 characters)  · /unpin 2")
        assert listing[3] == "A pinned message also unpins with u on it (alt+↑ selects messages)."
        await send(pilot, "/unpin 3")
        assert notices(app)[-1] == "✗ There is no pin 3: /pins lists 2."
        await send(pilot, "/unpin 2")
        await wait_for(pilot, lambda: app.conversation.pins == (RULE,), what="the second unpinned")
        assert session.engine.pins == [RULE]
        assert [(op.text, op.remove) for op in of(sent, Pin)][-1] == (long.strip(), True)
        await send(pilot, "/help")
        help_text = notices(app)[-1]
        assert "/pins" in help_text and "/unpin <fact>|<n>" in help_text
        assert "Messages (alt+↑ from the prompt): ↑/↓ or k/j move · home/end first/last · p pin" in help_text


async def test_pins_while_an_answer_streams_does_not_repeat_the_answer():
    """/pins (any notice, or a message sent meanwhile) goes under the part of the answer shown
    so far; the rest streams below it, and the model step's final text fills in only the rest
    (it used to draw the whole answer again under the notice)."""
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, ready(), AssistantChunk(content="Use lr 2e-5 "))
        await send(pilot, "/pins")
        await feed(app, AssistantChunk(content="and 3 epochs."))
        await app.conversation.add_steer("and a warmup?")
        await feed(app, AssistantChunk(content=" Then evaluate."),
                   AssistantMessage(content="Use lr 2e-5 and 3 epochs. Then evaluate.", final=True))
        kinds = [(type(b).__name__, getattr(b, "text", "")) for b in app.conversation.children]
        assert kinds[0] == ("AnswerBlock", "Use lr 2e-5 ") and kinds[1][0] == "Notice"
        assert kinds[2:] == [("AnswerBlock", "and 3 epochs."), ("UserBlock", "and a warmup?"),
                             ("AnswerBlock", " Then evaluate.")]
        await feed(app, AssistantChunk(content="Next step."), AssistantMessage(content="Next step.", final=True))
        assert app.conversation.query(AnswerBlock).last().text == "Next step."  # nothing left over


# --------------------------------------------------------------------------- compaction and resume

async def test_a_pinned_message_survives_a_compaction(llm_server, monkeypatch, tmp_path):
    """The first answer is pinned with p, then /compact (previewed, enter) summarises it away:
    the preview lists it as pinned, its block keeps the mark, and the request after the
    compaction carries it in the system prompt and nowhere else."""
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await two_messages(pilot, app, llm_server, monkeypatch, tmp_path)
        llm_server.script(Text("Data checked."))
        await send(pilot, "check the data " + "y" * 200)
        await until_idle(pilot, app)
        first_answer = app.conversation.query(AnswerBlock).first()
        await pilot.press("alt+up", "up", "up", "p", "escape")
        await wait_for(pilot, lambda: pinned(first_answer), what="the first answer pinned")
        session.engine.context.tail_ratio = 0.0001  # keep only the newest message: the rest is summarised
        await send(pilot, "/compact")
        await wait_for(pilot, lambda: app.conversation.query(CompactionPreviewCard), what="the preview card")
        card = app.conversation.query(CompactionPreviewCard).last()
        await wait_for(pilot, lambda: app.focused is card, what="the card focused")
        assert PLAN in " ".join(str(s.render()) for s in card.query("Static"))  # under "Pinned"
        await pilot.pause(CARD_GRACE_S + 0.05)
        llm_server.script(Text("SUMMARY: the user set the eval rule; the data was checked."), Text("ok"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.conversation.query(CompactionLedgerCard), what="the compaction", timeout=20)
        assert [op.preview for op in of(sent, Compact)] == [True, False]
        await until_idle(pilot, app)
        await send(pilot, "and now?")
        await until_idle(pilot, app)
        assert pinned(first_answer) and session.engine.pins == [PLAN]
    messages = llm_server.requests[-1]["messages"]
    assert messages[-1]["content"] == "and now?" and PLAN in messages[0]["content"]
    assert "SUMMARY: the user set the eval rule" in str(messages)
    assert all(PLAN not in str(m.get("content")) for m in messages[1:])  # summarised away, kept by the pin


async def test_pins_come_back_with_a_resumed_session(llm_server, monkeypatch, tmp_path):
    """A pinned answer is saved at once (no turn needed); /clear starts a conversation without
    pins and drops the marks; /resume brings the pin, the mark and /pins back."""
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await two_messages(pilot, app, llm_server, monkeypatch, tmp_path)
        first_id = session.id
        await pilot.press("alt+up", "p", "escape")
        await wait_for(pilot, lambda: app.conversation.pins == (PLAN,), what="pinned")
        assert session.store.flush()
        assert session.store.load(first_id).state["pins"] == [PLAN]
        await send(pilot, "/clear")
        await wait_for(pilot, lambda: session.id != first_id and app.conversation.pins == (), what="a new conversation")
        assert session.engine.pins == [] and "Pinned by the user" not in session.engine.history.entries[0].message["content"]
        await send(pilot, f"/resume {first_id}")
        await wait_for(pilot, lambda: app.conversation.query(AnswerBlock), what="the restored conversation")
        answer = app.conversation.query_one(AnswerBlock)
        await wait_for(pilot, lambda: pinned(answer), what="the mark restored")
        assert not pinned(app.conversation.query_one(UserBlock))
        assert session.id == first_id and session.engine.pins == [PLAN] and app.conversation.pins == (PLAN,)
        await send(pilot, "/pins")
        assert notices(app)[-1].splitlines()[1] == f"1. {PLAN}  · /unpin 1"


# --------------------------------------------------------------------------- snapshot

def test_snapshot_select_mode_with_a_pinned_message(snap_compare):
    """Select mode (alt+↑ then ↑): the second prompt "Never train on test_clean.jsonl…" is
    marked (an accent bar down its left edge on an accent tint) and carries "◆ pinned" on the
    line above it, where the blank line was; the first answer (the plan with two bullets) is
    pinned too, its "◆ pinned" line above it. The footer starts with the mode's keys: "↑↓ jk
    Move  p Pin  u Unpin  y Copy  esc Back" and has no "alt+↑ Pin"; the prompt's frame is in its
    unfocused colour (the conversation has the keys)."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        conv = app.conversation
        await conv.add_user("Fine-tune Qwen2.5-0.5B on my support tickets")
        await conv.end_answer("Plan:\n\n- LoRA rank 16, lr 2e-5, 3 epochs\n- evaluate on `test_clean.jsonl`")
        await conv.add_user(RULE)
        await conv.end_answer("Understood: `test_clean.jsonl` stays out of training.")
        await feed(app, PinsChanged(pins=["Plan: - LoRA rank 16, lr 2e-5, 3 epochs - evaluate on `test_clean.jsonl`",
                                          RULE]))
        await pilot.press("alt+up", "up")
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)
