"""Records, State and dead letters in SQLite (``qtasks-broker --data-dir DIR``).

The records the broker is working on (queued, delayed, running) stay in memory as well;
an ended record leaves memory once it is committed and is read back from the database
when asked for. Writes are group-committed: ``add_many``/``save`` only note what changed,
and ``commit`` (once per turn of the broker's loop, before it answers anyone) writes it
all in one transaction, so durability costs one commit per batch, not one per task.

The database runs in WAL mode. With ``synchronous=NORMAL`` (the default) a crash of the
broker process loses nothing it acknowledged; a power cut or OS crash may lose the last
transactions before the operating system wrote them out. ``--fsync`` (``synchronous=FULL``)
syncs every commit to disk: nothing acknowledged is lost even then, for one fsync per turn.

One broker at a time owns a directory (an ``fcntl`` lock on ``broker.lock``, which holds
its pid); the schema is versioned, and a directory written by a newer version is refused.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Optional

import msgpack

from broker_daemon.records import Status, TaskRecord
from broker_daemon.state import DELETED
from broker_daemon.storage.base import MAX_SCAN, Namespace, Storage
from qtasks.exc import DataDirError, DataDirInUseError
from qtasks.protocol import TaskEnvelope

SCHEMA_VERSION = 1
DATABASE = "broker.sqlite3"
LOCK = "broker.lock"
_LIVE = (Status.NEW.value, Status.PROCESS.value)
_ENDED = tuple(s.value for s in Status if s.value not in _LIVE)
_COLUMNS = "uuid, queue, name, status, updated_at, dead, envelope, state"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    uuid BLOB NOT NULL UNIQUE, queue TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
    updated_at REAL NOT NULL, dead INTEGER NOT NULL,
    envelope BLOB NOT NULL,  -- msgpack [priority, created_at, payload, metadata]: written once
    state BLOB NOT NULL      -- msgpack [attempts, losses, suspect, result, traceback, extra, steps, retry_child]
);
CREATE INDEX IF NOT EXISTS tasks_ended ON tasks (updated_at) WHERE dead = 0 AND status IN {_ENDED!r};
CREATE INDEX IF NOT EXISTS tasks_dead ON tasks (updated_at) WHERE dead = 1;
CREATE TABLE IF NOT EXISTS state (
    app TEXT NOT NULL, class TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (app, class, scope, key));
"""


def _packb(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def _state(record: TaskRecord) -> bytes:
    return _packb([record.attempts, record.losses, record.suspect, record.returning, record.traceback,
                   record.extra or None, record.steps or None, record.retry_child])


def _row(record: TaskRecord) -> tuple[Any, ...]:
    e = record.envelope
    return (e.uuid, e.queue, e.task_name, record.status.value, record.updated_at, int(record.dead),
            _packb([e.priority, e.created_at, e.payload, e.metadata or None]), _state(record))


def _changes(record: TaskRecord) -> tuple[Any, ...]:
    return (record.status.value, record.updated_at, int(record.dead), _state(record), record.envelope.uuid)


def _record(row: tuple[Any, ...]) -> TaskRecord:
    uuid, queue, name, status, updated_at, dead, envelope, state = row
    priority, created_at, payload, metadata = msgpack.unpackb(envelope, raw=False)
    record = TaskRecord(TaskEnvelope(uuid, name, queue, priority, created_at, payload, metadata or {}), updated_at)
    record.status, record.dead = Status(status), bool(dead)
    (record.attempts, record.losses, record.suspect, record.returning, record.traceback, extra, steps,
     record.retry_child) = msgpack.unpackb(state, raw=False)
    record.extra, record.steps = extra or {}, steps or []
    return record


def _dead_filter(app: Optional[str], task_name: Optional[str]) -> tuple[str, tuple[Any, ...]]:
    where, args = ["dead = 1"], []
    if app is not None:
        where.append("queue = ?")
        args.append(app)
    if task_name is not None:
        where.append("name = ?")
        args.append(task_name)
    return " AND ".join(where), tuple(args)


class DataDirLock:
    """Exclusive use of a data directory by one process, with its pid written for whoever asks."""

    def __init__(self, directory: Path) -> None:
        path = directory / LOCK
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 32).decode("ascii", "replace").strip()
            os.close(self._fd)
            raise DataDirInUseError(str(directory), int(holder) if holder.isdigit() else None) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())

    def release(self) -> None:
        os.close(self._fd)  # closing the descriptor releases the lock


