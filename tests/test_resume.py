"""Sessions that survive (issue 12): a real Session saves itself to the store as it goes, and
another Session resumes it: conversation, plan, mode, spend, a pending approval, and jobs
reattached with their log caught up. The model is the scripted loopback server; jobs run on
the Hub emulator."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from agent.config import Config, LLMSettings
from agent.protocol import ExecApproval, Rename, Resume, Shutdown, ToolDecision, UserInput
from agent.store import SessionStore, db_path
from tests.engine_support import MODEL, collect_until, make_session, of_type
from tests.fakes import Call, Text, ToolCalls

FREE = {MODEL: {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}


def config(**kw) -> Config:
    return Config(llm=LLMSettings(max_attempts=1), model_prices=FREE, **kw)


async def started(session):
    sub = session.subscribe("test")
    session.start()
    await collect_until(sub, stop={"ready"})
    for _ in range(100):  # the store opens right after "ready"
        if session.store is not None:
            break
        await asyncio.sleep(0.02)
    assert session.store is not None, session.store_error
    return sub


def killed(session) -> None:
    """As a ``kill -9`` leaves the store: what was written stays, nothing more is (not even
    the last checkpoint a clean exit makes). The real SIGKILL is in test_resume_kill.py."""
    store = session.persist.store
    store.flush()
    store._closed = True
    session._runner.cancel()


async def stop(session) -> None:
    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 15)


async def test_a_finished_turn_is_in_the_store_before_turn_complete_is_seen(llm_server, monkeypatch, tmp_path,
                                                                            mlintern_home):
    session = make_session(llm_server, monkeypatch, tmp_path, config=config())
    llm_server.script(Text("Hello from the model."))
    sub = await started(session)
    session.submit(UserInput(text="Fine-tune a small BERT on imdb\nwith care"))
    await collect_until(sub, stop={"turn_complete"})
    # read by another connection at the moment the front end sees turn_complete: already there
    reader = SessionStore(db_path(mlintern_home))
    [row] = reader.list_sessions()
    assert row.id == session.id and row.turns == 1 and row.status == "idle"
    assert row.title == "Fine-tune a small BERT on imdb" and row.first_prompt.startswith("Fine-tune")
    assert row.spend_usd > 0 and row.unknown_costs == 0  # the model call's price, known
    stored = reader.load(session.id)
    assert [m.message["role"] for m in stored.messages] == ["user", "assistant"]
    assert stored.messages[1].message["content"] == "Hello from the model."
    reader.close()
    await stop(session)


async def test_resume_restores_conversation_plan_mode_and_spend(llm_server, monkeypatch, tmp_path):
    first = make_session(llm_server, monkeypatch, tmp_path, config=config())
    plan = {"todos": [{"id": "1", "content": "load imdb", "status": "completed"},
                      {"id": "2", "content": "train", "status": "completed"}]}
    llm_server.script(ToolCalls([Call("p1", "plan_tool", json.dumps(plan))]), Text("Planned."))
    sub = await started(first)
    first.submit(UserInput(text="plan the run"))
    await collect_until(sub, stop={"turn_complete"})
    first.policy.set_mode("ask")
    first._settings_changed()
    first.submit(Rename(title="imdb run"))
    await collect_until(sub, stop={"session_title"})
    old_id, old_cost = first.id, first.engine.session_cost
    await stop(first)

    second = make_session(llm_server, monkeypatch, tmp_path, config=config())
    sub = await started(second)
    second.submit(Resume(target_session_id=old_id[:8]))
    events = await collect_until(sub, stop={"resume_complete", "error"})
    done = events[-1]
    assert done.type == "resume_complete", done
    assert second.id == old_id and done.title == "imdb run"
    kinds = [item.kind for item in done.transcript]
    assert kinds == ["user", "tool_call", "tool_output", "assistant"]
    assert [p.content for p in done.plan] == ["load imdb", "train"]
    assert second.policy.mode == "ask"
    assert second.engine.session_cost == pytest.approx(old_cost) and old_cost > 0
    assert second.engine.turn == 1
    # the conversation goes on where it was: the model sees the old messages
    llm_server.script(Text("Continuing."))
    second.submit(UserInput(text="go on"))
    await collect_until(sub, stop={"turn_complete"})
    sent = llm_server.requests[-1]["messages"]
    assert [m["role"] for m in sent][1:] == ["user", "assistant", "tool", "assistant", "user"]
    await stop(second)
    reader = SessionStore(db_path(second.data_dir))
    stored = reader.load(old_id)
    assert stored.summary.turns == 2 and len(stored.messages) == 6  # appended, not duplicated
    events_seq = [seq for seq, _, _ in reader.events(old_id)]
    assert events_seq == sorted(set(events_seq))  # numbering went on after the resume
    reader.close()


async def test_a_pending_approval_comes_back_and_answering_it_runs_the_call(llm_server, monkeypatch, tmp_path):
    first = make_session(llm_server, monkeypatch, tmp_path, config=config(approval_mode="ask"))
    llm_server.script(ToolCalls([Call("b1", "bash", json.dumps({"command": "echo resumed-ok"}))]))
    sub = await started(first)
    first.submit(UserInput(text="run it"))
    ask = (await collect_until(sub, stop={"approval_required"}))[-1]
    assert ask.items[0].tool_call_id == "b1"
    old_id = first.id
    # the app goes away without answering (the session is not shut down cleanly)
    killed(first)
    await asyncio.gather(first._runner, return_exceptions=True)

    second = make_session(llm_server, monkeypatch, tmp_path, config=config())
    sub = await started(second)
    second.submit(Resume(target_session_id=old_id))
    events = await collect_until(sub, stop={"approval_required", "error"}, timeout=30)
    assert of_type(events, "resume_complete")
    again = events[-1]
    assert again.type == "approval_required" and again.items[0].tool_call_id == "b1"
    llm_server.script(Text("done"))
    second.submit(ExecApproval(decisions=[ToolDecision(tool_call_id="b1", approved=True)]))
    events = await collect_until(sub, stop={"turn_complete", "error"})
    [output] = of_type(events, "tool_output")
    assert "resumed-ok" in output.output
    await stop(second)


async def test_a_turn_cut_off_mid_way_comes_back_interrupted_with_its_calls_repaired(llm_server, monkeypatch,
                                                                                     tmp_path):
    first = make_session(llm_server, monkeypatch, tmp_path, config=config(approval_mode="yolo"))
    llm_server.script(ToolCalls([Call("b1", "bash", json.dumps({"command": "echo one"}))]),
                      ToolCalls([Call("b2", "bash", json.dumps({"command": "sleep 30"}))]))
    sub = await started(first)
    first.submit(UserInput(text="two commands"))
    events = await collect_until(sub, stop={"tool_output"})  # b1 finished
    events += await collect_until(sub, stop={"tool_call"})  # b2 runs
    assert events[-1].tool_call_id == "b2"
    old_id = first.id
    killed(first)
    await asyncio.gather(first._runner, return_exceptions=True)

    second = make_session(llm_server, monkeypatch, tmp_path, config=config())
    sub = await started(second)
    second.submit(Resume(target_session_id=old_id))
    done = (await collect_until(sub, stop={"resume_complete", "error"}))[-1]
    assert done.type == "resume_complete" and done.interrupted
    outputs = {i.tool_call_id: i for i in done.transcript if i.kind == "tool_output"}
    assert "one" in outputs["b1"].text and outputs["b1"].success
    assert not outputs["b2"].success  # repaired: a result saying it did not complete
    messages = second.engine.history.messages()
    assert [m.get("tool_call_id") for m in messages if m["role"] == "tool"] == ["b1", "b2"]
    await stop(second)


async def test_resume_of_an_unknown_id_is_a_clear_error(llm_server, monkeypatch, tmp_path):
    session = make_session(llm_server, monkeypatch, tmp_path, config=config())
    sub = await started(session)
    session.submit(Resume(target_session_id="nope"))
    error = (await collect_until(sub, stop={"error", "resume_complete"}))[-1]
    assert error.type == "error" and error.kind == "not_found" and "nope" in error.message
    await stop(session)


async def test_a_failing_store_is_a_notice_and_the_session_goes_on(llm_server, monkeypatch, tmp_path):
    """The store's writes fail (as on a full disk): one notice, turns still complete."""
    session = make_session(llm_server, monkeypatch, tmp_path, config=config())
    sub = await started(session)
    store = session.store
    real = store._write_checkpoint

    def full_disk(conn, cp, before):
        raise __import__("sqlite3").OperationalError("database or disk is full")

    def full_disk_event(conn, event):
        raise __import__("sqlite3").OperationalError("database or disk is full")

    store._write_checkpoint, store._write_event = full_disk, full_disk_event
    llm_server.script(Text("one"), Text("two"))
    session.submit(UserInput(text="first"))
    events = await collect_until(sub, stop={"turn_complete"})
    session.submit(UserInput(text="second"))
    events += await collect_until(sub, stop={"turn_complete"})
    notices = [e.log for e in of_type(events, "tool_log") if "disk is full" in e.log]
    assert len(notices) == 1 and "goes on in memory" in notices[0]
    del store._write_event
    store._write_checkpoint = real  # room again: the next checkpoint carries everything
    llm_server.script(Text("three"))
    session.submit(UserInput(text="third"))
    events = await collect_until(sub, stop={"turn_complete"})
    while not any("writing again" in e.log for e in of_type(events, "tool_log")):
        events += await collect_until(sub, stop={"tool_log"})  # said once the writer saw it work
    stored = store.load(session.id)
    assert [m.message["content"] for m in stored.messages] == ["first", "one", "second", "two", "third", "three"]
    await stop(session)


