"""Answers to operators' requests (``OPS``): status, task listings, one task, timer reports.

Everything here reads the core's tables at request time; nothing of it runs on the routing
path. The broker never unpacks user data: task views carry the packed arguments, results and
steps (the client decodes them), leaving out any over ``Ops.MAX_VALUE`` bytes.
"""

from __future__ import annotations

import dataclasses
import time
import uuid as uuid_module
from collections import Counter
from typing import TYPE_CHECKING, Any, Optional

from broker_daemon.records import Status, TaskRecord
from qtasks.protocol import Ops, TaskView
from qtasks.version import __version__

if TYPE_CHECKING:
    from broker_daemon.core import BrokerCore

MAX_TIMER_SOURCES = 100
"""Timer processes whose reports are kept at once (the one due to expire first makes room)."""
MAX_TIMER_TTL = 3600.0
MAX_TRACEBACK = 64 * 1024
"""Characters of a traceback a view carries (its end, where the error is)."""


def text(uuid: bytes) -> str:
    return str(uuid_module.UUID(bytes=uuid))


class TimerReports:
    """What timer processes said about their schedules; a report not refreshed within its ``ttl`` is forgotten::

        {(app, source): (expires at (monotonic), [[task, trigger, next fire | None], ...])}
    """

    def __init__(self) -> None:
        self._reports: dict[tuple[str, str], tuple[float, list[list[Any]]]] = {}

    def report(self, app: str, source: str, jobs: list[list[Any]], ttl: float, now: float) -> int:
        """Keep (or, with no jobs or ``ttl`` 0, drop) the report of ``source``; how many jobs are kept."""
        key = (app, source)
        if not jobs or ttl <= 0:
            self._reports.pop(key, None)
            return 0
        if key not in self._reports and len(self._reports) >= MAX_TIMER_SOURCES:
            del self._reports[min(self._reports, key=lambda k: self._reports[k][0])]
        self._reports[key] = (now + min(ttl, MAX_TIMER_TTL), jobs)
        return len(jobs)

    def listing(self, now: float) -> list[dict[str, Any]]:
        """Every job reported and still fresh, soonest fire first."""
        for key in [k for k, (expires, _) in self._reports.items() if expires <= now]:
            del self._reports[key]
        jobs = [{"app": app, "task": task, "trigger": trigger, "next_fire": next_fire, "source": source}
                for (app, source), (_, reported) in self._reports.items() for task, trigger, next_fire in reported]
        jobs.sort(key=lambda j: (j["next_fire"] is None, j["next_fire"] or 0.0, j["app"], j["task"]))
        return jobs


def status(core: BrokerCore) -> dict[str, Any]:
    """The ``status`` reply (the client adds the URL it asked)."""
    now = time.time()
    dispatcher, storage, telemetry = core.dispatcher, core.storage, core.telemetry
    delayed: Counter[str] = Counter()
    for uuid in core.delayed.uuids():
        record = storage.get(uuid)
        if record is not None and record.status == Status.NEW:
            delayed[record.envelope.queue] += 1
    dead = storage.dead_counts()
    unserved = dispatcher.unserved()
    names = (set(dispatcher.queues) | {q for q, ws in dispatcher.queue_workers.items() if ws}
             | set(delayed) | set(dead) | set(unserved))
    queues = []
    for name in sorted(names):
        queue = dispatcher.queues.get(name)
        queues.append({"name": name, "depth": len(queue) if queue is not None else 0,
                       "by_priority": {str(p): n for p, n in sorted(queue.levels().items())} if queue else {},
                       "delayed": delayed.get(name, 0), "dead": dead.get(name, 0),
                       "unserved": unserved.get(name, 0)})
    workers = []
    for worker in core.workers.values():
        running = []
        for uuid in core.inflight.held(worker.identity):
            record = storage.get(uuid)
            running.append({"uuid": text(uuid), "name": record.envelope.task_name if record else None,
                            # a running record's updated_at is when it was dispatched (steps leave it)
                            "since": record.updated_at if record and record.status == Status.PROCESS else None})
        workers.append({"id": worker.identity.decode("utf-8", "replace"), "host": worker.host, "pid": worker.pid,
                        "queue": worker.queue, "slots": worker.concurrency, "busy": worker.busy,
                        "joined_at": worker.joined_at, "last_seen_ago": time.monotonic() - worker.last_seen,
                        "running": running})
    return {
        "broker": {"boot_id": core.boot_id.hex(), "uptime": now - core.started_at, "started_at": core.started_at,
                   "durable": storage.durable, "version": __version__, "records": len(storage),
                   "in_flight": len(core.inflight), "max_attempts": core.max_attempts},
        "queues": queues,
        "workers": workers,
        "rates": telemetry.rates_now(),
        "totals": dict(core.totals),
        "failures": telemetry.failures_now(),
        "timers": core.timer_reports.listing(time.monotonic()),
    }


def view(core: BrokerCore, record: TaskRecord) -> TaskView:
    """``record`` for an operator: big values left out, and the attempts that ran it again after it."""
    snapshot = record.snapshot()
    envelope = snapshot.envelope
    trimmed = []
    changes: dict[str, Any] = {}
    if len(envelope.payload) > Ops.MAX_VALUE:
        trimmed.append("args")
        changes["envelope"] = dataclasses.replace(envelope, payload=b"")
    if snapshot.returning is not None and len(snapshot.returning) > Ops.MAX_VALUE:
        trimmed.append("returning")
        changes["returning"] = None
    if snapshot.traceback is not None and len(snapshot.traceback) > MAX_TRACEBACK:
        changes["traceback"] = "...\n" + snapshot.traceback[-MAX_TRACEBACK:]
    steps = snapshot.steps
    if len(steps) > Ops.MAX_STEPS or any(len(s) > Ops.MAX_VALUE for s in steps):
        trimmed.append("steps")
        changes["steps"] = [s for s in steps[-Ops.MAX_STEPS:] if len(s) <= Ops.MAX_VALUE]
    if changes:
        snapshot = dataclasses.replace(snapshot, **changes)
    retries: list[bytes] = []
    child = record.retry_child
    while child is not None and len(retries) < Ops.MAX_RETRIES:
        retries.append(child)
        later: Optional[TaskRecord] = core.storage.get(child)
        child = later.retry_child if later is not None else None
    return TaskView(snapshot, retries, trimmed)


def tasks(core: BrokerCore, args: dict[str, Any]) -> list[Any]:
    """The ``tasks`` reply: views of the newest records that match, at most ``limit``."""
    limit = args.get("limit")
    found = core.storage.records(status=args.get("status"), name=args.get("name"), app=args.get("app"),
                                 limit=50 if limit is None else limit)
    return [view(core, record).to_wire() for record in found]
