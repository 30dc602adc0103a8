"""What the broker has been doing, kept small enough to update on every task event.

The core calls one method per event (submitted, started, finished, retried, lost); each
costs a few dict and list operations. Everything here is bounded::

    rates      three rings of 60 one-second buckets (submitted, finished, failed), and
               the second each bucket holds: a stale bucket counts as zero
    failures   {exception type: Failure}  at most MAX_FAILURE_TYPES, least recent dropped
    per task   {task name: TaskStats}     at most MAX_TASK_NAMES, later names pooled as "other"
               TaskStats: counts per outcome, queue-wait and run-time histograms
    started    {uuid: (since, name)}      the deliveries running now (as many as in flight)

``status`` and the Prometheus collector read it at request or scrape time, so routing pays
for nothing but the updates. The collector reads from another thread: it copies the dicts
first (one C-level call each, atomic under the GIL) and tolerates counts one event apart.
"""

from __future__ import annotations

import time
import uuid as uuid_module
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from qtasks.enums import TaskStatusEnum
from qtasks.protocol import Dispatch

WINDOW = 60
"""Seconds the rates cover."""
MAX_FAILURE_TYPES = 50
MAX_TASK_NAMES = 200
OTHER = "other"
"""The task-name label of every name past ``MAX_TASK_NAMES`` (metrics' label cardinality stays bounded)."""
MAX_MESSAGE = 500
"""Characters of a failure's message kept."""
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
"""Upper bounds (seconds) of the queue-wait and run-time histograms (Prometheus' defaults, then longer)."""
OUTCOMES = ("submitted", "succeeded", "failed", "retried", "cancelled", "lost")

_SUBMITTED, _SUCCEEDED, _FAILED, _RETRIED, _CANCELLED, _LOST = range(len(OUTCOMES))
_FINAL: dict[str, int] = {TaskStatusEnum.SUCCESS: _SUCCEEDED, TaskStatusEnum.ERROR: _FAILED,
                          TaskStatusEnum.CANCEL: _CANCELLED}


class Histogram:
    """Counts per bucket (the last one: above every bound), their sum and how many."""

    __slots__ = ("counts", "total", "count")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus' shape: (upper bound, observations at or below it), ending with ``+Inf``."""
        running, out = 0, []
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), list(self.counts), strict=True):
            running += count
            out.append((bound, running))
        return out


class TaskStats:
    __slots__ = ("outcomes", "wait", "run")

    def __init__(self) -> None:
        self.outcomes = [0] * len(OUTCOMES)
        self.wait = Histogram()
        """Seconds from submit to the delivery that ran it."""
        self.run = Histogram()
        """Seconds from that delivery to its result."""


@dataclass
class Failure:
    count: int
    uuid: bytes
    name: str
    at: float
    message: str


class Rates:
    """Events per second over the last ``WINDOW`` seconds, from one bucket per second."""

    __slots__ = ("seconds", "counts")

    def __init__(self, kinds: int) -> None:
        self.seconds = [-1] * WINDOW
        self.counts = [[0] * WINDOW for _ in range(kinds)]

    def add(self, kind: int, now: float, n: int = 1) -> None:
        second = int(now)
        slot = second % WINDOW
        if self.seconds[slot] != second:
            self.seconds[slot] = second
            for counts in self.counts:
                counts[slot] = 0
        self.counts[kind][slot] += n

    def per_second(self, kind: int, now: float) -> float:
        """Over the ``WINDOW`` seconds before ``now``'s (the current second is included)."""
        oldest = int(now) - WINDOW
        counts = self.counts[kind]
        return sum(c for s, c in zip(self.seconds, counts, strict=True) if s > oldest) / WINDOW


def exception_of(traceback: Optional[str]) -> tuple[str, str]:
    """(exception type, message) from a traceback's last line, e.g. ``ValueError: bad input``."""
    lines = [line for line in (traceback or "").strip().splitlines() if line.strip()]
    if not lines:
        return "Error", ""
    last = lines[-1].strip()
    head, sep, message = last.partition(": ")
    if sep and head and " " not in head and len(head) <= 200:
        return head.rsplit(".", 1)[-1], message[:MAX_MESSAGE]
    if not sep and last.isidentifier():
        return last, ""
    return "Error", last[:MAX_MESSAGE]


