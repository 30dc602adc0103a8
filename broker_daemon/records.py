"""The broker's task record: the immutable envelope plus what happened to it.

Following dramatiq's Message/MessageProxy split, everything that changes per
delivery (status, attempts, which worker runs it) lives here, never in the
envelope the client built. Every change of status is one method below::

    new ──dispatched()──▶ process ──finished()──▶ success | error | cancel
     ▲                      │   └───retried()──▶ retry (a child task carries the chain on)
     └──── taken_back() ────┘   failed(): the broker itself ends it (attempts used up, ...)
                                cancelled(): at once, from any status that has not ended

A record that ends ``error`` is a **dead letter** (``dead``) until it is retried by hand
(``revived``: a new task takes over its chain) or purged.

**The attempt rule.** An attempt is counted when a delivery goes out (``dispatched``),
so a task that kills its worker cannot skip it; it is refunded (``taken_back(refund=True)``)
when the delivery never ran alone to its end through no fault of the task: it never
reached the worker, the worker handed it back unstarted, or the worker died while
running several tasks (nobody knows which one killed it). A task whose worker died while
it ran alone keeps the attempt; when ``attempts`` reaches the broker's bound it fails.
"""

from __future__ import annotations

from typing import Any

from qtasks.enums import ENDED_STATUSES, TaskStatusEnum
from qtasks.protocol import TaskEnvelope, TaskSnapshot

Status = TaskStatusEnum


class TaskRecord:
    __slots__ = ("envelope", "status", "returning", "traceback", "updated_at", "attempts",
                 "losses", "suspect", "extra", "queued", "steps", "retry_child", "dead")

    def __init__(self, envelope: TaskEnvelope, updated_at: float) -> None:
        self.envelope = envelope
        self.status = Status.NEW
        self.returning: bytes | None = None
        self.traceback: str | None = None
        self.updated_at = updated_at
        self.attempts = 0
        """Deliveries counted so far (see the attempt rule above)."""
        self.losses = 0
        """Deliveries that ended because their worker was lost."""
        self.suspect = False
        """Lost with its worker once: from then on it runs alone on an idle process."""
        self.extra: dict[str, Any] = {}
        self.queued = False
        """True while the uuid sits in a queue (guards against queueing it twice)."""
        self.steps: list[bytes] = []
        """A generator task's handled values so far, msgpack each."""
        self.retry_child: bytes | None = None
        """The task that retries this one (status ``retry``, or a dead letter retried by hand)."""
        self.dead = False
        """It ended ``error`` for good (its retries or worker losses used up): a dead letter."""

    @property
    def uuid(self) -> bytes:
        return self.envelope.uuid

    @property
    def ended(self) -> bool:
        """The record never changes again."""
        return self.status in ENDED_STATUSES

    def snapshot(self) -> TaskSnapshot:
        return TaskSnapshot(self.envelope, self.status, self.returning, self.traceback,
                            self.updated_at, self.attempts, self.extra, self.steps)

    # ------------------------------------------------------------------ transitions

    def dispatched(self, now: float) -> int:
        """It goes out to a worker: the attempt counts now. Returns the attempt number."""
        self.attempts += 1
        self.status = Status.PROCESS
        self.updated_at = now
        return self.attempts

    def adopted(self, attempt: int) -> None:
        """A reconnecting worker still runs this delivery."""
        self.status = Status.PROCESS
        self.attempts = max(self.attempts, attempt)

    def lost(self, *, shared: bool, max_attempts: int) -> bool:
        """Its worker was lost while running it (``shared``: with other tasks); from now on it
        runs alone. True while attempts are left, after refunding a shared loss."""
        self.losses += 1
        self.suspect = True
        if shared:
            self.attempts -= 1
        return self.attempts < max_attempts

    def taken_back(self, now: float, *, refund: bool) -> None:
        """Its delivery ended without a result; it waits for another one."""
        if refund:
            self.attempts -= 1
        self.status = Status.NEW
        self.updated_at = now

    def finished(self, status: str, returning: bytes | None, traceback: str | None,
                 extra: dict[str, Any], now: float) -> None:
        """A worker reported its result (``status`` is final)."""
        self.status = Status(status)
        self.returning = returning
        self.traceback = traceback
        self.updated_at = now
        self.dead = self.status == Status.ERROR
        if extra:
            self.extra.update(extra)

    def retried(self, child: bytes, child_text: str, remaining: int, traceback: str | None,
                now: float) -> None:
        """It failed and a child task runs it again (``remaining`` runs were left before this one)."""
        self.status = Status.RETRY
        self.traceback = traceback
        self.updated_at = now
        self.retry_child = child
        self.extra.update(retry=remaining, retry_child_uuid=child_text)

    def failed(self, traceback: str, now: float) -> None:
        """The broker ends it as error itself (no worker reported a result)."""
        self.status = Status.ERROR
        self.traceback = traceback
        self.updated_at = now
        self.dead = True

    def revived(self, child: bytes, child_text: str, now: float) -> None:
        """A dead letter retried by hand: ``child`` runs it again, and waits on it follow there."""
        self.dead = False
        self.retry_child = child
        self.updated_at = now
        self.extra["retry_child_uuid"] = child_text

    def cancelled(self, reason: str, now: float) -> None:
        self.status = Status.CANCEL
        self.extra["cancel_reason"] = reason
        self.updated_at = now
