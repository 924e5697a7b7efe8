"""The session store: every session in one SQLite file under the data dir (``sessions.db``).

What a session needs to come back after the app is closed, killed or its terminal lost: its
metadata (title, model, directory, spend), the conversation as the model sees it, the events
the front ends saw, the plan, its settings, the approval it waits for, and its jobs.

One writer: a thread of its own that owns the write connection, so no SQL ever runs on the
event loop. The session hands it events (``record``) and, at every step of a turn,
a ``Checkpoint`` of its state; a finished turn's checkpoint is committed before its
``turn_complete`` reaches any front end (agent/session.py holds the event until then), so a
``kill -9`` never loses a finished turn. WAL journal: readers (the resume picker) never wait
for the writer, nor it for them.

A write that fails (a full disk, a database locked by something else, a read-only home) is
reported once through ``on_error`` and the session goes on in memory; the next checkpoint
carries the whole state again, so nothing is lost once the disk has room.

Schema: versioned with ``PRAGMA user_version``; ``MIGRATIONS[n]`` takes a database from
version n to n+1, run in one transaction when the store opens. A database written by a newer
version of this app is refused (read nothing, write nothing), never altered.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DB_NAME = "sessions.db"
BUSY_TIMEOUT_MS = 2000  # a database locked by another process: wait this long, then say so

#: events not kept: the stream of chunks (assistant_message holds the text), job log lines (the
#: job's log file holds them), context gauges and tool progress lines (frequent, and the
#: result holds what matters)
SKIPPED_EVENTS = frozenset({"assistant_chunk", "job_log", "context_usage", "processing", "model_list", "mcp_status"})

_V1 = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    title_auto INTEGER NOT NULL DEFAULT 1,
    model TEXT NOT NULL DEFAULT '',
    cwd TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    first_prompt TEXT NOT NULL DEFAULT '',
    turns INTEGER NOT NULL DEFAULT 0,
    spend_model REAL NOT NULL DEFAULT 0,
    spend_compute REAL NOT NULL DEFAULT 0,
    spend_title REAL NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'idle',
    headless INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX sessions_by_cwd ON sessions (cwd, updated);
CREATE INDEX sessions_by_time ON sessions (updated);
CREATE TABLE messages (
    session_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    kind TEXT NOT NULL,
    turn INTEGER NOT NULL DEFAULT 0,
    cost REAL,
    body TEXT NOT NULL,
    PRIMARY KEY (session_id, idx)
) WITHOUT ROWID;
CREATE TABLE events (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    turn INTEGER NOT NULL DEFAULT 0,
    type TEXT NOT NULL,
    ts REAL NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
CREATE TABLE jobs (
    session_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    backend TEXT NOT NULL,
    flavor TEXT NOT NULL DEFAULT '',
    stage TEXT NOT NULL DEFAULT '',
    call_id TEXT NOT NULL DEFAULT '',
    turn INTEGER NOT NULL DEFAULT 0,
    log_path TEXT NOT NULL DEFAULT '',
    log_offset INTEGER NOT NULL DEFAULT 0,
    cost REAL,
    info TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (session_id, job_id)
) WITHOUT ROWID;
"""

