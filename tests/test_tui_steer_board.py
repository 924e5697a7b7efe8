"""Steering, the experiment board, compaction you can see and the doom-loop card, in the app.

Most tests run a real Session on the scripted loopback model and record the ops the app
submits; ops whose effect would need more script (a compaction's summary, a model switch, a
continued turn) are kept from the session where a test says so, and the engine's answers are
published on the session's own bus (``session.emit``), the path its events take to the bridge.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from agent.protocol import (
    Compact,
    Compacted,
    CompactionPreview,
    Continue,
    Guard,
    ListModels,
    ListRuns,
    Pin,
    RunRecord,
    SetModel,
    Steer,
    UserInput,
)
from mlintern_tui.screens.doom_loop import DoomLoopScreen
from mlintern_tui.screens.model_picker import ModelPicker
from mlintern_tui.screens.run_board import RunBoard
from mlintern_tui.screens.run_compare import RunCompare
from tests.engine_support import make_session
from tests.fakes import Call, Text, ToolCalls
from tests.test_tui_snapshots import RUN_A, RUN_B, RUN_C, SIZE, experiment_runs, model_list
from tests.tui_support import TEST_GRACE_S, AppUnderTest, feed, record_ops, rendered_text, type_keys, wait_for
from widgets.compaction_card import GRACE_S as CARD_GRACE_S
from widgets.compaction_card import CompactionLedgerCard, CompactionPreviewCard
from widgets.conversation import AnswerBlock, Notice, ToolCard, UserBlock
from widgets.run_curves import RunCurves

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- helpers

async def start(pilot, app, llm_server, monkeypatch, tmp_path, keep: tuple[type, ...] = (), **kw):
    session = make_session(llm_server, monkeypatch, tmp_path, **kw)
    app.approval_grace_s = TEST_GRACE_S  # the doom-loop card's; these tests answer it after it
    app.attach_session(session)
    await wait_for(pilot, lambda: app.status_info.model_ready, what="engine ready")
    return session, record_ops(monkeypatch, session, held=keep)


async def send(pilot, text: str) -> None:
    """Type-and-enter without Pilot.press's wait for idle (which lasts as long as a stream)."""
    pilot.app.prompt.text = text
    pilot.app.prompt.action_submit()
    await pilot.pause()


async def until_idle(pilot, app) -> None:
    # an answered card's op may still be on its way: the turn waiting for it is not over (the
    # session is not busy while it waits), so wait for the engine to take the answer
    await wait_for(pilot, lambda: not app.status_info.busy and not app.queued and not app.session.busy
                   and app.session.engine.pending is None,
                   what="turn end", timeout=20)


def notices(app) -> list[str]:
    return [str(n.render()) for n in app.conversation.query(Notice)]


def of(sent: list, kind: type) -> list:
    return [op for op in sent if isinstance(op, kind)]


def blocks(app) -> list[str]:
    """The conversation, one word per block: who said it, or which call."""
    out = []
    for child in app.conversation.children:
        if isinstance(child, UserBlock):
            out.append(f"user:{child.text}" + (f" ({child.steer})" if child.steer else ""))
        elif isinstance(child, ToolCard):
            out.append(f"call:{child.call_id}")
        elif isinstance(child, AnswerBlock):
            out.append(f"answer:{child.text}")
    return out


# --------------------------------------------------------------------------- steering

async def test_a_message_sent_while_working_lands_between_two_tool_calls(llm_server, monkeypatch, tmp_path):
    """enter while a slow call runs sends a steer at once; the message waits under the call
    ("joins at the next step"), then moves to where it reached the model: after the first call's
    result, before the second call."""
    llm_server.script(ToolCalls([Call("b1", "bash", json.dumps({"command": "sleep 1; echo one"}))]),
                      ToolCalls([Call("b2", "bash", json.dumps({"command": "echo two"}))]), Text("Both printed."))
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "print one")
        await wait_for(pilot, lambda: "b1" in app.conversation.cards and app.conversation.cards["b1"].state == "running",
                       what="the slow call running")
        await send(pilot, "then print two")
        assert [(type(op), op.text) for op in sent] == [(UserInput, "print one"), (Steer, "then print two")]
        assert blocks(app)[-1] == "user:then print two (pending)" and not app.queued
        assert "joins at the next step" in str(app.conversation.query(UserBlock).last().render())
        await until_idle(pilot, app)
        assert blocks(app) == ["user:print one", "call:b1", "user:then print two (landed)", "call:b2",
                               "answer:Both printed."]
        assert "sent while working" in str(app.conversation.query(UserBlock).last().render())
        assert app.conversation.pending_steers == []
    second = llm_server.requests[1]["messages"]
    assert second[-2]["role"] == "tool" and second[-1] == {"role": "user", "content": "then print two"}