class SQLiteStorage(Storage):
    durable = True

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = False, name: str = "sqlite") -> None:
        super().__init__(name)
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirError(f"cannot use {self.directory} as the data directory: {exc.strerror}") from None
        self._lock = DataDirLock(self.directory)
        try:
            self._db = sqlite3.connect(self.directory / DATABASE, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
            self._check_schema()
        except BaseException:
            self._lock.release()
            raise
        self._live: dict[bytes, TaskRecord] = {}
        self._new: dict[bytes, TaskRecord] = {}
        self._changed: dict[bytes, TaskRecord] = {}
        self._state: list[tuple[Namespace, bool, dict[str, Any]]] = []
        self._count: int = self._db.execute("SELECT count(*) FROM tasks").fetchone()[0]

    def _check_schema(self) -> None:
        self._db.executescript(_SCHEMA)
        found = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if found is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(found[0]) > SCHEMA_VERSION:
            raise DataDirError(f"the data directory {self.directory} was written by a newer qtasks-broker (schema "
                               f"{found[0]}; this one reads up to {SCHEMA_VERSION}): upgrade qtasks, or give this "
                               "broker another --data-dir")

    # ------------------------------------------------------------------ records

    def add_many(self, records: Iterable[TaskRecord]) -> None:
        for record in records:
            uuid = record.envelope.uuid
            self._live[uuid] = self._new[uuid] = record
            self._count += 1

    def get(self, uuid: bytes) -> TaskRecord | None:
        record = self._live.get(uuid) or self._changed.get(uuid)
        if record is not None:
            return record
        row = self._db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE uuid = ?", (uuid,)).fetchone()
        return None if row is None else _record(row)

    def known(self, uuids: Iterable[bytes]) -> set[bytes]:
        live, changed = self._live, self._changed
        found = set()
        unsure = []
        for uuid in uuids:
            if uuid in live or uuid in changed:
                found.add(uuid)
            else:
                unsure.append(uuid)
        for start in range(0, len(unsure), 500):  # SQLite's parameter limit is 999 on old builds
            chunk = unsure[start:start + 500]
            rows = self._db.execute(f"SELECT uuid FROM tasks WHERE uuid IN ({', '.join('?' * len(chunk))})", chunk)
            found.update(uuid for (uuid,) in rows)
        return found

    def save(self, record: TaskRecord) -> None:
        uuid = record.envelope.uuid
        if uuid not in self._new:
            self._changed[uuid] = record

    def commit(self) -> None:
        new, changed, state = self._new, self._changed, self._state
        if not (new or changed or state):
            return
        db = self._db
        db.execute("BEGIN")
        try:
            if new:
                db.executemany(f"INSERT OR REPLACE INTO tasks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               [_row(r) for r in new.values()])
            if changed:
                db.executemany("UPDATE tasks SET status = ?, updated_at = ?, dead = ?, state = ? WHERE uuid = ?",
                               [_changes(r) for r in changed.values()])
            for (app, cls, scope), cleared, keys in state:
                if cleared:
                    db.execute("DELETE FROM state WHERE app = ? AND class = ? AND scope = ?", (app, cls, scope))
                gone = [(app, cls, scope, k) for k, v in keys.items() if v is DELETED]
                kept = [(app, cls, scope, k, msgpack.packb(v, use_bin_type=True)) for k, v in keys.items()
                        if v is not DELETED]
                if gone:
                    db.executemany("DELETE FROM state WHERE app = ? AND class = ? AND scope = ? AND key = ?", gone)
                if kept:
                    db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?)", kept)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        live = self._live
        for records in (new, changed):
            for uuid, record in records.items():
                if record.ended:
                    live.pop(uuid, None)  # on disk now: read back when asked for
        self._new, self._changed, self._state = {}, {}, []

    def live(self) -> Iterable[TaskRecord]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE status IN {_LIVE!r} ORDER BY rowid")
        for row in rows:
            record = _record(row)
            self._live[record.envelope.uuid] = record
            yield record

    def live_count(self) -> int:
        return int(self._db.execute(f"SELECT count(*) FROM tasks WHERE status IN {_LIVE!r}").fetchone()[0])

    def _delete(self, where: str, args: tuple[Any, ...]) -> int:
        self.commit()
        deleted = self._db.execute(f"DELETE FROM tasks WHERE {where}", args).rowcount
        self._count -= deleted
        return int(deleted)

    def delete_ended(self, app: str) -> int:
        return self._delete(f"queue = ? AND status IN {_ENDED!r}", (app,))

    def expire(self, ended_before: float) -> int:
        return self._delete(f"dead = 0 AND status IN {_ENDED!r} AND updated_at < ?", (ended_before,))

    def dead_letters(self, app: Optional[str] = None, task_name: Optional[str] = None,
                     limit: Optional[int] = None) -> list[TaskRecord]:
        self.commit()
        where, args = _dead_filter(app, task_name)
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE {where} ORDER BY updated_at LIMIT ?",
                                (*args, -1 if limit is None else limit))
        return [_record(row) for row in rows]

    def dead_count(self, app: Optional[str] = None, task_name: Optional[str] = None) -> int:
        self.commit()
        where, args = _dead_filter(app, task_name)
        return int(self._db.execute(f"SELECT count(*) FROM tasks WHERE {where}", args).fetchone()[0])

    def dead_counts(self) -> dict[str, int]:
        self.commit()
        return {queue: int(n) for queue, n in
                self._db.execute("SELECT queue, count(*) FROM tasks WHERE dead = 1 GROUP BY queue")}

    def records(self, *, status: Optional[str] = None, name: Optional[str] = None, app: Optional[str] = None,
                limit: int = 50) -> list[TaskRecord]:
        if limit <= 0:
            return []
        self.commit()
        # a walk down the rowid tree from the newest row, ending at `limit` matches or MAX_SCAN rows back
        where, args = [f"rowid > (SELECT coalesce(max(rowid), 0) FROM tasks) - {MAX_SCAN}"], []
        for column, value in (("status", status), ("name", name), ("queue", app)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE {' AND '.join(where)} ORDER BY rowid DESC LIMIT ?",
                                (*args, limit))
        live = self._live
        return [live.get(row[0]) or _record(row) for row in rows]

    def delete_dead(self, app: Optional[str] = None, task_name: Optional[str] = None) -> int:
        return self._delete(*_dead_filter(app, task_name))

    def __len__(self) -> int:
        return self._count

    # ------------------------------------------------------------------ State

    def load_state(self) -> dict[Namespace, dict[str, Any]]:
        namespaces: dict[Namespace, dict[str, Any]] = {}
        for app, cls, scope, key, value in self._db.execute("SELECT app, class, scope, key, value FROM state"):
            namespaces.setdefault((app, cls, scope), {})[key] = msgpack.unpackb(value, raw=False)
        return namespaces

    def save_state(self, namespace: Namespace, cleared: bool, keys: dict[str, Any]) -> None:
        self._state.append((namespace, cleared, keys))

    def close(self) -> None:
        try:
            self.commit()
            self._db.close()
        finally:
            self._lock.release()
