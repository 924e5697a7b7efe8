"""Resuming stored sessions on screen: the picker (``/resume``) over a real SQLite store, the
``/resume ID`` and ``/rename`` commands reaching a real Session, and a ``resume_complete`` event
redrawing the conversation with the "while you were away" card.

Events are published on the real session's bus (``session.emit``), the path the engine's own
events take to the bridge; the sessions the picker lists are written with the store's own
``checkpoint``.
"""

from __future__ import annotations

import sqlite3

import pytest
from textual.widgets import Input, OptionList

from agent.protocol import (
    AwayJob,
    PlanItem,
    Rename,
    Resume,
    ResumeComplete,
    SessionTitle,
    TranscriptItem,
)
from agent.config import data_dir
from agent.store import SCHEMA_VERSION, Checkpoint, SessionStore, db_path
from mlintern_tui.screens.resume_picker import ResumePicker, format_age, format_spend, session_row, shorten_path
from tests.engine_support import collect_until, make_session
from tests.test_tui_snapshots import SIZE, ready
from tests.tui_support import AppUnderTest, feed, press_at_once, record_ops, wait_for
from widgets.away_card import CUT_OFF_TEXT, AwayCard, format_away, worth_showing
from widgets.conversation import AnswerBlock, Notice, ToolCard, UserBlock

NOW = 1_780_000_000.0  # the picker's pinned wall clock
HOME = "/home/me"


# --------------------------------------------------------------------------- helpers

def save(store: SessionStore, session_id: str, *, title: str = "", prompt: str = "", model: str = "openai/gpt-5",
         cwd: str = f"{HOME}/sft-project", age_s: float = 600.0, turns: int = 3, spend: float = 0.42,
         status: str = "idle") -> None:
    store.checkpoint(Checkpoint(
        session_id=session_id, title=title, title_auto=not title, model=model, cwd=cwd, created=NOW - age_s - 60,
        first_prompt=prompt, turns=turns, spend_model=spend, spend_compute=0.0, spend_title=0.0, status=status,
        headless=False, state={}, entries=(), updated=NOW - age_s))


def three_sessions(store: SessionStore) -> None:
    save(store, "a1b2c3d4e5f60718", title="Qwen SFT on support tickets", model="Qwen/Qwen3-Coder-480B-A35B-Instruct",
         age_s=180, turns=12, spend=1.8312, status="running")
    save(store, "b2c3d4e5f6071829", prompt="Evaluate the LoRA checkpoint on GSM8K\nthen push the results",
         model="anthropic/claude-sonnet-4-5", cwd="/data/evals", age_s=5 * 3600, turns=4, spend=0.0731,
         status="waiting")
    save(store, "c3d4e5f607182930", title="Dataset cleanup", cwd=f"{HOME}/datasets/tickets", age_s=2 * 86400 + 60,
         turns=1, spend=0.0)
    store.flush()


async def session_store(pilot, session) -> SessionStore:
    """The session's own store (``<data dir>/sessions.db``), once the session has opened it."""
    await wait_for(pilot, lambda: session.store is not None or session.store_error is not None, what="store open")
    assert session.store is not None, session.store_error
    return session.store


def earlier_sessions() -> None:
    """Three sessions saved by earlier runs, in the store the next session opens."""
    store = SessionStore.open(db_path(data_dir()))
    three_sessions(store)
    store.close()


async def start(pilot, app, llm_server, monkeypatch, tmp_path, **kw):
    session = make_session(llm_server, monkeypatch, tmp_path, **kw)
    app.attach_session(session)
    await wait_for(pilot, lambda: app.status_info.model_ready, what="engine ready")
    return session


async def command(pilot, text: str) -> None:
    pilot.app.prompt.text = text
    pilot.app.prompt.action_submit()
    await pilot.pause()


def picker(app) -> ResumePicker | None:
    return app.screen if isinstance(app.screen, ResumePicker) else None


async def open_picker(pilot, app, query: str = "") -> ResumePicker:
    await command(pilot, "/resume")
    await wait_for(pilot, lambda: picker(app) is not None and picker(app).loaded_query == query, what="picker rows")
    return picker(app)