async def test_the_queue_toggle_keeps_messages_for_after_the_turn(llm_server, monkeypatch, tmp_path):
    """/queue (the palette's "queue messages for after the turn"): enter queues as alt+enter does,
    until /queue again."""
    llm_server.script(ToolCalls([Call("s1", "bash", '{"command": "sleep 1"}')]), Text("first"), Text("second"))
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "/queue")
        assert app.queue_while_working and "now wait for the turn to end" in notices(app)[-1]
        await send(pilot, "one")
        await wait_for(pilot, lambda: "s1" in app.conversation.cards and app.conversation.cards["s1"].state == "running",
                       what="a running tool")
        await send(pilot, "two")
        assert [b.text for b in app.conversation.query(UserBlock) if b.queued] == ["two"]
        await until_idle(pilot, app)
        assert not of(sent, Steer) and [op.text for op in of(sent, UserInput)] == ["one", "two"]
        await send(pilot, "/queue")
        assert not app.queue_while_working and "join the running turn" in notices(app)[-1]


async def test_a_steer_sent_as_the_turn_ends_shows_as_a_prompt(llm_server, monkeypatch, tmp_path):
    """The session turns a steer that arrives with nothing running into a prompt: the waiting
    block becomes an ordinary one where its turn starts."""
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        llm_server.script(Text("Hello."))
        await app.conversation.add_steer("hi")
        session.submit(Steer(text="hi"))
        await until_idle(pilot, app)
        await wait_for(pilot, lambda: "answer:Hello." in blocks(app), what="the answer")
        assert blocks(app) == ["user:hi", "answer:Hello."] and app.conversation.pending_steers == []


# --------------------------------------------------------------------------- the experiment board

def board(app) -> RunBoard | None:
    return app.screen if isinstance(app.screen, RunBoard) else None


def header(screen: RunBoard) -> list[str]:
    return str(screen.table.query_one(".run-header").render()).split()


def order(screen: RunBoard) -> list[str]:
    return [r.job_id for r in screen.table.runs]


async def test_runs_asks_the_session_and_says_when_there_are_none(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "/runs")
        await wait_for(pilot, lambda: board(app) is not None, what="the board")
        await wait_for(pilot, lambda: of(sent, ListRuns), what="list_runs")
        screen = board(app)
        await wait_for(pilot, lambda: screen.runs == [], what="the session's (empty) run list")
        assert "No runs yet in this project" in str(screen.query_one("#runs-empty").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: board(app) is None, what="closed")
        await pilot.press("f4")  # the same board from the key
        await wait_for(pilot, lambda: board(app) is not None, what="the board again")
        await wait_for(pilot, lambda: len(of(sent, ListRuns)) == 2, what="asked again")


