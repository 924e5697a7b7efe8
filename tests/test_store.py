"""The session store on its own (agent/store.py): schema and migrations, what a checkpoint
writes, lookups, and failures that must not lose data."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

import pytest

import agent.store as store_module
from agent.store import MIGRATIONS, SCHEMA_VERSION, Checkpoint, SessionNotFound, SessionStore, StoreError, migrate


@dataclass
class E:
    """An entry as the history holds it (the store reads these four attributes)."""

    message: dict
    kind: str = "user"
    turn: int = 1
    cost_usd: float | None = None


def cp(session_id: str, entries, **kw) -> Checkpoint:
    base = dict(session_id=session_id, title="", title_auto=True, model="openai/m", cwd="/work", created=100.0,
                first_prompt="", turns=1, spend_model=0.0, spend_compute=0.0, spend_title=0.0, status="idle",
                headless=False, state={}, entries=entries)
    base.update(kw)
    return Checkpoint(**base)


@pytest.fixture
def store(tmp_path):
    s = SessionStore.open(tmp_path / "sessions.db")
    yield s
    s.close()


def test_a_new_database_gets_every_migration_and_its_version(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    assert migrate(conn) == 0
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sessions", "messages", "events", "jobs"} <= tables
    assert migrate(conn) == SCHEMA_VERSION  # idempotent: nothing to do the second time


def test_each_migration_step_runs_from_the_first_version_on(tmp_path):
    """A database left at any earlier version (version 0: empty; then after each step) is
    brought to the newest, and a session written at that version is still read."""
    for start in range(SCHEMA_VERSION):
        path = tmp_path / f"v{start}.db"
        conn = sqlite3.connect(path, isolation_level=None)
        for step in range(start):
            for statement in store_module._statements(MIGRATIONS[step]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step + 1}")
        if start >= 1:  # the first schema has the sessions table: a session from that time
            conn.execute("INSERT INTO sessions (id, title, created, updated, turns) VALUES ('old', 'kept', 1, 2, 3)")
        conn.close()
        s = SessionStore.open(path)
        if start >= 1:
            assert [x.title for x in s.list_sessions()] == ["kept"]
        s.close()


def test_a_database_from_a_newer_app_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "sessions.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer mlintern"):
        SessionStore.open(path)
    assert path.read_bytes() == before


def test_a_checkpoint_writes_only_what_changed(store):
    conn = store._write_conn
    a, b = E({"role": "user", "content": "hi"}), E({"role": "assistant", "content": "hello"}, "assistant")
    store.checkpoint(cp("s1", [a, b]))
    store.flush()
    changes = conn.total_changes
    c = E({"role": "user", "content": "more"}, turn=2)
    store.checkpoint(cp("s1", [a, b, c], turns=2))
    store.flush()
    # the session row and one new message; the two old messages untouched
    assert conn.total_changes - changes == 2
    # a message replaced in the middle (an edit, a repair): rewritten from there on
    b2 = E({"role": "assistant", "content": "hello (edited)"}, "assistant")
    store.checkpoint(cp("s1", [a, b2, c]))
    store.flush()
    assert [m.message["content"] for m in store.load("s1").messages] == ["hi", "hello (edited)", "more"]
    # undo: fewer entries than stored
    store.checkpoint(cp("s1", [a]))
    store.flush()
    assert [m.message["content"] for m in store.load("s1").messages] == ["hi"]


def test_adopt_makes_a_loaded_session_append_only(store):
    store.checkpoint(cp("s1", [E({"role": "user", "content": "one"})]))
    store.flush()
    loaded = [E(m.message, m.kind, m.turn, m.cost) for m in store.load("s1").messages]
    store.adopt("s1", loaded)
    conn = store._write_conn
    changes = conn.total_changes
    store.checkpoint(cp("s1", loaded + [E({"role": "user", "content": "two"})]))
    store.flush()
    assert conn.total_changes - changes == 2  # the row and the new message, not a rewrite


def test_lookups_by_prefix_search_and_directory(store):
    now = time.time()
    for sid, title, cwd, when in (("aaa111", "bert imdb", "/a", now - 30), ("aaa222", "gsm8k sft", "/b", now - 20),
                                  ("bbb333", "", "/a", now - 10)):
        store.checkpoint(cp(sid, [], title=title, cwd=cwd, updated=when, first_prompt=f"prompt of {sid}"))
    store.checkpoint(cp("empty0", [], turns=0))  # nothing happened in it: not listed
    store.flush()
    assert [s.id for s in store.list_sessions()] == ["bbb333", "aaa222", "aaa111"]
    assert store.latest("/a").id == "bbb333" and store.latest("/nowhere") is None
    assert [s.id for s in store.list_sessions(search="GSM")] == ["aaa222"]
    assert [s.id for s in store.list_sessions(search="prompt of aaa1")] == ["aaa111"]
    assert store.find("bbb").id == "bbb333"
    assert store.list_sessions(cwd="/a")[0].label == "prompt of bbb333"
    with pytest.raises(SessionNotFound, match="matches 2"):
        store.find("aaa")
    with pytest.raises(SessionNotFound, match="no stored session"):
        store.find("zzz")


def test_a_rename_outlives_automatic_titles(store):
    store.checkpoint(cp("s1", [], title="first prompt title"))
    store.rename("s1", "my run")
    store.checkpoint(cp("s1", [], title="first prompt title"))  # a later automatic one does not undo it
    store.flush()
    assert store.load("s1").summary.title == "my run" and not store.load("s1").title_auto


def test_a_failed_write_loses_nothing_once_the_disk_has_room(store):
    """A batch that fails is rolled back whole; the next checkpoint carries everything
    since the last one that committed."""
    said = []
    store.on_error = said.append
    a = E({"role": "user", "content": "a"})
    store.checkpoint(cp("s1", [a]))
    store.flush()
    real = store._write_checkpoint

    def full(conn, checkpoint, before):
        real(conn, checkpoint, before)  # half written, then the disk fills
        raise sqlite3.OperationalError("database or disk is full")

    store._write_checkpoint = full
    b, c = E({"role": "assistant", "content": "b"}, "assistant"), E({"role": "user", "content": "c"})
    results = []
    store.checkpoint(cp("s1", [a, b]), results.append)
    store.checkpoint(cp("s1", [a, b, c]), results.append)
    store.flush()
    assert results == [False, False] and len(said) == 1 and "disk is full" in said[0]
    assert [m.message["content"] for m in store.load("s1").messages] == ["a"]  # rolled back, not half
    store._write_checkpoint = real
    store.checkpoint(cp("s1", [a, b, c]), results.append)
    store.flush()
    assert results[-1] is True and "writing again" in said[-1]
    assert [m.message["content"] for m in store.load("s1").messages] == ["a", "b", "c"]


def test_events_are_kept_except_the_stream_and_job_lines(store):
    from agent.protocol import AssistantChunk, AssistantMessage, JobLog

    for seq, event in enumerate([AssistantChunk(content="he"), AssistantMessage(content="hello"),
                                 JobLog(job_id="j", lines=["x"])], start=1):
        event.session_id, event.seq = "s1", seq
        store.record(event)
    store.flush()
    assert [(seq, kind) for seq, kind, _ in store.events("s1")] == [(2, "assistant_message")]


def test_what_persistence_skips_is_what_the_store_skips():
    from agent.persistence import _NOT_STORED, CHECKPOINT_EVENTS

    assert _NOT_STORED == store_module.SKIPPED_EVENTS and not (_NOT_STORED & CHECKPOINT_EVENTS)


def test_a_summary_counts_what_has_no_known_price(store):
    store.checkpoint(cp("s1", [], spend_model=0.25, state={"unknown_calls": 2, "unknown_jobs": 1}))
    store.flush()
    [row] = store.list_sessions()
    assert row.spend_usd == 0.25 and row.unknown_costs == 3
