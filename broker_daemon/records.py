"""The broker's task record: the immutable envelope plus what happened to it.

Following dramatiq's Message/MessageProxy split, everything that changes per
delivery (status, attempts, which worker runs it) lives here, never in the
envelope the client built.
"""

from __future__ import annotations

from typing import Any

from qtasks.enums import FINAL_STATUSES
from qtasks.protocol import TaskEnvelope, TaskSnapshot


class TaskRecord:
    __slots__ = ("envelope", "status", "returning", "traceback", "updated_at", "attempts",
                 "losses", "suspect", "extra", "queued", "steps", "retry_child")

    def __init__(self, envelope: TaskEnvelope, status: str, updated_at: float) -> None:
        self.envelope = envelope
        self.status = status
        self.returning: bytes | None = None
        self.traceback: str | None = None
        self.updated_at = updated_at
        self.attempts = 0
        """Deliveries counted so far; incremented when dispatched (a SIGKILL can't skip it)."""
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
        """The task that retries this one (status ``retry``)."""

    @property
    def uuid(self) -> bytes:
        return self.envelope.uuid

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def snapshot(self) -> TaskSnapshot:
        return TaskSnapshot(self.envelope, self.status, self.returning, self.traceback,
                            self.updated_at, self.attempts, self.extra, self.steps)