def shown_labels(screen: ResumePicker) -> list[str]:
    options = screen.query_one(OptionList)
    return [str(options.get_option_at_index(i).prompt).splitlines()[0] for i in range(options.option_count)]


def blocks_text(app) -> list[str]:
    out = []
    for child in app.conversation.children:
        if isinstance(child, UserBlock):
            out.append(f"user: {child.text}")
        elif isinstance(child, AnswerBlock):
            out.append(f"answer: {child.text}")
        elif isinstance(child, ToolCard):
            out.append(f"card: {child.tool} {child.state} {child.output}")
        elif isinstance(child, Notice):
            out.append(f"notice: {child.kind}")
        elif isinstance(child, AwayCard):
            out.append("away")
    return out


# --------------------------------------------------------------------------- formatting

def test_ages_spend_and_paths_read_like_a_person_wrote_them():
    assert [format_age(s) for s in (5, 100, 3600 * 5 + 10, 86400 * 2 + 1, 86400 * 90, 86400 * 800)] == \
        ["just now", "2 min ago", "5 h ago", "2 d ago", "3 mo ago", "2 y ago"]
    assert [format_spend(v) for v in (0, 0.004, 1.8312)] == ["$0", "<$0.01", "$1.83"]
    # a model or job at an unknown price: never shown as $0
    assert [format_spend(0, 2), format_spend(0.4, 1)] == ["cost unknown", "$0.40+?"]
    assert shorten_path("/home/me/proj", "/home/me") == "~/proj"
    assert shorten_path("/home/meta/proj", "/home/me") == "/home/meta/proj"  # not a prefix of a name
    assert shorten_path("/" + "x" * 60, "/home/me", limit=20).startswith("…") and len(shorten_path("/" + "x" * 60, "", 20)) == 20
    assert [format_away(s) for s in (30, 600, 7200, 8040, 86400 * 3 + 3600)] == ["30 s", "10 min", "2 h", "2 h 14 min", "3 d 1 h"]


def test_a_row_says_status_model_directory_spend_and_age(tmp_path):
    store = SessionStore.open(tmp_path / "s.db")
    three_sessions(store)
    rows = {s.id: s for s in store.list_sessions()}
    store.close()
    first = str(session_row(rows["a1b2c3d4e5f60718"], now=NOW, home=HOME))
    assert first.splitlines()[0] == "Qwen SFT on support tickets  cut off"
    assert "Qwen/Qwen3-Coder-480B-A35B-Instruct · ~/sft-project · $1.83 · 12 turns · 3 min ago" in first
    second = str(session_row(rows["b2c3d4e5f6071829"], now=NOW, home=HOME))
    assert second.splitlines()[0] == "Evaluate the LoRA checkpoint on GSM8K  waiting approval"  # the prompt's first line
    assert "/data/evals" in second and "5 h ago" in second
    third = str(session_row(rows["c3d4e5f607182930"], now=NOW, home=HOME, current=True))
    assert third.splitlines()[0] == "Dataset cleanup  this session" and "2 d ago" in third


def test_the_away_card_only_when_there_is_news():
    running = AwayJob(job_id="j1", backend="hf", status="RUNNING")
    done_before = AwayJob(job_id="j0", backend="hf", status="COMPLETED")  # ended before the app closed
    assert not worth_showing([], False) and not worth_showing([done_before], False)
    assert worth_showing([running], False) and worth_showing([], True)
    assert worth_showing([AwayJob(job_id="j2", backend="hf", status="ERROR", ended_while_away=True)], False)


# --------------------------------------------------------------------------- the picker