async def test_the_board_sorts_compares_and_exports_three_runs(tmp_path):
    """Three run_record events (no session: the board takes what arrives): the columns, the
    sort keys, the compare view of the marked runs (its table and both curves from the logs) and
    the CSV and Markdown written to the working directory."""
    app = AppUnderTest(cwd=tmp_path)
    app.wall_clock = lambda: 1_750_064_400.0
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/runs")
        await wait_for(pilot, lambda: board(app) is not None, what="the board")
        screen = board(app)
        logs = tmp_path / "logs"
        logs.mkdir()
        await feed(app, *[RunRecord(run=r) for r in experiment_runs(logs)])
        await pilot.pause()
        assert header(screen) == ["job", "status", "hardware", "lr", "epochs", "batch", "lora_r", "loss", "best",
                                  "eval", "accuracy", "time", "cost"]
        assert order(screen) == [RUN_C, RUN_B, RUN_A]  # newest first
        assert screen.query_one(".runs-keys") and "3 runs · newest first" in screen.query_one("Vertical").border_subtitle

        # s walks the columns (best loss is lowest first), r reverses
        await pilot.press(*["s"] * screen.table.sort_keys().index("best_loss"))
        assert screen.table.sort_key == "best_loss" and "best▲" in header(screen)
        assert order(screen) == [RUN_A, RUN_B, RUN_C]
        await pilot.press("r")
        assert order(screen) == [RUN_C, RUN_B, RUN_A] and "best▼" in header(screen)
        await pilot.press("S")  # back one column: loss, highest... lowest first again
        assert screen.table.sort_key == "final_loss" and order(screen) == [RUN_A, RUN_B, RUN_C]

        # the detail follows the highlight
        await pilot.press("home")
        detail = str(screen.query_one("#run-detail").render())
        assert RUN_A in detail and "--learning_rate 2e-4" in detail and "alice/qwen-support-lr2e-4" in detail

        # space marks, c compares the marked ones
        await pilot.press("space", "down", "space", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, RunCompare), what="the compare view")
        compare = app.screen
        table = compare.markdown
        assert f"| | {RUN_A} | {RUN_B} |" in table.replace("|  |", "| |")
        assert "| learning_rate | 2e-4 | 5e-5 |" in table and "| lora_r | 16 | 32 |" in table
        assert "| best_loss | 0.8888 | 1.256 |" in table and "eval_accuracy" in table
        assert "num_train_epochs" not in table.split("Same in every run")[0]  # the same in both: not a row
        assert "Same in every run:" in table and "num_train_epochs=3" in table
        plot = compare.query_one(RunCurves)
        await wait_for(pilot, lambda: not plot.waiting, what="the logs read")
        assert [c.label for c in plot.curves] == [RUN_A, RUN_B]
        assert [len(c.points) for c in plot.curves] == [30, 30] and plot.curves[0].points[-1] == (300, 0.8888)
        await pilot.press("escape")
        await wait_for(pilot, lambda: board(app) is screen, what="back on the board")

        # with nothing marked: the highlighted run and the next
        await pilot.press("space", "up", "space")  # unmark both
        assert not screen.table.marked
        assert [r.job_id for r in screen.compare_selection()] == [RUN_A, RUN_B]

        # x writes the board as CSV and Markdown beside the project, and says where
        await pilot.press("x")
        await wait_for(pilot, lambda: sorted(tmp_path.glob("runs-*.csv")), what="the CSV written")
        csv_files = sorted(tmp_path.glob("runs-*.csv"))
        md_files = sorted(tmp_path.glob("runs-*.md"))
        assert len(csv_files) == 1 and len(md_files) == 1
        rows = list(csv.DictReader(csv_files[0].open()))
        assert [r["job_id"] for r in rows] == [RUN_A, RUN_B, RUN_C]  # the board's order
        assert [r["learning_rate"] for r in rows] == ["2e-4", "5e-5", "1e-3"] and rows[2]["status"] == "ERROR"
        assert RUN_A in md_files[0].read_text()
        await wait_for(pilot, lambda: any("Exported 3 runs to" in n for n in notices(app)), what="the notice")
        assert str(csv_files[0]) in notices(app)[-1] and "Exported 3 runs" in str(screen.query_one("#runs-message").render())


