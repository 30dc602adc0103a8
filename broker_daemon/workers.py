"""What the broker knows about each connected worker process."""

from __future__ import annotations

import time


class WorkerPeer:
    __slots__ = ("identity", "queue", "concurrency", "busy", "isolating", "pid", "host", "last_seen",
                 "joined_at", "tasks", "results_seq", "suspended")

    def __init__(self, identity: bytes, queue: str, concurrency: int, pid: int, host: str,
                 tasks: list[str] | None = None) -> None:
        self.identity = identity
        self.queue = queue
        self.concurrency = concurrency
        """Credit: how many deliveries it may hold at once (0 = draining, send nothing)."""
        self.busy = 0
        """Deliveries it holds now (kept equal to its rows in the in-flight table)."""
        self.isolating: bytes | None = None
        """A suspect task it runs alone; it gets nothing else until that ends."""
        self.pid = pid
        self.host = host
        self.last_seen = time.monotonic()
        self.joined_at = time.time()
        self.tasks: frozenset[str] | None = None if tasks is None else frozenset(tasks)
        """The task names it runs (None: any)."""
        self.results_seq = 0
        """The last RESULT it sent that the broker has applied (heartbeats acknowledge it)."""
        self.suspended = False
        """Its connection closed: nothing goes to it until it says READY again (see
        ``BrokerCore.connection_closed``)."""

    def serves(self, task_name: str) -> bool:
        return self.tasks is None or task_name in self.tasks

    @property
    def free(self) -> int:
        return 0 if self.isolating is not None else self.concurrency - self.busy

    def describe(self) -> dict[str, object]:
        return {"id": self.identity.decode("utf-8", "replace"), "queue": self.queue,
                "pid": self.pid, "host": self.host, "concurrency": self.concurrency,
                "in_flight": self.busy, "joined_at": self.joined_at,
                "tasks": None if self.tasks is None else sorted(self.tasks)}