#: MIGRATIONS[n]: the SQL that takes a database at user_version n to n + 1
MIGRATIONS: tuple[str, ...] = (_V1,)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The store cannot be used (a newer schema, an unreadable file); said to the user once."""


class SessionNotFound(StoreError):
    pass


@dataclass(frozen=True)
class SessionSummary:
    """One row of the resume picker."""

    id: str
    title: str
    model: str
    cwd: str
    created: float
    updated: float
    first_prompt: str
    turns: int
    spend_usd: float  # model calls + compute + titles
    status: str  # idle | running (cut off if nothing runs it) | waiting (an approval) | interrupted
    headless: bool = False
    #: model calls and jobs whose price is unknown: ``spend_usd`` is then only what is known
    unknown_costs: int = 0

    @property
    def label(self) -> str:
        """The title, else the first line of the first prompt."""
        if self.title:
            return self.title
        first = self.first_prompt.strip().splitlines()
        return first[0][:80] if first else "(empty)"


@dataclass
class StoredMessage:
    kind: str
    turn: int
    cost: float | None
    message: dict[str, Any]


@dataclass
class StoredJob:
    job_id: str
    backend: str
    flavor: str
    stage: str
    call_id: str
    turn: int
    log_path: str
    log_offset: int
    cost: float | None
    info: dict[str, Any]


@dataclass
class StoredSession:
    summary: SessionSummary
    state: dict[str, Any]
    messages: list[StoredMessage]
    jobs: list[StoredJob]
    title_auto: bool = True
    last_seq: int = 0  # the newest stored event's number: a resumed session numbers on from it


@dataclass
class Checkpoint:
    """A session's state at one moment, taken on the event loop (cheap: references and a few
    numbers) and written by the store's thread. ``entries``: the conversation as a list of
    the history's entries (objects with ``message``, ``kind``, ``turn``, ``cost_usd``); the
    writer compares them by identity with the ones it last committed for this session and
    rewrites only from the first that differs, so a turn costs its own messages, not the
    whole conversation again. Entries are never changed in place once appended (a changed
    message is a new entry), which is what makes identity enough."""

    session_id: str
    title: str
    title_auto: bool
    model: str
    cwd: str
    created: float
    first_prompt: str
    turns: int
    spend_model: float
    spend_compute: float
    spend_title: float
    status: str
    headless: bool
    state: dict[str, Any]
    entries: Sequence[Any]
    jobs: Sequence[dict[str, Any]] = ()
    updated: float = field(default_factory=time.time)


def db_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME


def _connect(path: Path, *, write: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if write:
        _check_version(conn)  # before anything is changed, even the journal mode
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a commit survives a killed process
    return conn


def _check_version(conn: sqlite3.Connection) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"the session store was written by a newer mlintern (schema {version}; this one knows "
                         f"{SCHEMA_VERSION}); it is left as it is and this session is not saved")
    return version


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION; returns the version it had."""
    version = _check_version(conn)
    for target in range(version, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[target]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version


def _statements(script: str) -> Iterable[str]:
    """A migration script as single statements (executescript would commit on its own)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


_SUMMARY_COLUMNS = ("id, title, model, cwd, created, updated, first_prompt, turns, "
                    "spend_model + spend_compute + spend_title, status, headless, "
                    "coalesce(json_extract(state, '$.unknown_calls'), 0) + coalesce(json_extract(state, '$.unknown_jobs'), 0)")


def _summary(row: Sequence[Any]) -> SessionSummary:
    return SessionSummary(id=row[0], title=row[1], model=row[2], cwd=row[3], created=row[4], updated=row[5],
                          first_prompt=row[6], turns=row[7], spend_usd=round(row[8] or 0.0, 6), status=row[9],
                          headless=bool(row[10]), unknown_costs=int(row[11] or 0))


class SessionStore:
    """Open with ``SessionStore.open(path)`` (blocking: in a thread); the read methods are
    blocking too and may run in any thread; ``record``/``checkpoint`` only enqueue."""

    def __init__(self, path: Path, on_error: Callable[[str], None] | None = None):
        self.path = path
        self.on_error = on_error or (lambda message: log.warning("session store: %s", message))
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._read_local = threading.local()
        self._failing: str | None = None  # the error being reported (said once until writes work again)
        self._closed = False
        #: writer thread only: per session, the entries its last committed checkpoint held
        self._committed: dict[str, list[Any]] = {}

    @classmethod
    def open(cls, path: Path, on_error: Callable[[str], None] | None = None) -> SessionStore:
        store = cls(path, on_error)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = None
        try:
            conn = _connect(path, write=True)
            migrate(conn)
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        store._write_conn = conn
        return store

    # ------------------------------------------------------------------ reading (any thread)

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._read_local, "conn", None)
        if conn is None:
            conn = _connect(self.path, write=False)
            self._read_local.conn = conn
        return conn

    def list_sessions(self, cwd: str | None = None, search: str | None = None, limit: int = 200) -> list[SessionSummary]:
        """Newest first; ``cwd`` keeps one directory's sessions; ``search`` matches the title,
        the first prompt, the model or the directory (case-insensitive)."""
        where, args = ["turns > 0 OR title != ''"], []
        if cwd is not None:
            where.append("cwd = ?")
            args.append(cwd)
        if search:
            like = f"%{search.lower()}%"
            where.append("(lower(title) LIKE ? OR lower(first_prompt) LIKE ? OR lower(model) LIKE ? OR lower(cwd) LIKE ?)")
            args += [like] * 4
        sql = (f"SELECT {_SUMMARY_COLUMNS} FROM sessions WHERE " + " AND ".join(f"({w})" for w in where)
               + " ORDER BY updated DESC LIMIT ?")
        return [_summary(row) for row in self._reader().execute(sql, (*args, limit))]

    def latest(self, cwd: str) -> SessionSummary | None:
        found = self.list_sessions(cwd=cwd, limit=1)
        return found[0] if found else None

    def find(self, id_or_prefix: str) -> SessionSummary:
        """A session by its id or a unique prefix of it."""
        prefix = id_or_prefix.strip().lower()
        if not prefix:
            raise SessionNotFound("no session id was given")
        rows = self._reader().execute(
            f"SELECT {_SUMMARY_COLUMNS} FROM sessions WHERE id >= ? AND id < ? ORDER BY updated DESC LIMIT 6",
            (prefix, prefix + "\uffff")).fetchall()
        if not rows:
            raise SessionNotFound(f"no stored session has an id starting with {id_or_prefix!r}")
        exact = [r for r in rows if r[0] == prefix]
        if exact:
            return _summary(exact[0])
        if len(rows) > 1:
            raise SessionNotFound(f"{id_or_prefix!r} matches {len(rows)}{'+' if len(rows) == 6 else ''} sessions; "
                                  "give more of the id")
        return _summary(rows[0])

    def load(self, session_id: str) -> StoredSession:
        conn = self._reader()
        row = conn.execute(f"SELECT {_SUMMARY_COLUMNS}, state, title_auto FROM sessions WHERE id = ?",
                           (session_id,)).fetchone()
        if row is None:
            raise SessionNotFound(f"no stored session {session_id!r}")
        summary, (state_json, title_auto) = _summary(row[:12]), row[12:]
        try:
            state = json.loads(state_json)
        except ValueError:
            state = {}
        messages = [StoredMessage(kind, turn, cost, json.loads(body)) for kind, turn, cost, body in conn.execute(
            "SELECT kind, turn, cost, body FROM messages WHERE session_id = ? ORDER BY idx", (session_id,))]
        jobs = self._jobs(conn, session_id)
        last_seq = conn.execute("SELECT max(seq) FROM events WHERE session_id = ?", (session_id,)).fetchone()[0]
        return StoredSession(summary=summary, state=state if isinstance(state, dict) else {},
                             messages=messages, jobs=jobs, title_auto=bool(title_auto), last_seq=last_seq or 0)

    @staticmethod
    def _jobs(conn: sqlite3.Connection, session_id: str) -> list[StoredJob]:
        out = []
        for r in conn.execute("SELECT job_id, backend, flavor, stage, call_id, turn, log_path, log_offset, cost, info "
                              "FROM jobs WHERE session_id = ? ORDER BY turn, job_id", (session_id,)):
            try:
                info = json.loads(r[9] or "{}")
            except ValueError:
                info = {}
            out.append(StoredJob(job_id=r[0], backend=r[1], flavor=r[2], stage=r[3], call_id=r[4], turn=r[5],
                                 log_path=r[6], log_offset=r[7], cost=r[8], info=info))
        return out

    def runs(self, cwd: str) -> list[str]:
        """The ``run_record`` events (JSON) of every session of the directory ``cwd``, oldest first."""
        return [body for (body,) in self._reader().execute(
            "SELECT e.body FROM events e JOIN sessions s ON s.id = e.session_id "
            "WHERE e.type = 'run_record' AND s.cwd = ? ORDER BY e.ts", (cwd,))]

    def events(self, session_id: str, types: Iterable[str] | None = None) -> list[tuple[int, str, str]]:
        """(seq, type, json) of a session's stored events, in order."""
        sql, args = "SELECT seq, type, body FROM events WHERE session_id = ?", [session_id]
        if types is not None:
            wanted = list(types)
            sql += f" AND type IN ({','.join('?' * len(wanted))})"
            args += wanted
        return list(self._reader().execute(sql + " ORDER BY seq", args))

    # ------------------------------------------------------------------ writing (enqueue only)

    def record(self, event: Any) -> None:
        """Keep an event (``SKIPPED_EVENTS`` are not kept). Serialized on the writer thread."""
        if event.type not in SKIPPED_EVENTS and not self._closed:
            self._put(("event", event))

    def checkpoint(self, checkpoint: Checkpoint, done: Callable[[bool], None] | None = None) -> None:
        """Write ``checkpoint`` in one transaction; ``done(ok)`` is called on the writer thread."""
        if self._closed:
            if done is not None:
                done(False)
            return
        self._put(("checkpoint", checkpoint, done))

    def adopt(self, session_id: str, entries: Sequence[Any]) -> None:
        """``entries`` are what the store holds for ``session_id`` (a session just loaded from
        it): its next checkpoint writes only what comes after them."""
        self._put(("adopt", session_id, list(entries)))

    def rename(self, session_id: str, title: str, done: Callable[[bool], None] | None = None) -> None:
        self._put(("rename", session_id, title, done))

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until everything enqueued so far is written (or failed). For tests and exit."""
        finished = threading.Event()
        self._put(("flush", finished))
        return finished.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer (blocking)."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put(("stop",))
            self._writer.join(timeout)
        if self._write_conn is not None:
            try:
                self._write_conn.close()
            except sqlite3.Error:
                pass
            self._write_conn = None
        conn = getattr(self._read_local, "conn", None)
        if conn is not None:
            conn.close()
            self._read_local.conn = None

    def _put(self, item: tuple) -> None:
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="session-store", daemon=True)
            self._writer.start()
        self._queue.put(item)

    # ------------------------------------------------------------------ the writer thread

    def _write_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:  # everything already waiting goes in the same transaction
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item[0] == "stop" for item in batch)
            self._write_batch([item for item in batch if item[0] != "stop"])
            if stop:
                return

    def _write_batch(self, batch: list[tuple]) -> None:
        conn = self._write_conn
        callbacks: list[Callable[[bool], None]] = []
        flushes: list[threading.Event] = []
        ok = False
        committed: dict[str, list[Any]] = {}
        try:
            if conn is None:
                raise sqlite3.OperationalError("the session store is closed")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for item in batch:
                    kind = item[0]
                    if kind == "event":
                        self._write_event(conn, item[1])
                    elif kind == "checkpoint":
                        cp = item[1]
                        before = committed.get(cp.session_id, self._committed.get(cp.session_id, []))
                        self._write_checkpoint(conn, cp, before)
                        committed[cp.session_id] = list(cp.entries)
                        if item[2] is not None:
                            callbacks.append(item[2])
                    elif kind == "rename":
                        conn.execute("UPDATE sessions SET title = ?, title_auto = 0 WHERE id = ?", (item[2], item[1]))
                        if item[3] is not None:
                            callbacks.append(item[3])
                    elif kind == "flush":
                        flushes.append(item[1])
                    elif kind == "adopt":
                        committed[item[1]] = item[2]
                conn.execute("COMMIT")
                ok = True
                self._committed.update(committed)
            except BaseException:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise
        except Exception as exc:  # a full disk, a locked file: said once; the session goes on in memory
            flushes += [item[1] for item in batch if item[0] == "flush"]
            callbacks += [item[-1] for item in batch if item[0] in ("checkpoint", "rename") and item[-1] is not None
                          and item[-1] not in callbacks]
            message = _failure(exc, self.path)
            if message != self._failing:
                self._failing = message
                self._report(message)
        else:
            if self._failing is not None:
                self._failing = None
                self._report("the session store is writing again; everything since the failure is saved")
        for callback in callbacks:
            try:
                callback(ok)
            except Exception:
                log.exception("session store: a checkpoint callback failed")
        for finished in flushes:
            finished.set()

    def _report(self, message: str) -> None:
        try:
            self.on_error(message)
        except Exception:
            log.exception("session store: on_error failed")

    @staticmethod
    def _write_event(conn: sqlite3.Connection, event: Any) -> None:
        conn.execute("INSERT OR REPLACE INTO events (session_id, seq, turn, type, ts, body) VALUES (?, ?, ?, ?, ?, ?)",
                     (event.session_id, event.seq, event.turn, event.type, event.ts, event.model_dump_json()))

    @staticmethod
    def _write_checkpoint(conn: sqlite3.Connection, cp: Checkpoint, before: Sequence[Any]) -> None:
        conn.execute(
            "INSERT INTO sessions (id, title, title_auto, model, cwd, created, updated, first_prompt, turns, spend_model, "
            "spend_compute, spend_title, status, headless, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET title = CASE WHEN sessions.title_auto = 0 AND excluded.title_auto = 1 "
            "THEN sessions.title ELSE excluded.title END, title_auto = min(sessions.title_auto, excluded.title_auto), "
            "model = excluded.model, cwd = excluded.cwd, updated = excluded.updated, first_prompt = excluded.first_prompt, "
            "turns = excluded.turns, spend_model = excluded.spend_model, spend_compute = excluded.spend_compute, "
            "spend_title = excluded.spend_title, status = excluded.status, headless = excluded.headless, "
            "state = excluded.state",
            (cp.session_id, cp.title, int(cp.title_auto), cp.model, cp.cwd, cp.created, cp.updated, cp.first_prompt,
             cp.turns, cp.spend_model, cp.spend_compute, cp.spend_title, cp.status, int(cp.headless),
             json.dumps(cp.state, default=str)))
        entries = cp.entries
        start = 0
        limit = min(len(before), len(entries))
        while start < limit and before[start] is entries[start]:
            start += 1
        if start < len(before) or start < len(entries):
            conn.execute("DELETE FROM messages WHERE session_id = ? AND idx >= ?", (cp.session_id, start))
            conn.executemany(
                "INSERT INTO messages (session_id, idx, kind, turn, cost, body) VALUES (?, ?, ?, ?, ?, ?)",
                [(cp.session_id, start + i, e.kind, e.turn, e.cost_usd, json.dumps(e.message, default=str))
                 for i, e in enumerate(entries[start:])])
        for job in cp.jobs:
            conn.execute(
                "INSERT OR REPLACE INTO jobs (session_id, job_id, backend, flavor, stage, call_id, turn, log_path, "
                "log_offset, cost, info) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cp.session_id, job["job_id"], job["backend"], job.get("flavor", ""), job.get("stage", ""),
                 job.get("call_id", ""), job.get("turn", 0), job.get("log_path", ""), job.get("log_offset", 0),
                 job.get("cost"), json.dumps(job.get("info", {}), default=str)))


def _failure(exc: Exception, path: Path) -> str:
    text = str(exc)
    lower = text.lower()
    if "full" in lower or "no space" in lower:
        why = "the disk is full"
    elif "locked" in lower or "busy" in lower:
        why = "another program holds the database locked"
    elif "readonly" in lower or "read-only" in lower or "permission" in lower:
        why = "the file cannot be written"
    else:
        why = f"{type(exc).__name__}: {text}"
    return (f"the session could not be saved to {path} ({why}); it goes on in memory and is saved again as "
            "soon as the store can be written")


__all__ = [
    "Checkpoint", "DB_NAME", "MIGRATIONS", "SCHEMA_VERSION", "SessionNotFound", "SessionStore", "SessionSummary",
    "StoreError", "StoredJob", "StoredMessage", "StoredSession", "db_path", "migrate",
]