async def test_a_run_that_ends_while_the_board_is_open_replaces_its_running_row(tmp_path):
    app = AppUnderTest(cwd=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        from agent.protocol import RunList

        await send(pilot, "/runs")
        await wait_for(pilot, lambda: board(app) is not None, what="the board")
        screen = board(app)
        a, b, c = experiment_runs()
        running = c.model_copy(update={"status": "RUNNING", "finished_at": None, "duration_s": None})
        await feed(app, RunList(runs=[a, b, running]))
        await pilot.pause()
        assert "1 running" in screen.query_one("Vertical").border_subtitle
        assert app.runs.recorded is False
        await pilot.press("escape")
        assert "f4 Runs" not in rendered_text(app)[-1]  # a session that trained nothing keeps its footer
        await pilot.press("f4")
        await wait_for(pilot, lambda: board(app) is not None, what="the board again")
        screen = board(app)
        await feed(app, RunList(runs=[a, b, running]))
        await pilot.pause()
        await feed(app, RunRecord(run=c))
        await pilot.pause()
        assert [r.status for r in screen.table.runs if r.job_id == RUN_C] == ["ERROR"] and len(screen.table.runs) == 3
        assert "running" not in screen.query_one("Vertical").border_subtitle
        assert app.runs.recorded
        await pilot.press("escape")
        await pilot.pause()
        assert "f4 Runs" in rendered_text(app)[-1]  # the footer offers the board from now on


# --------------------------------------------------------------------------- compaction

PREVIEW = CompactionPreview(
    summarise=["user: Fine-tune Qwen2.5-0.5B on my support tickets", "assistant → hf_datasets {\"operation\": \"inspect\"}",
               "result of hf_datasets: 12,400 rows"],
    keep=["user: Keep going with the sweep", "assistant: Launching run 3."],
    pinned=["the eval set is test_clean.jsonl: never train on it"], tokens=152_000, threshold=180_000)


async def open_preview(pilot, session, sent, text: str) -> CompactionPreviewCard:
    app = pilot.app
    await send(pilot, text)
    await wait_for(pilot, lambda: of(sent, Compact), what="the preview asked for")
    session.emit(PREVIEW.model_copy())
    await wait_for(pilot, lambda: app.conversation.query(CompactionPreviewCard), what="the preview card")
    card = app.conversation.query(CompactionPreviewCard).last()
    await wait_for(pilot, lambda: app.focused is card, what="the card focused")
    await pilot.pause(CARD_GRACE_S + 0.05)
    return card


async def test_compact_previews_first_and_enter_compacts_with_the_focus(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path, keep=(Compact,))
        card = await open_preview(pilot, session, sent, "/compact keep the sweep results")
        assert [(op.preview, op.focus) for op in of(sent, Compact)] == [(True, "keep the sweep results")]
        text = " ".join(str(s.render()) for s in card.query("Static"))
        assert "3 messages would be summarised, 2 kept, 1 pinned" in text and "152,000 tokens now" in text
        assert "result of hf_datasets: 12,400 rows" in text and "never train on it" in text  # unfolded
        assert "Focus of the summary: keep the sweep results" in text and "enter or y compact now" in text
        await pilot.press("enter")
        assert [(op.preview, op.focus) for op in of(sent, Compact)] == [(True, "keep the sweep results"),
                                                                         (False, "keep the sweep results")]
        assert card.answer == "compacting" and app.focused is app.prompt
        await pilot.press("y")  # answered: the key is the prompt's now
        assert len(of(sent, Compact)) == 2


async def test_escape_on_the_preview_compacts_nothing(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path, keep=(Compact,))
        card = await open_preview(pilot, session, sent, "/compact")
        await pilot.press("escape")
        assert [(op.preview, op.focus) for op in of(sent, Compact)] == [(True, None)]
        assert card.answer == "cancelled" and "cancelled: nothing changed" in str(card.query_one(".card-foot").render())
        assert app.focused is app.prompt


async def test_typing_under_way_when_the_preview_comes_does_not_answer_it(llm_server, monkeypatch, tmp_path):
    """/compact, then the next message typed at once: the preview arrives mid-word and takes
    focus, and the "y"s and "n"s still coming are not answers. After a pause, a key is."""
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path, keep=(Compact,))
        await send(pilot, "/compact")
        await wait_for(pilot, lambda: of(sent, Compact), what="the preview asked for")

        def preview_arrives(i: int) -> None:
            if i == 4:
                session.emit(PREVIEW.model_copy())

        await type_keys(pilot, "then try a yearly sweep, any run you know", each=preview_arrives)
        card = app.conversation.query(CompactionPreviewCard).last()
        assert app.focused is card and card.answer == "asking", "the typing answered the preview"
        assert len(of(sent, Compact)) == 1
        await wait_for(pilot, lambda: not card._keys.typing_now(), what="a pause long enough to answer")
        await pilot.press("y")
        assert card.answer == "compacting" and len(of(sent, Compact)) == 2