async def test_a_locked_database_is_a_notice_not_a_crash(llm_server, monkeypatch, tmp_path, mlintern_home):
    import sqlite3

    import agent.store as store_module

    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 100)
    session = make_session(llm_server, monkeypatch, tmp_path, config=config())
    sub = await started(session)
    blocker = sqlite3.connect(db_path(mlintern_home), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
    try:
        llm_server.script(Text("still here"))
        session.submit(UserInput(text="hello"))
        events = await collect_until(sub, stop={"turn_complete"}, timeout=30)
        assert of_type(events, "turn_complete")[0].final_response == "still here"
        while not any("locked" in e.log for e in of_type(events, "tool_log")):
            events += await collect_until(sub, stop={"tool_log"})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await stop(session)


async def test_new_keeps_the_old_session_in_the_store(llm_server, monkeypatch, tmp_path, mlintern_home):
    from agent.protocol import New

    session = make_session(llm_server, monkeypatch, tmp_path, config=config())
    sub = await started(session)
    llm_server.script(Text("a"), Text("b"))
    session.submit(UserInput(text="first conversation"))
    await collect_until(sub, stop={"turn_complete"})
    old = session.id
    session.submit(New())
    await collect_until(sub, stop={"new_complete"})
    session.submit(UserInput(text="second conversation"))
    await collect_until(sub, stop={"turn_complete"})
    await stop(session)
    reader = SessionStore(db_path(mlintern_home))
    titles = {s.id: s.title for s in reader.list_sessions()}
    assert titles == {old: "first conversation", session.id: "second conversation"}
    assert [s.title for s in reader.list_sessions(search="SECOND")] == ["second conversation"]
    reader.close()


async def test_a_hub_job_is_reattached_and_its_log_caught_up_without_a_line_lost_or_repeated(
        llm_server, monkeypatch, tmp_path, hub):
    """The app goes away while a job runs; the job goes on printing and ends. Resumed: the
    job's log file holds every line once, in order; the card's news says it ended while
    away and what it cost; the agent takes the news in a turn of its own."""
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    cfg = config(approval_mode="yolo", yolo_cap_usd=50.0)
    first = make_session(llm_server, monkeypatch, tmp_path, config=cfg)
    lines = [f"step {i} loss {1.0 / (i + 1):.3f}" for i in range(12)]
    hub.script_job(lines=lines, line_delay=0.12)  # 9 lines (~1 s) between the 3rd line and the job's end
    run = {"operation": "run", "script": "print(1)", "hardware_flavor": "t4-small", "timeout": "30m"}
    llm_server.script(ToolCalls([Call("j1", "hf_jobs", json.dumps(run))]), Text("Launched."))
    sub = await started(first)
    first.submit(UserInput(text="train"))
    await collect_until(sub, stop={"turn_complete"})
    [job_id] = hub.job_ids()
    watched = first.jobs.monitor.jobs[job_id]
    while watched.lines_seen < 3:  # some lines are in the log file when the app goes away
        await asyncio.sleep(0.05)
    old_id = first.id
    killed(first)
    await asyncio.gather(first._runner, return_exceptions=True)
    await first.jobs.monitor.close()
    written = watched.lines_seen
    assert 3 <= written < len(lines)
    with open(watched.log_path, "a") as f:
        f.write("step 99 half a line wri")  # the kill landed mid-write
    while hub.job(job_id)["status"]["stage"] != "COMPLETED":  # it ends while nobody watches
        await asyncio.sleep(0.1)

    second = make_session(llm_server, monkeypatch, tmp_path, config=cfg)
    sub = await started(second)

    def read_the_news(body: dict):
        note = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        assert note.startswith("[JOB UPDATE]") and "COMPLETED" in note and lines[-1] in note, note
        return Text("The run finished.")

    llm_server.script(read_the_news)
    second.submit(Resume(target_session_id=old_id))
    done = (await collect_until(sub, stop={"resume_complete", "error"}))[-1]
    assert done.type == "resume_complete"
    [away] = done.jobs
    assert away.job_id == job_id and away.ended_while_away and away.status == "COMPLETED"
    assert away.cost_usd is not None and away.cost_usd > 0
    events = await collect_until(sub, stop={"turn_complete", "error"}, timeout=30)  # the agent wakes
    assert events[-1].type == "turn_complete" and events[-1].final_response == "The run finished."
    [woke] = [e for e in events if e.type == "processing" and e.woke_for]
    assert woke.woke_for == [job_id]
    caught_up = [line for e in events if e.type == "job_log" for line in e.lines]
    assert caught_up == lines[written:]  # only what the app had not seen
    assert watched.log_path.read_text().splitlines() == lines  # every line once, in order
    assert second.jobs.monitor.jobs[job_id].cost_usd == pytest.approx(away.cost_usd, rel=0.5)
    await stop(second)


async def test_a_local_job_running_when_the_app_died_is_reported_lost(llm_server, monkeypatch, tmp_path):
    cfg = config(approval_mode="yolo", jobs_backend="local", wake_on_job_end=False)
    first = make_session(llm_server, monkeypatch, tmp_path, config=cfg)
    # the job prints one line, so `run` would wait the whole default 3 s for five first lines
    first.jobs.first_lines_wait_s = 0.3
    run = {"operation": "run", "script": "import time\nprint('started', flush=True)\ntime.sleep(60)", "timeout": "5m"}
    llm_server.script(ToolCalls([Call("j1", "hf_jobs", json.dumps(run))]), Text("Launched."))
    sub = await started(first)
    first.submit(UserInput(text="train"))
    await collect_until(sub, stop={"turn_complete"}, timeout=30)
    [job_id] = list(first.jobs.monitor.jobs)
    old_id = first.id
    killed(first)
    await asyncio.gather(first._runner, return_exceptions=True)
    await first.jobs.backend.shutdown()

    second = make_session(llm_server, monkeypatch, tmp_path, config=cfg)
    sub = await started(second)
    second.submit(Resume(target_session_id=old_id))
    done = (await collect_until(sub, stop={"resume_complete", "error"}))[-1]
    [away] = done.jobs
    assert away.job_id == job_id and away.ended_while_away and away.status == "ERROR"
    assert "closed" in away.detail and away.cost_usd == 0.0
    assert second.jobs.monitor.running() == []
    await stop(second)


async def test_the_model_names_the_session_while_its_first_answer_streams(llm_server, monkeypatch, tmp_path, mlintern_home):
    monkeypatch.setenv("MLINTERN_MODEL_TITLES", "1")
    session = make_session(llm_server, monkeypatch, tmp_path, config=config())
    arrived: dict[str, float] = {}

    def answer(body):  # ten pieces, 0.15 s apart: the first one 0.15 s after the request
        arrived["main"] = time.monotonic()
        return Text("Sure, starting the fine-tune of BERT on IMDB now.", chunk_chars=5, delay=0.15)

    def title(body):
        arrived["title"] = time.monotonic()
        return Text('"Fine-tune BERT on IMDB."')

    llm_server.script(answer, Text("Second answer."))
    llm_server.script_titles(title)
    sub = await started(session)
    session.submit(UserInput(text="please fine tune bert on the imdb dataset and report accuracy"))
    events = await collect_until(sub, stop={"turn_complete"})
    titles = of_type(events, "session_title")
    assert [e.title for e in titles] == [
        "please fine tune bert on the imdb dataset and report…",  # the prompt's line at once, cut at a word
        "Fine-tune BERT on IMDB"]  # then the model's, while the answer still streamed
    assert titles[-1].automatic
    # asked once the answer streamed, never before: its request cannot delay the first token
    assert arrived["title"] - arrived["main"] >= 0.15
    [call] = [e for e in events if e.type == "llm_call" and e.kind == "title"]
    assert call.cost_usd and call.cost_usd > 0
    session.submit(UserInput(text="and now?"))
    await collect_until(sub, stop={"turn_complete"})
    assert len(llm_server.title_requests) == 1  # once per session
    await stop(session)
    reader = SessionStore(db_path(mlintern_home))
    [row] = reader.list_sessions()
    stored = reader.load(row.id)
    assert row.title == "Fine-tune BERT on IMDB"
    assert stored.state["title_cost"] == pytest.approx(call.cost_usd)
    assert row.spend_usd == pytest.approx(session.engine.session_cost)  # model + title, counted once
    reader.close()


async def test_a_rename_is_never_replaced_by_the_model_title(llm_server, monkeypatch, tmp_path):
    monkeypatch.setenv("MLINTERN_MODEL_TITLES", "1")
    session = make_session(llm_server, monkeypatch, tmp_path, config=config())
    llm_server.script(Text("ok"))

    def slow_title(body):
        import time as _t
        _t.sleep(0.5)
        return Text("Model Title")

    llm_server.script_titles(slow_title)
    sub = await started(session)
    session.submit(UserInput(text="first prompt"))
    await collect_until(sub, stop={"turn_complete"})
    session.submit(Rename(title="mine"))
    await collect_until(sub, stop={"session_title"})
    # the model's title arrives after the rename: wait until the title call has ended (its answer
    # taken or dropped), however long that takes, instead of a fixed sleep past its 0.5 s
    title_task = session.persist._title_task
    assert title_task is not None
    await asyncio.wait_for(asyncio.shield(title_task), 10)
    assert len(llm_server.title_requests) == 1  # the model was asked, and answered "Model Title"
    assert session.persist.title == "mine"
    await stop(session)