class Telemetry:
    """The broker's counters; ``now`` arguments are ``time.time()`` seconds."""

    def __init__(self) -> None:
        self.rates = Rates(3)
        self.failures: OrderedDict[str, Failure] = OrderedDict()
        self.tasks: dict[str, TaskStats] = {}
        self.started: dict[bytes, tuple[float, str]] = {}

    def _task(self, name: str) -> TaskStats:
        stats = self.tasks.get(name)
        if stats is None:
            if len(self.tasks) >= MAX_TASK_NAMES:
                name = OTHER
                stats = self.tasks.get(name)
            if stats is None:
                stats = self.tasks[name] = TaskStats()
        return stats

    # ------------------------------------------------------------------ events

    def submitted(self, names: Iterable[str], now: float) -> None:
        n = 0
        for name in names:
            self._task(name).outcomes[_SUBMITTED] += 1
            n += 1
        if n:
            self.rates.add(0, now, n)

    def dispatched(self, dispatches: list[tuple[bytes, Dispatch]]) -> None:
        """Deliveries went out to workers: they start now, after waiting since their submit."""
        now = time.time()
        started = self.started
        for _, message in dispatches:
            for delivery in message.deliveries:
                envelope = delivery.envelope
                name = envelope.task_name
                started[envelope.uuid] = (now, name)
                self._task(name).wait.observe(max(0.0, now - envelope.created_at))

    def finished(self, uuid: bytes, name: str, status: str, traceback: Optional[str], now: float) -> None:
        """It ended ``success``, ``error`` or ``cancel``."""
        stats = self._task(name)
        outcome = _FINAL.get(status)
        if outcome is not None:
            stats.outcomes[outcome] += 1
        began = self.started.pop(uuid, None)
        if began is not None:
            stats.run.observe(max(0.0, now - began[0]))
        self.rates.add(1, now)
        if status == TaskStatusEnum.ERROR:
            self.rates.add(2, now)
            self._failed(uuid, name, traceback, now)

    def retried(self, uuid: bytes, name: str, traceback: Optional[str], now: float) -> None:
        """It failed and a child task runs it again."""
        stats = self._task(name)
        stats.outcomes[_RETRIED] += 1
        began = self.started.pop(uuid, None)
        if began is not None:
            stats.run.observe(max(0.0, now - began[0]))
        self._failed(uuid, name, traceback, now)

    def lost(self, uuid: bytes, name: str) -> None:
        """The worker running it was lost."""
        self._task(name).outcomes[_LOST] += 1
        self.started.pop(uuid, None)

    def _failed(self, uuid: bytes, name: str, traceback: Optional[str], now: float) -> None:
        kind, message = exception_of(traceback)
        failures = self.failures
        failure = failures.get(kind)
        if failure is None:
            if len(failures) >= MAX_FAILURE_TYPES:
                failures.popitem(last=False)
            failures[kind] = Failure(1, uuid, name, now, message)
            return
        failure.count += 1
        failure.uuid, failure.name, failure.at, failure.message = uuid, name, now, message
        failures.move_to_end(kind)

    # ------------------------------------------------------------------ reading

    def rates_now(self, now: Optional[float] = None) -> dict[str, float]:
        now = time.time() if now is None else now
        return {kind: self.rates.per_second(i, now) for i, kind in enumerate(("submitted", "finished", "failed"))}

    def failures_now(self) -> list[dict[str, Any]]:
        """Newest first."""
        return [{"exception": kind, "count": f.count,
                 "last": {"uuid": _text(f.uuid), "name": f.name, "at": f.at, "message": f.message}}
                for kind, f in reversed(list(self.failures.items()))]

    def since(self, uuid: bytes) -> Optional[float]:
        began = self.started.get(uuid)
        return None if began is None else began[0]


def _text(uuid: bytes) -> str:
    return str(uuid_module.UUID(bytes=uuid))
