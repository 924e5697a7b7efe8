"""The docs index's file and what can go wrong with it: connections, a damaged file, a locked one.

The file is only a cache. One that SQLite cannot read (overwritten, truncated, not a database)
is moved aside as ``<name>.corrupt-<time>`` and a fresh one is made; the call goes on against it
(the tools then fetch what they need again) and a notice says so. A file locked by another
process's write is retried for a few seconds, then reported as a sentence (``DocsIndexError``),
as is any other failure. ``agent.docs_index.DocsIndex`` builds on ``IndexFile`` and adds the
tables and the queries.
"""

from __future__ import annotations

import abc
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: SQLite's primary result codes: the file is not a database / is damaged; another connection holds a lock
_CORRUPT_CODES = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED
#: corrupt copies kept next to the index (older ones are deleted)
KEEP_CORRUPT = 2


class DocsIndexError(Exception):
    """The index could not be used; the message is a sentence for the model."""


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_locked(exc: sqlite3.Error) -> bool:
    code = _code(exc)
    if code is not None:
        return code in _BUSY_CODES
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def is_corrupt(exc: sqlite3.Error) -> bool:
    """The file is damaged or not a database at all ("file is not a database", "database disk
    image is malformed"), as opposed to locked, full, unwritable or a bug in a query."""
    code = _code(exc)
    if code is not None:
        return code in _CORRUPT_CODES
    return type(exc) is sqlite3.DatabaseError


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()
#: per file: how many times this process replaced it with an empty index (its data lost)
_rebuilds: dict[str, int] = {}


def write_lock(path: Path) -> threading.Lock:
    with _write_locks_guard:
        return _write_locks.setdefault(str(path.resolve()), threading.Lock())


class IndexFile(abc.ABC):
    """An SQLite file used as a cache: each call on a fresh connection, a damaged file rebuilt, a lock waited
    out. Cheap to create; the file appears on first use, with the tables ``_setup`` makes."""

    #: how long one attempt waits for another connection's lock, how many attempts, and the pause between them
    busy_timeout_s = 2.0
    lock_attempts = 3
    lock_pause_s = 0.3

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._ready = False
        self._notices: list[str] = []
        self._notices_guard = threading.Lock()

    @property
    def rebuilds(self) -> int:
        """How many times this process has replaced the file with an empty index: a caller that sees
        it change during a sequence of calls knows that what the first calls stored is gone."""
        with _write_locks_guard:
            return _rebuilds.get(str(self.path.resolve()), 0)

    def take_notices(self) -> list[str]:
        """What happened to the file since the last call (e.g. "rebuilt"), for the tool's log."""
        with self._notices_guard:
            notices, self._notices = self._notices, []
        return notices

    @abc.abstractmethod
    def _setup(self, conn: sqlite3.Connection) -> None:
        """Make the file's tables (under the write lock, on a fresh file or one of an older schema)."""

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            if not self._ready:
                with write_lock(self.path):
                    self._setup(conn)
                self._ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` on a fresh connection. A damaged file is moved aside and replaced by an empty
        index once, and ``work`` run again on it; a lock is waited out a few times; anything
        else, or a file still unusable, becomes a ``DocsIndexError`` sentence."""
        locked = 0
        recovered = False
        started = time.monotonic()
        while True:
            file_id = _file_id(self.path)
            try:
                conn = self._connect()
                try:
                    return work(conn)
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                if is_locked(exc):
                    locked += 1
                    if locked < self.lock_attempts:
                        time.sleep(self.lock_pause_s * locked)
                        continue
                    raise DocsIndexError(
                        f"The docs index ({self.path}) is locked: another program is writing to it (waited "
                        f"{time.monotonic() - started:.1f} s). Try again in a moment.") from exc
                if not recovered and (is_corrupt(exc) or "no such table" in str(exc)):
                    recovered = True
                    self._recover(file_id, exc)
                    continue
                raise DocsIndexError(f"The docs index ({self.path}) could not be used: {exc}.") from exc
            except OSError as exc:  # the directory cannot be made, the disk is full, ...
                raise DocsIndexError(f"The docs index ({self.path}) could not be used: {exc}.") from exc

    def _recover(self, file_id: tuple[int, int] | None, exc: sqlite3.Error) -> None:
        """Move the damaged file (and its -wal/-shm) aside and create an empty index in its place."""
        with write_lock(self.path):
            self._ready = False
            current = _file_id(self.path)
            if not is_corrupt(exc) or (file_id is not None and current is not None and current != file_id):
                return  # tables missing (they are created again), or someone already replaced the file
            now_s = time.time()
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now_s)) + f"-{int(now_s % 1 * 1e6):06d}"
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            n = 1
            while aside.exists():
                n += 1
                aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            moved = False
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
                    moved = moved or suffix == ""
                except FileNotFoundError:
                    pass
                except OSError:
                    if suffix == "":
                        raise DocsIndexError(f"The docs index ({self.path}) is damaged ({exc}) and could not be "
                                             "moved aside; delete it.") from exc
            self._prune_corrupt()
            with _write_locks_guard:
                key = str(self.path.resolve())
                _rebuilds[key] = _rebuilds.get(key, 0) + 1
            try:  # the tables at once, so that other users of the file never find it without them
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
                try:
                    self._setup(conn)
                    self._ready = True
                finally:
                    conn.close()
            except sqlite3.Error:
                pass  # the next connection tries again, with the usual handling
        where = f"; the damaged file is {aside.name}" if moved else ""
        with self._notices_guard:
            self._notices.append(f"the docs index could not be read ({exc}): rebuilt it{where}")

    def _prune_corrupt(self) -> None:
        """Keep the newest ``KEEP_CORRUPT`` damaged copies (their names sort by time)."""
        copies = sorted((p for p in self.path.parent.glob(f"{self.path.name}.corrupt-*")
                         if not p.name.endswith(("-wal", "-shm"))), key=lambda p: p.name, reverse=True)
        for old in copies[KEEP_CORRUPT:]:
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(f"{old}{suffix}")
                except OSError:
                    pass