async def test_search_filters_the_stored_sessions(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    app.wall_clock = lambda: NOW
    async with app.run_test(size=SIZE) as pilot:
        session = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        store = await session_store(pilot, session)
        three_sessions(store)
        screen = await open_picker(pilot, app)
        assert [s.id for s in screen.rows] == ["a1b2c3d4e5f60718", "b2c3d4e5f6071829", "c3d4e5f607182930"]
        assert shown_labels(screen)[0] == "Qwen SFT on support tickets  cut off"
        assert screen.query_one(OptionList).highlighted == 0
        await press_at_once(pilot, *"gsm8k")
        await wait_for(pilot, lambda: screen.loaded_query == "gsm8k", what="filtered rows")
        assert [s.id for s in screen.rows] == ["b2c3d4e5f6071829"]
        assert shown_labels(screen) == ["Evaluate the LoRA checkpoint on GSM8K  waiting approval"]
        await press_at_once(pilot, *"zzz")
        await wait_for(pilot, lambda: screen.loaded_query == "gsm8kzzz", what="no rows")
        assert screen.rows == () and "No saved session matches “gsm8kzzz”" in str(screen.query_one("#picker-message").render())
        await press_at_once(pilot, *["backspace"] * 8)
        await wait_for(pilot, lambda: screen.loaded_query == "", what="all rows again")
        assert len(screen.rows) == 3


async def test_enter_resumes_the_highlighted_session(llm_server, monkeypatch, tmp_path):
    """↓ then enter: the picker closes and the second session's id goes to the engine as a
    Resume op, which answers (resume_complete, or an error saying why it could not)."""
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        three_sessions(await session_store(pilot, session))
        sent = record_ops(monkeypatch, session)
        watcher = session.subscribe("test")
        await open_picker(pilot, app)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: picker(app) is None, what="picker closed")
        await wait_for(pilot, lambda: any(isinstance(op, Resume) for op in sent), what="resume op")
        assert [op.target_session_id for op in sent if isinstance(op, Resume)] == ["b2c3d4e5f6071829"]
        answer = await collect_until(watcher, stop={"resume_complete", "error"}, timeout=10)
        assert (answer[-1].type, answer[-1].session_id) == ("resume_complete", "b2c3d4e5f6071829")
        await wait_for(pilot, lambda: not app.status_info.busy, what="the answer ends the wait")
        await pilot.pause(0.2)
        notices = [str(n.render()) for n in app.conversation.query(Notice)]
        assert "Resumed the session: 0 messages restored" in notices[-1]  # not followed by the settings restated


async def test_a_finished_turn_comes_back_after_new_and_resume(llm_server, monkeypatch, tmp_path):
    """End to end on the real engine and store: a turn with a tool call, /new, then /resume
    and enter on the first row: the prompt, the bash card with its output and the answer are
    drawn again, and the prompt's frame carries the session's automatic title."""
    from tests.fakes import Call, Text, ToolCalls

    llm_server.script(ToolCalls([Call("b1", "bash", '{"command": "echo restored-output"}')]), Text("All **done**."))
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        first_id = session.id
        await command(pilot, "Run the echo please")
        await wait_for(pilot, lambda: not app.status_info.busy and not session.busy and app.conversation.query(AnswerBlock),
                       what="turn end", timeout=20)
        await command(pilot, "/clear")
        await wait_for(pilot, lambda: session.id != first_id and not app.conversation.children, what="a new session")
        screen = await open_picker(pilot, app)
        assert [s.id for s in screen.rows] == [first_id]
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.conversation.query(AnswerBlock), what="the restored conversation")
        assert session.id == first_id
        assert blocks_text(app)[:3] == ["user: Run the echo please", "card: bash completed restored-output",
                                        "answer: All **done**."]
        assert app.prompt.border_title == "Run the echo please"
        # /cost is the resumed session's again: its two model calls, read back from the store
        await wait_for(pilot, lambda: app.costs.total.calls == 2, what="the session's calls in /cost")


