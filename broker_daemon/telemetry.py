"""What the broker has been doing, kept small enough to update on every task event.

The core calls one method per event (submitted, finished, retried, lost); each costs a few
dict and list operations, and none runs per dispatch: a record's ``updated_at`` is its
dispatch time while it runs, so queue wait and run time are both measured when it ends.
Everything here is bounded::

    rates      the running totals (submitted, finished, failed) as they were once a second
               over the last minute (``sample``, from the broker's tick: nothing per event)
    failures   {exception type: Failure}  at most MAX_FAILURE_TYPES, least recent dropped
    per task   {task name: TaskStats}     at most MAX_TASK_NAMES, later names pooled as "other"
               TaskStats: counts per outcome, queue-wait and run-time histograms

``status`` and the Prometheus collector read it at request or scrape time, so routing pays
for nothing but the updates. The collector reads from another thread: it copies the dicts
first (one C-level call each, atomic under the GIL) and tolerates counts one event apart.
"""

from __future__ import annotations

import time
import uuid as uuid_module
from bisect import bisect_left
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Optional

from qtasks.enums import TaskStatusEnum

if TYPE_CHECKING:
    from broker_daemon.records import TaskRecord

WINDOW = 60
"""Seconds the rates cover."""
MAX_FAILURE_TYPES = 50
MAX_TASK_NAMES = 200
OTHER = "other"
"""The task-name label of every name past ``MAX_TASK_NAMES`` (metrics' label cardinality stays bounded)."""
MAX_MESSAGE = 500
"""Characters of a failure's message kept."""
TAIL = 4096
"""Characters at the end of a traceback looked at for its exception."""
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
"""Upper bounds (seconds) of the queue-wait and run-time histograms (Prometheus' defaults, then longer)."""
OUTCOMES = ("submitted", "succeeded", "failed", "retried", "cancelled", "lost")

_SUBMITTED, _SUCCEEDED, _FAILED, _RETRIED, _CANCELLED, _LOST = range(len(OUTCOMES))
_FINAL: dict[str, int] = {TaskStatusEnum.SUCCESS: _SUCCEEDED, TaskStatusEnum.ERROR: _FAILED,
                          TaskStatusEnum.CANCEL: _CANCELLED}


class Histogram:
    """Counts per bucket (the last one: above every bound) and their sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        if seconds < 0.0:  # another host's clock
            seconds = 0.0
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

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
        """Seconds from submit to the delivery whose result ended it (observed at the result)."""
        self.run = Histogram()
        """Seconds from that delivery to its result."""


@dataclass(slots=True)
class Failure:
    count: int
    uuid: bytes
    name: str
    at: float
    message: str


class Rates:
    """Per second over the last ``WINDOW`` seconds: the running totals now minus those of a minute ago.

    ``sample`` keeps the totals once a second at most (the broker calls it on every tick); the
    oldest sample kept is the newest one at least ``WINDOW`` seconds old (or the start, all zeros),
    so the window is ``WINDOW`` seconds plus at most the time between two samples.
    """

    __slots__ = ("samples",)

    def __init__(self, kinds: int, now: float) -> None:
        self.samples: deque[tuple[float, tuple[int, ...]]] = deque([(now, (0,) * kinds)])

    def sample(self, totals: tuple[int, ...], now: float) -> None:
        samples = self.samples
        if now - samples[-1][0] >= 1.0:
            samples.append((now, totals))
        while len(samples) > 1 and samples[1][0] <= now - WINDOW:
            samples.popleft()

    def per_second(self, totals: tuple[int, ...]) -> tuple[float, ...]:
        base = self.samples[0][1]
        return tuple((now - then) / WINDOW for now, then in zip(totals, base, strict=True))


def exception_of(traceback: Optional[str]) -> tuple[str, str]:
    """(exception type, message) from a traceback's last line, e.g. ``ValueError: bad input``."""
    lines = [line for line in (traceback or "")[-TAIL:].strip().splitlines() if line.strip()]
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

    def __init__(self, now: Optional[float] = None) -> None:
        self.rates = Rates(3, time.time() if now is None else now)
        self.failures: OrderedDict[str, Failure] = OrderedDict()
        self.tasks: dict[str, TaskStats] = {}

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

    def submitted(self, names: Iterable[str]) -> None:
        tasks = self.tasks
        for name in names:
            (tasks.get(name) or self._task(name)).outcomes[_SUBMITTED] += 1

    def finished(self, record: TaskRecord, began: Optional[float] = None) -> None:
        """It ended ``success``, ``error`` or ``cancel`` (``updated_at``: when); ``began``: when the run
        that ended it was dispatched (None: the broker ended it, no run is timed)."""
        envelope = record.envelope
        name = envelope.task_name
        stats = self.tasks.get(name) or self._task(name)
        outcome = _FINAL.get(record.status)
        if outcome is None:
            return
        stats.outcomes[outcome] += 1
        if began is not None:
            stats.wait.observe(began - envelope.created_at)
            stats.run.observe(record.updated_at - began)
        if outcome == _FAILED:
            self._failed(envelope.uuid, name, record.traceback, record.updated_at)

    def retried(self, record: TaskRecord, traceback: Optional[str], now: float) -> None:
        """Its run failed and a child task runs it again (call it while ``updated_at`` is still when
        that run was dispatched)."""
        envelope = record.envelope
        stats = self._task(envelope.task_name)
        stats.outcomes[_RETRIED] += 1
        stats.wait.observe(record.updated_at - envelope.created_at)
        stats.run.observe(now - record.updated_at)
        self._failed(envelope.uuid, envelope.task_name, traceback, now)

    def lost(self, record: TaskRecord) -> None:
        """The worker running it was lost."""
        self._task(record.envelope.task_name).outcomes[_LOST] += 1

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

    def totals(self) -> tuple[int, int, int]:
        """(submitted, finished, failed) since the start, every task name together."""
        submitted = finished = failed = 0
        for stats in list(self.tasks.values()):
            outcomes = stats.outcomes
            submitted += outcomes[_SUBMITTED]
            finished += outcomes[_SUCCEEDED] + outcomes[_FAILED] + outcomes[_CANCELLED]
            failed += outcomes[_FAILED]
        return submitted, finished, failed

    def sample(self, now: float) -> None:
        """Keep the totals for the rates (once a second at most; the broker calls it on every tick)."""
        self.rates.sample(self.totals(), now)

    def rates_now(self) -> dict[str, float]:
        """Per second over the last minute."""
        return dict(zip(("submitted", "finished", "failed"), self.rates.per_second(self.totals()), strict=True))

    def failures_now(self) -> list[dict[str, Any]]:
        """Newest first."""
        return [{"exception": kind, "count": f.count,
                 "last": {"uuid": _text(f.uuid), "name": f.name, "at": f.at, "message": f.message}}
                for kind, f in reversed(list(self.failures.items()))]



def _text(uuid: bytes) -> str:
    return str(uuid_module.UUID(bytes=uuid))