async def test_a_preview_before_an_automatic_compaction_asks_nothing(tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, PREVIEW.model_copy(update={"automatic": True}))
        card = app.conversation.query(CompactionPreviewCard).last()
        assert card.answer is None and not card.expanded and app.focused is app.prompt
        assert str(card.query_one(".card-head").render()).startswith(
            "⇣ Compacting: 3 messages will be summarised, 2 kept, 1 pinned (152,000 tokens, the limit is 180,000) ▸")
        card.action_toggle()
        await pilot.pause()
        assert "Kept (2)" in str(card.query_one(".card-body Static").render())


async def test_the_ledger_card_unfolds_to_the_summary_and_what_went(tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, Compacted(tokens_before=182_400, tokens_after=41_800, messages_before=212, messages_after=19,
                                  method="summary", detail="3 messages summarised",
                                  summary="## Goal\nFine-tune Qwen on the tickets.",
                                  dropped=["user: first prompt", "assistant → bash {\"command\": \"ls\"}",
                                           "result of bash: data train.py"]))
        card = app.conversation.query(CompactionLedgerCard).last()
        head = card.query_one(".card-head")
        assert str(head.render()) == ("⇣ Context compacted: 182,400 → 41,800 tokens, 212 → 19 messages "
                                      "(summary; 3 messages summarised) ▸")
        assert app.status_info.context_tokens == 41_800
        card.focus()
        await pilot.press("enter")
        body = card.query_one(".card-body")
        assert body.display and str(head.render()).endswith("▾")
        assert "Fine-tune Qwen on the tickets." in card.query_one("StreamedMarkdown").text
        listing = str(body.query("Static").last().render())
        assert listing.splitlines() == ["Summarised (3)", "· user: first prompt", "· assistant → bash {\"command\": \"ls\"}",
                                        "· result of bash: data train.py"]
        await pilot.press("enter")
        assert not body.display


async def test_pin_and_unpin_send_the_ops_and_say_what_the_engine_did(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "/pin the eval set is   test_clean.jsonl")
        await wait_for(pilot, lambda: any("Pinned (kept through every compaction)" in n for n in notices(app)),
                       what="the engine's answer")
        assert session.engine.pins == ["the eval set is test_clean.jsonl"]
        await send(pilot, "/unpin the eval set is test_clean.jsonl")
        await wait_for(pilot, lambda: any(n.startswith("ℹ Unpinned:") for n in notices(app)), what="unpinned")
        await send(pilot, "/unpin never pinned")
        await wait_for(pilot, lambda: any("Nothing pinned reads" in n for n in notices(app)), what="the error")
        await send(pilot, "/pin")
        assert "Usage: /pin <fact>" in notices(app)[-1]
        assert [(op.text, op.remove) for op in of(sent, Pin)] == [
            ("the eval set is test_clean.jsonl", False), ("the eval set is test_clean.jsonl", True),
            ("never pinned", True)]
        assert not app.status_info.busy and session.engine.pins == []


# --------------------------------------------------------------------------- the doom-loop card

def doom_guard() -> Guard:
    return Guard(kind="doom_loop", ends_turn=True, tokens_spent=9_000, cost_usd=0.03,
                 message="Repetition guard: bash called 3× with identical arguments and results. The turn is paused: "
                         "continue, send a hint, or switch model.",
                 repeated=['bash {"command": "echo stuck"}'] * 3, remedies=["stop", "hint", "switch_model", "continue"])


async def open_card(pilot, session) -> DoomLoopScreen:
    app = pilot.app
    session.emit(doom_guard())
    await wait_for(pilot, lambda: isinstance(app.screen, DoomLoopScreen), what="the doom-loop card")
    card = app.screen
    await wait_for(pilot, lambda: not card._in_grace(), what="the card's grace period to end")
    return card


