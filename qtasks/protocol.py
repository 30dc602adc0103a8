"""The QTasks wire format. This is the only module that knows it.

Every message is a ZeroMQ multipart message of three frames (the broker's ROUTER
socket adds the peer identity in front)::

    [ HEADER      | COMMAND  | BODY    ]
      b"QTASKS/1"   b"SUBMIT"  msgpack

Commands and bodies (``uuid`` = 16 raw bytes; ``envelope``, ``delivery``,
``outcome`` and ``snapshot`` are the arrays drawn further down)::

    client -> broker   SUBMIT    [req_id, wait_seconds | nil, [envelope, ...]]
                       WAIT      [req_id, [uuid, ...], wait_seconds]
                       GET       [req_id, [uuid, ...]]
                       STATS     [req_id]
                       PING      [req_id]
                       STATE     [req_id, [app, state class, scope], op, args]   args: msgpack bytes
                       CANCEL    [req_id, [uuid, ...], reason]
                       WATCH     [req_id, uuid, wait_seconds]        follow a task's steps
                       OPS       [req_id, op, {args}]   operating the broker (``Ops``: status, tasks,
                                 inspect, retry, timers); limits in ``Ops``
    broker -> client   REPLY     [req_id, value]          value depends on the request: SUBMIT →
                                 [accepted, hello], WAIT → [unknown uuids, hello], PING → hello,
                                 STATE → msgpack bytes of the result; hello = [boot_id, max_message_size];
                                 OPS → see ``Ops``
                       NOTIFY    [[uuid, snapshot], ...]  pushed when a waited-for task ends; uuid is
                                 the one waited for (a retry chain ends in another task)
                       PROGRESS  [[uuid, index, value], ...]    steps of watched generator tasks
                       ERROR     [req_id | nil, code, message]
    worker -> broker   READY     {queue, concurrency, pid, host, replaces, cause, running, tasks}
                                 (concurrency = credit; 0 = draining; running = [[uuid, attempt], ...];
                                 tasks = the task names it serves, nil = any)
                       HEARTBEAT []
                       RESULT    [outcome, ...]
                       YIELD     [[uuid, attempt, index, value], ...]   generator steps (value: msgpack)
                       RETURN    [[uuid, attempt], ...]   handed back unstarted: no attempt counted
                       BYE       []
    broker -> worker   WELCOME   [boot_id, heartbeat_interval, heartbeat_liveness, max_message_size]
                       DISPATCH  [delivery, ...]
                       CANCEL    [nil, [uuid, ...], reason]
                       HEARTBEAT []
                       ERROR     [nil, code, message]

    envelope  [uuid, task_name, queue, priority, created_at, payload, metadata]
    delivery  [envelope, attempt]
    outcome   [uuid, attempt, status, returning, traceback, finished_at, extra]
    snapshot  [envelope, status, returning, traceback, updated_at, attempts, extra, steps]
    view      [snapshot, [later attempt uuid, ...], [trimmed field, ...]]   a record for operators

``payload`` is msgpack of ``[args, kwargs]`` and ``returning`` msgpack of the result:
both stay opaque bytes to the broker, which never unpacks user data.
Anything that does not fit raises :class:`~qtasks.exc.DecodeError` (or
:class:`~qtasks.exc.ProtocolVersionError`), never another exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Sequence, Union

import msgpack

from qtasks.exc import (
    DecodeError,
    MessageTooLargeError,
    ProtocolVersionError,
    UnserializableArgumentError,
    UnserializableResultError,
)

VERSION = 2
HEADER = b"QTASKS/%d" % VERSION
_HEADER_PREFIX = b"QTASKS/"
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
UUID_SIZE = 16

Frames = list[bytes]


# --------------------------------------------------------------------------- values


def pack_value(value: Any) -> bytes:
    """Pack one user value (a task result). Raises ``TypeError``/``ValueError`` when msgpack can't."""
    packed: bytes = msgpack.packb(value, use_bin_type=True, datetime=True)
    return packed


def unpack_value(raw: bytes) -> Any:
    """Unpack a value packed by :func:`pack_value`."""
    return msgpack.unpackb(raw, raw=False, strict_map_key=False, timestamp=3)