async def test_escape_closes_without_resuming(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        three_sessions(await session_store(pilot, session))
        sent = record_ops(monkeypatch, session)
        await open_picker(pilot, app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: picker(app) is None, what="picker closed")
        await pilot.pause(0.1)
        assert sent == [] and not app.status_info.busy
        assert app.focused is app.prompt


async def test_an_empty_store_says_so(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await session_store(pilot, session)
        screen = await open_picker(pilot, app)
        assert screen.rows == ()
        assert "No saved sessions yet" in str(screen.query_one("#picker-message").render())
        await pilot.press("enter")  # nothing to pick: stays open, sends nothing
        assert picker(app) is screen


async def test_the_current_session_is_marked_and_cannot_be_picked(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    app.wall_clock = lambda: NOW
    async with app.run_test(size=SIZE) as pilot:
        session = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        store = await session_store(pilot, session)
        save(store, session.id, title="What I am doing now", age_s=0)
        save(store, "d4e5f60718293041", title="Yesterday's run", age_s=86400)
        store.flush()
        screen = await open_picker(pilot, app)
        options = screen.query_one(OptionList)
        assert shown_labels(screen)[0] == "What I am doing now  this session"
        assert options.get_option_at_index(0).disabled and options.highlighted == 1
        await pilot.press("up")  # the disabled row is skipped
        assert options.highlighted == 1


async def test_without_a_store_the_picker_says_why(llm_server, monkeypatch, tmp_path):
    """A store written by a newer mlintern is left alone: the session runs unsaved, and the
    picker says so, with the store's reason."""
    path = db_path(data_dir())
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await wait_for(pilot, lambda: session.store_error is not None, what="the store refused")
        await command(pilot, "/resume")
        await wait_for(pilot, lambda: picker(app) is not None, what="picker")
        text = str(app.screen.query_one(".picker-message").render())
        assert "Sessions are not being saved" in text and "newer mlintern" in text
        assert not app.screen.query(Input)
        await pilot.press("escape")
        await wait_for(pilot, lambda: picker(app) is None, what="picker closed")


async def test_the_app_can_open_the_picker_once_ready(llm_server, monkeypatch, tmp_path):
    """``mlintern --resume``: the picker opens as soon as the session is ready (before its store
    has opened: the picker waits for it) and lists the sessions earlier runs saved."""
    earlier_sessions()
    app = AppUnderTest(open_resume_picker=True)
    async with app.run_test(size=SIZE) as pilot:
        session = make_session(llm_server, monkeypatch, tmp_path)
        app.attach_session(session)
        await wait_for(pilot, lambda: picker(app) is not None and picker(app).loaded_query == "", what="picker at start")
        assert len(picker(app).rows) == 3


async def test_a_picker_opened_before_the_store_waits_for_it(tmp_path):
    """The session opens its store just after "ready": a picker opened in between says it is
    opening the store, then lists the sessions once the store is there."""
    store = SessionStore.open(tmp_path / "later.db")
    three_sessions(store)
    source = {"store": None}
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        screen = ResumePicker(lambda: (source["store"], None), clock=lambda: NOW, home=HOME)
        await app.push_screen(screen)
        await pilot.pause(0.2)
        assert screen.waiting_for_store
        assert str(screen.query_one(".picker-message").render()) == "Opening the session store…"
        source["store"] = store
        await wait_for(pilot, lambda: screen.loaded_query == "", what="rows once the store opened")
        assert len(screen.rows) == 3 and screen.query_one(Input).has_focus
    store.close()


# --------------------------------------------------------------------------- /resume ID, /rename, titles

async def test_resume_with_an_id_at_start_and_as_a_command(llm_server, monkeypatch, tmp_path):
    """``mlintern --resume ID`` sends Resume once the session is ready; ``/resume ID`` does the
    same at any time; the engine's error (an unknown id) is shown and ends the wait."""
    app = AppUnderTest(resume_session_id="feedface")
    async with app.run_test(size=SIZE) as pilot:
        session = make_session(llm_server, monkeypatch, tmp_path)
        sent = record_ops(monkeypatch, session)
        app.attach_session(session)
        await wait_for(pilot, lambda: any(isinstance(op, Resume) for op in sent), what="resume at start")
        await wait_for(pilot, lambda: not app.status_info.busy, what="the engine's answer")
        await command(pilot, "/resume 0badc0de")
        await wait_for(pilot, lambda: len([op for op in sent if isinstance(op, Resume)]) == 2, what="/resume ID")
        assert [op.target_session_id for op in sent if isinstance(op, Resume)] == ["feedface", "0badc0de"]
        await wait_for(pilot, lambda: not app.status_info.busy, what="the engine's answer")
        errors = [str(n.render()) for n in app.conversation.query(Notice) if n.kind == "error"]
        assert len(errors) == 2 and "feedface" in errors[0] and "0badc0de" in errors[1]  # no such sessions


async def test_rename_sends_the_title_and_the_prompt_frame_shows_it(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        sent = record_ops(monkeypatch, session)
        await command(pilot, "/rename")
        assert sent == []
        assert "Usage: /rename <title>" in str(list(app.conversation.query(Notice))[-1].render())
        await command(pilot, "/rename   Qwen SFT   on tickets ")
        assert [op.title for op in sent if isinstance(op, Rename)] == ["Qwen SFT on tickets"]
        # the engine answers with session_title, which the frame and a notice show
        await wait_for(pilot, lambda: app.session_title == "Qwen SFT on tickets", what="title")
        await pilot.pause()
        assert app.prompt.border_title == "Qwen SFT on tickets"
        assert "Session renamed: “Qwen SFT on tickets”." in str(list(app.conversation.query(Notice))[-1].render())
        notices = len(app.conversation.query(Notice))
        session.emit(SessionTitle(title="Fine-tune Qwen", automatic=True))  # the automatic one: no notice
        await wait_for(pilot, lambda: app.session_title == "Fine-tune Qwen", what="automatic title")
        assert len(app.conversation.query(Notice)) == notices


def test_the_commands_are_listed_and_completed():
    from mlintern_tui.commands import REGISTRY

    assert REGISTRY.get("/resume").usage == "/resume [id]" and REGISTRY.get("/rename").usage == "/rename <title>"


async def test_completion_offers_resume_and_rename():
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        app.prompt.text = "/re"
        await pilot.pause()
        assert [h.name for h in app.prompt.matching_commands()] == ["/resume", "/rename"]
        hints = str(app.query_one("#hints").render())
        assert "/resume [id]" in hints and "/rename <title>" in hints


# --------------------------------------------------------------------------- resume_complete on screen

def transcript(turns: int) -> list[TranscriptItem]:
    items: list[TranscriptItem] = []
    for n in range(1, turns + 1):
        items += [TranscriptItem(kind="user", text=f"prompt {n}", turn=n),
                  TranscriptItem(kind="tool_call", tool="bash", tool_call_id=f"c{n}", arguments={"command": f"echo {n}"},
                                 turn=n),
                  TranscriptItem(kind="tool_output", tool="bash", tool_call_id=f"c{n}", text=f"{n}", turn=n),
                  TranscriptItem(kind="assistant", text=f"**answer {n}**", turn=n)]
    return items


def away_jobs() -> list[AwayJob]:
    return [AwayJob(job_id="6890f1a2b3c4d5e6f7a8b9c0", backend="hf", flavor="a10g-large", status="COMPLETED",
                    cost_usd=1.2345, ended_while_away=True, detail="completed after 1h02m"),
            AwayJob(job_id="local-1a2b3c4d5e", backend="local", flavor="cpu-basic", status="ERROR",
                    cost_usd=0.0, ended_while_away=True, detail="exit code 1"),
            AwayJob(job_id="7001aa22bb33cc44dd55ee66", backend="hf", flavor="a10g-small", status="RUNNING",
                    cost_usd=0.4012),
            AwayJob(job_id="5000aa22bb33cc44dd55ee66", backend="hf", flavor="t4-small", status="COMPLETED",
                    cost_usd=0.1)]  # ended before the app closed: not news


async def test_resume_complete_redraws_the_conversation_and_shows_the_away_card(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await app.conversation.add_user("something from before the resume")
        items = transcript(2) + [TranscriptItem(kind="tool_call", tool="read", tool_call_id="cut",
                                                arguments={"path": "train.py"}, turn=3),
                                 TranscriptItem(kind="tool_output", tool="read", tool_call_id="cut", success=False,
                                                text="interrupted: the app closed before this call finished", turn=3)]
        plan = [PlanItem(id="1", content="Train", status="in_progress")]
        session.emit(ResumeComplete(restored_messages=10, title="Qwen SFT", transcript=items, plan=plan,
                                    jobs=away_jobs(), interrupted=True, away_s=8040, session_cost_usd=2.5))
        await wait_for(pilot, lambda: app.conversation.query(AwayCard), what="away card")
        assert blocks_text(app) == ["user: prompt 1", "card: bash completed 1", "answer: **answer 1**",
                                    "user: prompt 2", "card: bash completed 2", "answer: **answer 2**",
                                    "card: read failed interrupted: the app closed before this call finished",
                                    "notice: info", "away"]
        assert app.plan_view.plan == tuple(plan)
        assert app.prompt.border_title == "Qwen SFT" and app.status_info.session_cost_usd == 2.5
        resumed = str(list(app.conversation.query(Notice))[-1].render())
        assert "Resumed “Qwen SFT”: 10 messages restored, $2.50 spent so far." in resumed
        card = " ".join(str(app.conversation.query_one(AwayCard).render()).split())  # as if unwrapped
        assert "While you were away (2 h 14 min)" in card
        assert "6890f1a2b3c4d…" in card and "completed while away" in card and "$1.23" in card
        assert "completed after 1h02m" in card and "error while away" in card and "$0 (local)" in card
        assert "still running, reattached" in card and "$0.4012 so far" in card
        assert "5000aa22" not in card  # ended before the app closed
        assert CUT_OFF_TEXT in card
        # the restored cards are live: a later event for a restored call updates its card
        assert app.conversation.cards["c2"].output == "2"


async def test_no_away_card_when_nothing_happened(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        session.emit(ResumeComplete(restored_messages=4, transcript=transcript(1), away_s=99_999))
        await wait_for(pilot, lambda: any(isinstance(c, Notice) for c in app.conversation.children), what="resumed")
        assert not app.conversation.query(AwayCard)
        assert blocks_text(app)[-1] == "notice: info"


async def test_a_resumed_session_at_an_unknown_price_never_says_zero_dollars(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        session.emit(ResumeComplete(restored_messages=4, transcript=transcript(1), unknown_costs=3))
        await wait_for(pilot, lambda: any(isinstance(c, Notice) for c in app.conversation.children), what="resumed")
        text = " ".join(str(n.render()) for n in app.conversation.query(Notice))
        assert "cost so far unknown" in text and "$0.00" not in text
        assert app.status_info.session_unknown_calls == 3


async def test_a_thousand_turn_session_shows_only_its_tail(llm_server, monkeypatch, tmp_path):
    """1,000 turns (4,000 items): only the last 150 items are drawn, under one line counting the
    rest as the screen would have drawn them; the block count stays where pruning keeps it."""
    from widgets.conversation import Conversation

    assert Conversation.RESTORE_TAIL == 150  # the numbers below are for this tail
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        items = transcript(1000)
        assert [i.kind for i in items[:4]] == ["user", "tool_call", "tool_output", "assistant"]
        session.emit(ResumeComplete(restored_messages=4000, transcript=items))
        await wait_for(pilot, lambda: len(app.conversation.children) > 10, what="redrawn", timeout=20)
        await pilot.pause()
        children = list(app.conversation.children)
        # 3,850 items left out, of which 962 tool outputs (they would have been part of a card)
        assert str(children[0].render()) == "↑ 2,888 earlier entries not shown, to keep the screen fast (the session keeps them)"
        assert len(children) <= Conversation.MAX_BLOCKS  # the tail (outputs join their cards), the note, the resume line
        texts = blocks_text(app)
        assert texts[-2] == "answer: **answer 1000**" and "user: prompt 964" in texts and "user: prompt 963" not in texts
        assert app.conversation.is_following


async def test_call_ids_repeated_across_turns_each_get_their_card():
    """Some providers number calls per turn ("call_0" every time): every restored call still gets
    its own card with its own output, and a later event for the id updates the newest one."""
    items = []
    for n in (1, 2):
        items += [TranscriptItem(kind="user", text=f"prompt {n}"),
                  TranscriptItem(kind="tool_call", tool="bash", tool_call_id="call_0", arguments={"command": f"echo {n}"}),
                  TranscriptItem(kind="tool_output", tool="bash", tool_call_id="call_0", text=f"out {n}")]
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, ready(), ResumeComplete(restored_messages=6, transcript=items))
        await pilot.pause()
        assert [t for t in blocks_text(app) if t.startswith("card")] == ["card: bash completed out 1",
                                                                          "card: bash completed out 2"]
        app.conversation.set_tool_state("call_0", "failed")
        assert [c.state for c in app.conversation.query(ToolCard)] == ["completed", "failed"]


async def test_a_restored_pending_approval_reopens_its_card(llm_server, monkeypatch, tmp_path):
    """A call stored without a result is drawn as abandoned; the engine's approval_required that
    follows a resume turns the same card back to waiting and opens the approval modal."""
    from agent.protocol import ApprovalItem, ApprovalRequired
    from tests.tui_support import approval_screen

    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        items = [TranscriptItem(kind="user", text="launch it"),
                 TranscriptItem(kind="tool_call", tool="hf_jobs", tool_call_id="job1",
                                arguments={"operation": "run", "hardware_flavor": "a10g-large"})]
        session.emit(ResumeComplete(restored_messages=2, transcript=items))
        await wait_for(pilot, lambda: "job1" in app.conversation.cards, what="restored card")
        assert app.conversation.cards["job1"].state == "abandoned"
        session.emit(ApprovalRequired(items=[ApprovalItem(tool_call_id="job1", tool="hf_jobs",
                                                          arguments={"operation": "run", "hardware_flavor": "a10g-large"},
                                                          reason="GPU job")]))
        await wait_for(pilot, lambda: approval_screen(app) is not None, what="approval card")
        assert app.conversation.cards["job1"].state == "waiting"
        assert len(app.conversation.query(ToolCard)) == 1


# --------------------------------------------------------------------------- snapshots

@pytest.fixture
def snapshot_store(tmp_path):
    store = SessionStore.open(tmp_path / "snap.db")
    three_sessions(store)
    yield store
    store.close()


def test_snapshot_resume_picker_with_three_sessions(snap_compare, snapshot_store):
    """/resume over three stored sessions, newest first, the first highlighted: "Qwen SFT on
    support tickets" (cut off, in warning colour; Qwen coder model · ~/sft-project · $1.83 ·
    12 turns · 3 min ago), an untitled one labelled by its first prompt's first line (waiting
    approval; /data/evals · $0.07 · 5 h ago) and "Dataset cleanup" (~/datasets/tickets · $0 ·
    1 turn · 2 d ago); the search box on top with its placeholder, "3 sessions" above the list
    and the key line at the bottom."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        screen = ResumePicker(lambda: (snapshot_store, None), clock=lambda: NOW, home=HOME)
        await app.push_screen(screen)
        screen.query_one(Input).cursor_blink = False
        await wait_for(pilot, lambda: screen.loaded_query == "", what="rows")
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_while_you_were_away(snap_compare):
    """After a resume: the restored tail of the conversation (a prompt, a completed bash card, the
    Markdown answer, the failed interrupted read), the line "Resumed “Qwen SFT on support
    tickets”: 14 messages restored, $2.50 spent so far.", then the accent-bordered card "While
    you were away (2 h 14 min)": the a10g-large job ✓ completed while away · $1.23 · completed
    after 1h02m, the local job ✗ error while away · $0 (local) · exit code 1, the a10g-small job
    ● still running, reattached · $0.4012 so far, and the warning line about the cut-off turn.
    The plan pane shows the restored plan, the prompt's frame the title, the status bar session $2.50."""

    items = [TranscriptItem(kind="user", text="Fine-tune Qwen2.5-0.5B on my support tickets"),
             TranscriptItem(kind="tool_call", tool="bash", tool_call_id="c1",
                            arguments={"command": "python prepare.py --out data/train.jsonl"}),
             TranscriptItem(kind="tool_output", tool="bash", tool_call_id="c1", text="wrote 12,400 rows"),
             TranscriptItem(kind="assistant", text="Data is ready: **12,400** rows. Launching the run on an "
                                                   "`a10g-large` next."),
             TranscriptItem(kind="tool_call", tool="read", tool_call_id="c2", arguments={"path": "train.py"}),
             TranscriptItem(kind="tool_output", tool="read", tool_call_id="c2", success=False,
                            text="interrupted: the app closed before this call finished")]
    plan = [PlanItem(id="1", content="Prepare the data", status="completed"),
            PlanItem(id="2", content="Train on a10g-large", status="in_progress"),
            PlanItem(id="3", content="Evaluate and push to the Hub", status="pending")]

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("this prompt belongs to the session that was open before")
        await feed(app, ResumeComplete(restored_messages=14, title="Qwen SFT on support tickets", transcript=items,
                                       plan=plan, jobs=away_jobs(), interrupted=True, away_s=8040,
                                       session_cost_usd=2.5))
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)