async def test_a_repetition_guard_pauses_and_a_hint_continues_the_turn(llm_server, monkeypatch, tmp_path):
    """End to end: three identical calls, the engine pauses the turn (the app turned the pause
    on), the card lists the calls; h, a hint and enter continue with the hint."""
    same = '{"command": "echo stuck"}'
    llm_server.script(*[ToolCalls([Call(f"d{i}", "bash", same)]) for i in range(3)],
                      Text("Reading the traceback instead."))
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        assert session.engine_settings.pause_on_doom_loop
        await send(pilot, "fix the tests")
        await wait_for(pilot, lambda: isinstance(app.screen, DoomLoopScreen) and app.screen.query("DoomLoopCard"),
                       what="the doom-loop card", timeout=20)  # pushed is not yet composed: its card too
        card = app.screen
        text = str(card.query_one("DoomLoopCard").render())
        assert text.count('bash {"command": "echo stuck"}') == 3 and "spent in the loop" in text
        assert len(llm_server.requests) == 3  # paused: no fourth call
        await wait_for(pilot, lambda: not card._in_grace(), what="the card's grace period to end")
        await pilot.press("h")
        for key in "read the traceback":
            await pilot.press("space" if key == " " else key)
        await pilot.press("enter")
        await wait_for(pilot, lambda: of(sent, Continue), what="continue")
        assert [op.hint for op in of(sent, Continue)] == ["read the traceback"]
        await until_idle(pilot, app)
        await wait_for(pilot, lambda: "answer:Reading the traceback instead." in blocks(app), what="the answer")
    last = llm_server.requests[-1]["messages"][-1]
    assert last["role"] == "user" and str(last["content"]).endswith("read the traceback")


async def test_s_stops_and_c_continues(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path, keep=(Continue,))
        await open_card(pilot, session)
        await pilot.press("s")
        await wait_for(pilot, lambda: not isinstance(app.screen, DoomLoopScreen), what="closed")
        await wait_for(pilot, lambda: "Stopped after the repetition guard" in notices(app)[-1], what="said")
        assert not of(sent, Continue)
        await open_card(pilot, session)
        await pilot.press("c")
        await wait_for(pilot, lambda: of(sent, Continue), what="continue")
        assert [op.hint for op in of(sent, Continue)] == [""]


async def test_typing_under_way_when_the_guard_pauses_picks_no_remedy(llm_server, monkeypatch, tmp_path):
    """The card opens while a message is being typed: its s, h, m and c keep coming long after
    the grace period and pick nothing. After a pause, a key does."""
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path, keep=(Continue,))
        app.approval_grace_s = 0.3

        def guard_pauses(i: int) -> None:
            if i == 4:
                session.emit(doom_guard())

        await type_keys(pilot, "the script crashes, check the mesh config", each=guard_pauses)
        card = app.screen
        assert isinstance(card, DoomLoopScreen), "the typing picked a remedy"
        assert not of(sent, Continue) and not card.has_class("-hint")
        await wait_for(pilot, lambda: not card._in_grace(), what="a pause long enough to answer")
        await pilot.press("c")
        await wait_for(pilot, lambda: of(sent, Continue), what="continue")


async def test_m_switches_model_then_continues(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path,
                                    keep=(Continue, SetModel, ListModels))
        await open_card(pilot, session)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker), what="the model picker")
        await wait_for(pilot, lambda: of(sent, ListModels), what="list_models")
        picker = app.screen
        session.emit(model_list())
        await wait_for(pilot, lambda: picker.table.loaded, what="the models listed")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: of(sent, Continue), what="continue")
        switched = [op for op in sent if isinstance(op, (SetModel, Continue))]
        assert [type(op) for op in switched] == [SetModel, Continue] and switched[0].model == "anthropic/claude-sonnet-4-5"
        assert "then continuing" in notices(app)[-1]


async def test_a_guard_without_remedies_stays_a_notice(tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, doom_guard().model_copy(update={"remedies": [], "ends_turn": False}))
        await pilot.pause()
        assert not isinstance(app.screen, DoomLoopScreen) and "Repetition guard" in notices(app)[-1]


# --------------------------------------------------------------------------- the first frame

def test_the_app_starts_without_loading_these_screens():
    """The board, the compare view, the doom-loop card and the compaction cards load when first
    used, not before the first frame."""
    modules = ("mlintern_tui.screens.run_board", "mlintern_tui.screens.run_compare", "mlintern_tui.screens.doom_loop",
               "mlintern_tui.runs_link", "mlintern_tui.remedies", "mlintern_tui.compaction_link",
               "widgets.run_table", "widgets.run_curves", "widgets.doom_loop_card", "widgets.compaction_card",
               "agent.experiments")
    code = f"import sys, mlintern_tui.app; print([m for m in {modules!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