def pack_arguments(task_name: str, args: Sequence[Any], kwargs: dict[str, Any],
                   max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> bytes:
    """Pack a task call's arguments, naming the first argument that cannot travel, or the
    largest one when together they exceed ``max_size`` (the broker's message limit)."""
    try:
        payload: bytes = msgpack.packb([args, kwargs], use_bin_type=True, datetime=True)
    except Exception as exc:  # msgpack raises TypeError, ValueError, OverflowError ...
        raise _argument_error(task_name, args, kwargs, exc) from exc
    if len(payload) > max_size:
        sizes = [(f"#{i}", a) for i, a in enumerate(args)] + [(repr(k), v) for k, v in kwargs.items()]
        name, value = max(sizes, key=lambda item: len(pack_value(item[1])), default=("", None))
        raise MessageTooLargeError(
            f"the arguments of task {task_name!r} (the largest: argument {name}, a {type(value).__qualname__})",
            len(payload), max_size)
    return payload


def _argument_error(task_name: str, args: Sequence[Any], kwargs: dict[str, Any],
                    exc: Exception) -> UnserializableArgumentError:
    named = [(f"#{i}", a) for i, a in enumerate(args)] + [(repr(k), v) for k, v in kwargs.items()]
    for name, value in named:
        try:
            pack_value(value)
        except Exception as culprit:
            return UnserializableArgumentError(task_name, name, value, str(culprit))
    for key in kwargs:
        if not isinstance(key, str):
            return UnserializableArgumentError(task_name, f"keyword {key!r}", key, "keyword names must be str")
    return UnserializableArgumentError(task_name, "list", args, str(exc))


def unpack_arguments(payload: bytes) -> tuple[list[Any], dict[str, Any]]:
    """Unpack ``[args, kwargs]`` packed by :func:`pack_arguments`."""
    try:
        args, kwargs = unpack_value(payload)
    except Exception as exc:
        raise DecodeError("task arguments are not a msgpack [args, kwargs] pair", payload[:64], exc) from exc
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise DecodeError("task arguments are not a msgpack [args, kwargs] pair", payload[:64])
    return args, kwargs


CHUNK = "chunk"
"""Metadata key of a chunk envelope: several calls of one task that run as one delivery (``task.map``),
its value the number of calls. Its payload is one msgpack array of ``[args, kwargs]`` pairs;
its result one array of ``[status, result | nil, traceback | nil]`` per call, in order. Each is
packed and unpacked in one msgpack call, not one per item: tiny calls are where a map spends
its time on encoding."""

Call = tuple[Sequence[Any], dict[str, Any]]
ChunkResult = tuple[str, Any, Union[str, None]]
_NIL = b"\xc0"
_TRIPLE = b"\x93"
_PACKED_STATUS: dict[str, bytes] = {}


def pack_chunk(task_name: str, calls: Sequence[Call], first_index: int,
               max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> bytes:
    """A chunk's payload; an argument that cannot travel is named with its item's index."""
    try:
        payload: bytes = msgpack.packb([[args, kwargs] for args, kwargs in calls], use_bin_type=True,
                                       datetime=True)
    except Exception:
        for offset, (args, kwargs) in enumerate(calls):  # find the culprit, named as pack_arguments names it
            pack_arguments(f"{task_name} (item #{first_index + offset})", args, kwargs, max_size)
        raise
    if len(payload) > max_size:
        raise MessageTooLargeError(f"a chunk of {len(calls)} call(s) of task {task_name!r} (from item "
                                   f"#{first_index})", len(payload), max_size)
    return payload


def unpack_chunk(payload: bytes) -> list[tuple[list[Any], dict[str, Any]]]:
    """The ``(args, kwargs)`` of a chunk's calls."""
    try:
        calls = unpack_value(payload)
    except Exception as exc:
        raise DecodeError("a chunk's payload is not a msgpack array of calls", payload[:64], exc) from exc
    if not isinstance(calls, list) or not all(
            isinstance(c, list) and len(c) == 2 and isinstance(c[0], list) and isinstance(c[1], dict) for c in calls):
        raise DecodeError("a chunk's payload is not a msgpack array of [args, kwargs] pairs", payload[:64])
    return [(args, kwargs) for args, kwargs in calls]


def pack_chunk_results(results: Sequence[tuple[str, bytes | None, str | None]]) -> bytes:
    """The calls' outcomes (each result already packed by :func:`pack_result`), spliced into one array."""
    packer = msgpack.Packer(use_bin_type=True)
    parts = [packer.pack_array_header(len(results))]
    for status, packed, traceback in results:
        status_bytes = _PACKED_STATUS.get(status)
        if status_bytes is None:
            status_bytes = _PACKED_STATUS[status] = pack_value(status)
        parts += (_TRIPLE, status_bytes, _NIL if packed is None else packed,
                  _NIL if traceback is None else pack_value(traceback))
    return b"".join(parts)


def unpack_chunk_results(raw: bytes, count: int) -> list[ChunkResult]:
    """``count`` calls' ``(status, result value, traceback)``, checked."""
    results: list[ChunkResult] = unpack_value(raw)
    _check(isinstance(results, list) and len(results) == count, f"a chunk's result must be an array of {count}")
    for item in results:
        _check(isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
               and (item[2] is None or isinstance(item[2], str)), "a chunk item's result must be "
               "[status, result, traceback]")
    return results


def pack_result(task_name: str, value: Any) -> bytes:
    """Pack a task's return value, or raise :class:`UnserializableResultError`."""
    try:
        return pack_value(value)
    except Exception as exc:
        raise UnserializableResultError(task_name, value) from exc


# --------------------------------------------------------------------------- checks


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _uuid(value: Any) -> bytes:
    if not isinstance(value, bytes) or len(value) != UUID_SIZE:
        raise ValueError("a task uuid must be 16 raw bytes")
    return value


def _uuids(value: Any) -> list[bytes]:
    _check(isinstance(value, list), "expected an array of uuids")
    return [_uuid(item) for item in value]


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} must be an integer")
    return value


def _number(value: Any, what: str) -> float:
    _check(isinstance(value, (int, float)) and not isinstance(value, bool), f"{what} must be a number")
    return float(value)


def _optional_number(value: Any, what: str) -> float | None:
    return None if value is None else _number(value, what)


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    return value


def _optional(value: Any, kind: type, what: str) -> Any:
    _check(value is None or isinstance(value, kind), f"{what} must be {kind.__name__} or nil")
    return value


def _array(value: Any, size: int, what: str) -> list[Any]:
    if not isinstance(value, list) or len(value) != size:
        raise ValueError(f"{what} must be an array of {size} items")
    return value


def _map(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a map")
    return value


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class TaskEnvelope:
    """A task as the client built it; never changes after submit."""

    uuid: bytes
    task_name: str
    queue: str
    priority: int
    created_at: float
    payload: bytes
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> list[Any]:
        return [self.uuid, self.task_name, self.queue, self.priority, self.created_at,
                self.payload, self.metadata]

    @classmethod
    def from_wire(cls, item: Any) -> TaskEnvelope:
        uuid, name, queue, priority, created_at, payload, metadata = _array(item, 7, "an envelope")
        _check(isinstance(payload, bytes), "an envelope payload must be bytes")
        _check(bool(name) and isinstance(name, str), "a task name must be a non-empty string")
        return cls(_uuid(uuid), name, _str(queue, "queue"), _int(priority, "priority"),
                   _number(created_at, "created_at"), payload, _map(metadata, "metadata"))


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt at running an envelope, as the broker hands it to a worker."""

    envelope: TaskEnvelope
    attempt: int

    def to_wire(self) -> list[Any]:
        return [self.envelope.to_wire(), self.attempt]

    @classmethod
    def from_wire(cls, item: Any) -> Delivery:
        envelope, attempt = _array(item, 2, "a delivery")
        return cls(TaskEnvelope.from_wire(envelope), _int(attempt, "attempt"))


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How one delivery ended, as a worker reports it."""

    uuid: bytes
    attempt: int
    status: str
    returning: bytes | None = None
    traceback: str | None = None
    finished_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> list[Any]:
        return [self.uuid, self.attempt, self.status, self.returning, self.traceback,
                self.finished_at, self.extra]

    @classmethod
    def from_wire(cls, item: Any) -> TaskOutcome:
        uuid, attempt, status, returning, traceback, finished_at, extra = _array(item, 7, "an outcome")
        return cls(_uuid(uuid), _int(attempt, "attempt"), _str(status, "status"),
                   _optional(returning, bytes, "returning"), _optional(traceback, str, "traceback"),
                   _number(finished_at, "finished_at"), _map(extra, "extra"))


@dataclass(frozen=True, slots=True)
class TaskSnapshot:
    """A task record as the broker shows it to clients."""

    envelope: TaskEnvelope
    status: str
    returning: bytes | None
    traceback: str | None
    updated_at: float
    attempts: int
    extra: dict[str, Any]
    steps: list[bytes] = field(default_factory=list)
    """A generator task's handled values so far (msgpack each)."""

    def to_wire(self) -> list[Any]:
        return [self.envelope.to_wire(), self.status, self.returning, self.traceback,
                self.updated_at, self.attempts, self.extra, self.steps]

    @classmethod
    def from_wire(cls, item: Any) -> TaskSnapshot:
        envelope, status, returning, traceback, updated_at, attempts, extra, steps = _array(item, 8, "a snapshot")
        _check(isinstance(steps, list) and all(isinstance(s, bytes) for s in steps),
               "snapshot steps must be an array of bytes")
        return cls(TaskEnvelope.from_wire(envelope), _str(status, "status"),
                   _optional(returning, bytes, "returning"), _optional(traceback, str, "traceback"),
                   _number(updated_at, "updated_at"), _int(attempts, "attempts"), _map(extra, "extra"), steps)


@dataclass(frozen=True, slots=True)
class BrokerHello:
    """What every client learns from the broker's answers: which broker run this is (a new
    ``boot_id`` means it restarted) and the largest message it accepts."""

    boot_id: bytes
    max_message_size: int

    def to_wire(self) -> list[Any]:
        return [self.boot_id, self.max_message_size]

    @classmethod
    def from_wire(cls, item: Any) -> BrokerHello:
        boot_id, limit = _array(item, 2, "a broker hello")
        _check(isinstance(boot_id, bytes), "a boot id must be bytes")
        return cls(boot_id, _int(limit, "max_message_size"))


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Submit:
    COMMAND: ClassVar[bytes] = b"SUBMIT"
    req_id: int
    wait: float | None
    envelopes: list[TaskEnvelope]

    def body(self) -> list[Any]:
        return [self.req_id, self.wait, [e.to_wire() for e in self.envelopes]]

    @classmethod
    def from_body(cls, body: Any) -> Submit:
        req_id, wait, envelopes = _array(body, 3, "SUBMIT")
        _check(isinstance(envelopes, list), "SUBMIT needs an array of envelopes")
        return cls(_int(req_id, "req_id"), _optional_number(wait, "wait"),
                   [TaskEnvelope.from_wire(e) for e in envelopes])


@dataclass(frozen=True, slots=True)
class Wait:
    COMMAND: ClassVar[bytes] = b"WAIT"
    req_id: int
    uuids: list[bytes]
    wait: float

    def body(self) -> list[Any]:
        return [self.req_id, self.uuids, self.wait]

    @classmethod
    def from_body(cls, body: Any) -> Wait:
        req_id, uuids, wait = _array(body, 3, "WAIT")
        return cls(_int(req_id, "req_id"), _uuids(uuids), _number(wait, "wait"))


@dataclass(frozen=True, slots=True)
class Get:
    COMMAND: ClassVar[bytes] = b"GET"
    req_id: int
    uuids: list[bytes]

    def body(self) -> list[Any]:
        return [self.req_id, self.uuids]

    @classmethod
    def from_body(cls, body: Any) -> Get:
        req_id, uuids = _array(body, 2, "GET")
        return cls(_int(req_id, "req_id"), _uuids(uuids))


@dataclass(frozen=True, slots=True)
class Stats:
    COMMAND: ClassVar[bytes] = b"STATS"
    req_id: int

    def body(self) -> list[Any]:
        return [self.req_id]

    @classmethod
    def from_body(cls, body: Any) -> Stats:
        (req_id,) = _array(body, 1, "STATS")
        return cls(_int(req_id, "req_id"))


@dataclass(frozen=True, slots=True)
class Ping:
    COMMAND: ClassVar[bytes] = b"PING"
    req_id: int

    def body(self) -> list[Any]:
        return [self.req_id]

    @classmethod
    def from_body(cls, body: Any) -> Ping:
        (req_id,) = _array(body, 1, "PING")
        return cls(_int(req_id, "req_id"))


@dataclass(frozen=True, slots=True)
class Flush:
    """Delete the records of every ended task of ``app``; the reply is how many went."""

    COMMAND: ClassVar[bytes] = b"FLUSH"
    req_id: int
    app: str

    def body(self) -> list[Any]:
        return [self.req_id, self.app]

    @classmethod
    def from_body(cls, body: Any) -> Flush:
        req_id, app = _array(body, 2, "FLUSH")
        return cls(_int(req_id, "req_id"), _str(app, "app"))


@dataclass(frozen=True, slots=True)
class Dead:
    """Dead letters (tasks that ended ``error`` for good) of ``app`` (or every app) and ``task_name``
    (or every name). ``op``: ``list`` (up to ``limit``; the reply is [count, snapshots]), ``retry``
    (``uuids``, or every matching dead letter when empty; the reply is the new tasks' snapshots),
    ``purge`` (the reply is how many were deleted)."""

    COMMAND: ClassVar[bytes] = b"DEAD"
    OPS: ClassVar[tuple[str, ...]] = ("list", "retry", "purge")
    BATCH: ClassVar[int] = 10_000
    """Dead letters one ``retry`` of all of them takes at most; the caller asks again for the rest."""
    req_id: int
    op: str
    app: str | None = None
    task_name: str | None = None
    uuids: list[bytes] = field(default_factory=list)
    limit: int | None = None

    def body(self) -> list[Any]:
        return [self.req_id, self.op, self.app, self.task_name, self.uuids, self.limit]

    @classmethod
    def from_body(cls, body: Any) -> Dead:
        req_id, op, app, task_name, uuids, limit = _array(body, 6, "DEAD")
        _check(op in cls.OPS, f"DEAD op must be one of {', '.join(cls.OPS)}")
        limit = _optional(limit, int, "limit")
        _check(limit is None or limit >= 0, "limit must not be negative")
        return cls(_int(req_id, "req_id"), op, _optional(app, str, "app"), _optional(task_name, str, "task_name"),
                   _uuids(uuids), limit)


@dataclass(frozen=True, slots=True)
class Ops:
    """Operating the broker: what a person (``qtasks status``, the dashboard) asks. ``args`` per ``op``
    and the REPLY value::

        status   {}                                    a map (broker, queues, workers, rates, totals,
                                                       failures, timers); see ``OpsClient.status``
        tasks    {status?, name?, app?, limit?}        [view, ...] newest first, at most MAX_LIMIT
        inspect  {uuid}                                view | nil
        retry    {uuid}                                the new task's uuid (an ended error/cancel task
                                                       runs again as a new task linked to this one)
        timers   {app, source, jobs, ttl}              how many jobs are kept; jobs =
                                                       [[task, trigger, next fire (unix s) | nil], ...]

    A ``view`` leaves out (``trimmed``) arguments, results and steps larger than ``MAX_VALUE``
    bytes, so listings stay small; the broker never unpacks them.
    """

    COMMAND: ClassVar[bytes] = b"OPS"
    OPS: ClassVar[tuple[str, ...]] = ("status", "tasks", "inspect", "retry", "timers")
    MAX_LIMIT: ClassVar[int] = 1000
    MAX_VALUE: ClassVar[int] = 16 * 1024
    MAX_STEPS: ClassVar[int] = 100
    MAX_RETRIES: ClassVar[int] = 100
    MAX_TIMER_JOBS: ClassVar[int] = 200
    MAX_TEXT: ClassVar[int] = 200
    req_id: int
    op: str
    args: dict[str, Any] = field(default_factory=dict)

    def body(self) -> list[Any]:
        return [self.req_id, self.op, self.args]

    @classmethod
    def from_body(cls, body: Any) -> Ops:
        req_id, op, args = _array(body, 3, "OPS")
        _check(op in cls.OPS, f"OPS op must be one of {', '.join(cls.OPS)}")
        args = _map(args, "OPS args")
        for key in ("status", "name", "app", "source"):
            value = _optional(args.get(key), str, key)
            _check(value is None or len(value) <= cls.MAX_TEXT, f"{key} is longer than {cls.MAX_TEXT} characters")
        limit = args.get("limit")
        _check(limit is None or (isinstance(limit, int) and not isinstance(limit, bool)
                                 and 0 <= limit <= cls.MAX_LIMIT), f"limit must be 0 to {cls.MAX_LIMIT}")
        if op in ("inspect", "retry"):
            _uuid(args.get("uuid"))
        if op == "timers":
            _check(isinstance(args.get("app"), str) and isinstance(args.get("source"), str),
                   "a timers report needs app and source")
            _number(args.get("ttl"), "ttl")
            jobs = args.get("jobs")
            if not isinstance(jobs, list) or len(jobs) > cls.MAX_TIMER_JOBS:
                raise ValueError(f"jobs must be an array of at most {cls.MAX_TIMER_JOBS}")
            for job in jobs:
                task, trigger, next_fire = _array(job, 3, "a timer job")
                _check(isinstance(task, str) and isinstance(trigger, str) and len(task) <= cls.MAX_TEXT
                       and len(trigger) <= cls.MAX_TEXT, f"a timer job names its task and trigger, in at most "
                                                         f"{cls.MAX_TEXT} characters each")
                _optional_number(next_fire, "next fire")
        return cls(_int(req_id, "req_id"), op, args)


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task record as operators see it: the snapshot (values over ``Ops.MAX_VALUE`` left out and
    named in ``trimmed``) and the uuids of the attempts that ran it again after it (its retry chain
    onward; the one before it is ``extra["retry_parent_uuid"]``)."""

    snapshot: TaskSnapshot
    retries: list[bytes] = field(default_factory=list)
    trimmed: list[str] = field(default_factory=list)

    def to_wire(self) -> list[Any]:
        return [self.snapshot.to_wire(), self.retries, self.trimmed]

    @classmethod
    def from_wire(cls, item: Any) -> TaskView:
        snapshot, retries, trimmed = _array(item, 3, "a task view")
        _check(isinstance(trimmed, list) and all(isinstance(t, str) for t in trimmed), "trimmed must be names")
        return cls(TaskSnapshot.from_wire(snapshot), _uuids(retries), trimmed)


@dataclass(frozen=True, slots=True)
class StateOp:
    """One operation on a State namespace, applied by the state actor beside the broker.

    ``args`` is msgpack of the argument list, opaque to the protocol like task payloads:
    state values are user data and may hold anything msgpack carries.
    """

    COMMAND: ClassVar[bytes] = b"STATE"
    req_id: int
    namespace: tuple[str, str, str]
    op: str
    args: bytes

    def body(self) -> list[Any]:
        return [self.req_id, list(self.namespace), self.op, self.args]

    @classmethod
    def from_body(cls, body: Any) -> StateOp:
        req_id, namespace, op, args = _array(body, 4, "STATE")
        app, state_class, scope = _array(namespace, 3, "a state namespace")
        _check(isinstance(args, bytes), "STATE args must be msgpack bytes")
        return cls(_int(req_id, "req_id"), (_str(app, "app"), _str(state_class, "state class"),
                                            _str(scope, "scope")), _str(op, "op"), args)


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to the request with ``req_id``; the request decides the value's shape."""

    COMMAND: ClassVar[bytes] = b"REPLY"
    req_id: int
    value: Any

    def body(self) -> list[Any]:
        return [self.req_id, self.value]

    @classmethod
    def from_body(cls, body: Any) -> Reply:
        req_id, value = _array(body, 2, "REPLY")
        return cls(_int(req_id, "req_id"), value)

    # Shapes of ``value`` per request, kept here with the rest of the wire format.
    @staticmethod
    def submit_value(accepted: int, hello: BrokerHello) -> list[Any]:
        return [accepted, hello.to_wire()]

    def as_submit_ack(self) -> tuple[int, BrokerHello]:
        accepted, hello = _array(self.value, 2, "a SUBMIT reply")
        return _int(accepted, "accepted"), BrokerHello.from_wire(hello)

    @staticmethod
    def wait_value(unknown: list[bytes], hello: BrokerHello) -> list[Any]:
        return [unknown, hello.to_wire()]

    def as_wait_ack(self) -> tuple[list[bytes], BrokerHello]:
        unknown, hello = _array(self.value, 2, "a WAIT reply")
        return _uuids(unknown), BrokerHello.from_wire(hello)

    def as_hello(self) -> BrokerHello:
        return BrokerHello.from_wire(self.value)

    @staticmethod
    def get_value(snapshots: Iterable[TaskSnapshot | None]) -> list[Any]:
        return [None if s is None else s.to_wire() for s in snapshots]

    @staticmethod
    def watch_value(snapshot: TaskSnapshot | None) -> Any:
        return None if snapshot is None else snapshot.to_wire()

    def as_watch(self) -> TaskSnapshot | None:
        return None if self.value is None else TaskSnapshot.from_wire(self.value)

    def as_packed(self) -> bytes:
        value = self.value
        if not isinstance(value, bytes):
            raise ValueError("a STATE reply must be msgpack bytes")
        return value

    def as_snapshots(self) -> list[TaskSnapshot | None]:
        _check(isinstance(self.value, list), "a GET reply must be an array")
        return [None if s is None else TaskSnapshot.from_wire(s) for s in self.value]

    @staticmethod
    def dead_list_value(count: int, snapshots: Iterable[TaskSnapshot]) -> list[Any]:
        return [count, [s.to_wire() for s in snapshots]]

    def as_views(self) -> list[TaskView]:
        _check(isinstance(self.value, list), "an OPS tasks reply must be an array")
        return [TaskView.from_wire(v) for v in self.value]

    def as_view(self) -> TaskView | None:
        return None if self.value is None else TaskView.from_wire(self.value)

    def as_uuid(self) -> bytes:
        return _uuid(self.value)

    def as_dead_list(self) -> tuple[int, list[TaskSnapshot]]:
        count, snapshots = _array(self.value, 2, "a DEAD list reply")
        _check(isinstance(snapshots, list), "a DEAD list reply holds an array of snapshots")
        return _int(count, "count"), [TaskSnapshot.from_wire(s) for s in snapshots]


@dataclass(frozen=True, slots=True)
class Notify:
    """Pushed to a client when tasks it waits for reach a final status.

    Each item names the uuid the client waited for: when a task was retried, the
    snapshot is that of the last task of its retry chain.
    """

    COMMAND: ClassVar[bytes] = b"NOTIFY"
    items: list[tuple[bytes, TaskSnapshot]]

    def body(self) -> list[Any]:
        return [[uuid, snapshot.to_wire()] for uuid, snapshot in self.items]

    @classmethod
    def from_body(cls, body: Any) -> Notify:
        _check(isinstance(body, list), "NOTIFY needs an array of [uuid, snapshot]")
        return cls([(_uuid(u), TaskSnapshot.from_wire(s)) for u, s in (_array(i, 2, "a NOTIFY item") for i in body)])


@dataclass(frozen=True, slots=True)
class Progress:
    """Pushed to a client watching generator tasks: new handled values (msgpack each)."""

    COMMAND: ClassVar[bytes] = b"PROGRESS"
    steps: list[tuple[bytes, int, bytes]]

    def body(self) -> list[Any]:
        return [list(step) for step in self.steps]

    @classmethod
    def from_body(cls, body: Any) -> Progress:
        _check(isinstance(body, list), "PROGRESS needs an array of [uuid, index, value]")
        return cls([_step(item, 3) for item in body])


def _step(item: Any, size: int) -> Any:
    parts = _array(item, size, "a step")
    _check(isinstance(parts[-1], bytes), "a step value must be msgpack bytes")
    uuid = _uuid(parts[0])
    numbers = tuple(_int(n, "step number") for n in parts[1:-1])
    return (uuid, *numbers, parts[-1])


@dataclass(frozen=True, slots=True)
class Cancel:
    """Client → broker: cancel these tasks (req_id set). Broker → worker: stop running them (req_id nil)."""

    COMMAND: ClassVar[bytes] = b"CANCEL"
    req_id: int | None
    uuids: list[bytes]
    reason: str

    def body(self) -> list[Any]:
        return [self.req_id, self.uuids, self.reason]

    @classmethod
    def from_body(cls, body: Any) -> Cancel:
        req_id, uuids, reason = _array(body, 3, "CANCEL")
        return cls(_optional(req_id, int, "req_id"), _uuids(uuids), _str(reason, "reason"))


@dataclass(frozen=True, slots=True)
class Watch:
    """Follow a task: the reply carries its steps so far, later ones come as PROGRESS, the end as NOTIFY."""

    COMMAND: ClassVar[bytes] = b"WATCH"
    req_id: int
    uuid: bytes
    wait: float

    def body(self) -> list[Any]:
        return [self.req_id, self.uuid, self.wait]

    @classmethod
    def from_body(cls, body: Any) -> Watch:
        req_id, uuid, wait = _array(body, 3, "WATCH")
        return cls(_int(req_id, "req_id"), _uuid(uuid), _number(wait, "wait"))


@dataclass(frozen=True, slots=True)
class Yield:
    """Worker → broker: steps of running generator tasks."""

    COMMAND: ClassVar[bytes] = b"YIELD"
    steps: list[tuple[bytes, int, int, bytes]]
    """(uuid, attempt, index, value)"""

    def body(self) -> list[Any]:
        return [list(step) for step in self.steps]

    @classmethod
    def from_body(cls, body: Any) -> Yield:
        _check(isinstance(body, list), "YIELD needs an array of [uuid, attempt, index, value]")
        return cls([_step(item, 4) for item in body])


@dataclass(frozen=True, slots=True)
class Error:
    """A request (``req_id``) or a message (``req_id`` nil) was refused."""

    COMMAND: ClassVar[bytes] = b"ERROR"
    req_id: int | None
    code: str
    message: str

    def body(self) -> list[Any]:
        return [self.req_id, self.code, self.message]

    @classmethod
    def from_body(cls, body: Any) -> Error:
        req_id, code, message = _array(body, 3, "ERROR")
        return cls(_optional(req_id, int, "req_id"), _str(code, "code"), _str(message, "message"))


@dataclass(frozen=True, slots=True)
class Ready:
    """A worker process announces itself, its queue and its credit (free slots)."""

    COMMAND: ClassVar[bytes] = b"READY"
    queue: str
    concurrency: int
    pid: int
    host: str
    replaces: int | None = None
    """Pid (same host) of an earlier worker process this one takes over from."""
    cause: str | None = None
    """Why that process ended, e.g. ``signal 9, SIGKILL``."""
    running: list[tuple[bytes, int]] = field(default_factory=list)
    tasks: list[str] | None = None
    """The task names it can run; None: any (the broker sends it only tasks it serves)."""
    results_acked: int = 0
    """The last RESULT ``seq`` acknowledged to it: what comes after is sent (again) next."""

    def body(self) -> dict[str, Any]:
        return {"queue": self.queue, "concurrency": self.concurrency, "pid": self.pid,
                "host": self.host, "replaces": self.replaces, "cause": self.cause,
                "running": [list(item) for item in self.running], "tasks": self.tasks,
                "results_acked": self.results_acked}

    @classmethod
    def from_body(cls, body: Any) -> Ready:
        body = _map(body, "READY")
        running = body.get("running", [])
        _check(isinstance(running, list), "running must be an array")
        pairs = [(_uuid(u), _int(a, "attempt")) for u, a in (_array(r, 2, "a running item") for r in running)]
        concurrency = _int(body.get("concurrency"), "concurrency")
        _check(concurrency >= 0, "concurrency must not be negative")
        tasks = body.get("tasks")
        _check(tasks is None or (isinstance(tasks, list) and all(isinstance(t, str) for t in tasks)),
               "tasks must be an array of task names or nil")
        return cls(_str(body.get("queue"), "queue"), concurrency, _int(body.get("pid"), "pid"),
                   _str(body.get("host"), "host"), _optional(body.get("replaces"), int, "replaces"),
                   _optional(body.get("cause"), str, "cause"), pairs, tasks,
                   _int(body.get("results_acked", 0), "results_acked"))


@dataclass(frozen=True, slots=True)
class Welcome:
    COMMAND: ClassVar[bytes] = b"WELCOME"
    boot_id: bytes
    heartbeat_interval: float
    heartbeat_liveness: int
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    """The largest message the broker accepts: a bigger RESULT would cost the worker its connection."""

    def body(self) -> list[Any]:
        return [self.boot_id, self.heartbeat_interval, self.heartbeat_liveness, self.max_message_size]

    @classmethod
    def from_body(cls, body: Any) -> Welcome:
        boot_id, interval, liveness, limit = _array(body, 4, "WELCOME")
        return cls(_optional(boot_id, bytes, "boot_id"), _number(interval, "heartbeat_interval"),
                   _int(liveness, "heartbeat_liveness"), _int(limit, "max_message_size"))


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Both ways, every heartbeat interval. From the broker it carries ``acked``: the highest
    RESULT ``seq`` of that worker it has stored (the worker forgets those outcomes)."""

    COMMAND: ClassVar[bytes] = b"HEARTBEAT"
    acked: int | None = None

    def body(self) -> list[Any]:
        return [] if self.acked is None else [self.acked]

    @classmethod
    def from_body(cls, body: Any) -> Heartbeat:
        _check(isinstance(body, list) and len(body) <= 1, "HEARTBEAT needs an array of at most 1 item")
        return _HEARTBEAT if not body else cls(_int(body[0], "acked"))


_HEARTBEAT = Heartbeat()


@dataclass(frozen=True, slots=True)
class Dispatch:
    COMMAND: ClassVar[bytes] = b"DISPATCH"
    deliveries: list[Delivery]

    def body(self) -> list[Any]:
        return [d.to_wire() for d in self.deliveries]

    @classmethod
    def from_body(cls, body: Any) -> Dispatch:
        _check(isinstance(body, list), "DISPATCH needs an array of deliveries")
        return cls([Delivery.from_wire(d) for d in body])


@dataclass(frozen=True, slots=True)
class Result:
    """Outcomes a worker reports; ``seq`` numbers its RESULT messages (from 1, per broker boot),
    so the broker can acknowledge them and ignore one sent again."""

    COMMAND: ClassVar[bytes] = b"RESULT"
    outcomes: list[TaskOutcome]
    seq: int = 0

    def body(self) -> list[Any]:
        return [self.seq, [o.to_wire() for o in self.outcomes]]

    @classmethod
    def from_body(cls, body: Any) -> Result:
        seq, outcomes = _array(body, 2, "RESULT")
        _check(isinstance(outcomes, list), "RESULT needs an array of outcomes")
        return cls([TaskOutcome.from_wire(o) for o in outcomes], _int(seq, "seq"))


@dataclass(frozen=True, slots=True)
class Return:
    """Deliveries a stopping worker hands back without running them to the end."""

    COMMAND: ClassVar[bytes] = b"RETURN"
    items: list[tuple[bytes, int]]

    def body(self) -> list[Any]:
        return [list(item) for item in self.items]

    @classmethod
    def from_body(cls, body: Any) -> Return:
        _check(isinstance(body, list), "RETURN needs an array of [uuid, attempt]")
        return cls([(_uuid(u), _int(a, "attempt")) for u, a in (_array(i, 2, "a RETURN item") for i in body)])


@dataclass(frozen=True, slots=True)
class Bye:
    COMMAND: ClassVar[bytes] = b"BYE"

    def body(self) -> list[Any]:
        return []

    @classmethod
    def from_body(cls, body: Any) -> Bye:
        _array(body, 0, "BYE")
        return cls()


Message = Union[Submit, Wait, Get, Stats, Ping, Flush, Dead, Ops, StateOp, Cancel, Watch, Reply, Notify, Progress,
                Error, Ready, Welcome, Heartbeat, Dispatch, Result, Yield, Return, Bye]

_BY_COMMAND: dict[bytes, Any] = {
    cls.COMMAND: cls
    for cls in (Submit, Wait, Get, Stats, Ping, Flush, Dead, Ops, StateOp, Cancel, Watch, Reply, Notify, Progress,
                Error, Ready, Welcome, Heartbeat, Dispatch, Result, Yield, Return, Bye)
}


def encode(message: Message) -> Frames:
    """The frames of ``message``, ready for ``send_multipart``."""
    return [HEADER, message.COMMAND, msgpack.packb(message.body(), use_bin_type=True)]


def decode(frames: Sequence[bytes]) -> Message:
    """The message in ``frames``; raises DecodeError or ProtocolVersionError and nothing else."""
    if len(frames) != 3:
        raise DecodeError(f"expected 3 frames [header, command, body], got {len(frames)}", len(frames))
    header, command, body = frames
    if header != HEADER:
        if header[:len(_HEADER_PREFIX)] == _HEADER_PREFIX:
            raise ProtocolVersionError(bytes(header[:32]).decode("ascii", "replace"), VERSION)
        raise DecodeError("not a QTasks message: the first frame is not a protocol header", bytes(header[:32]))
    cls = _BY_COMMAND.get(bytes(command))
    if cls is None:
        raise DecodeError(f"unknown command {bytes(command[:32])!r}", bytes(command[:32]))
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:
        raise DecodeError(f"{cls.__name__.upper()} body is not valid msgpack: {exc}", bytes(body[:64]), exc) from exc
    try:
        message: Message = cls.from_body(obj)
    except Exception as exc:
        raise DecodeError(f"{cls.__name__.upper()} body has the wrong shape: {exc}", obj, exc) from exc
    return message
