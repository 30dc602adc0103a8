"""How much one queue may hold: tasks that have not ended, and the bytes of their arguments.

Without a bound anyone who can submit fills the broker's memory (and its data
directory). A submit that would pass ``--max-queued-tasks`` or ``--max-queued-bytes``
for its queue is refused whole, at once, with an error the client can act on; a task
counts from its submit until it ends (queued, delayed, parked or running)::

    tasks  {queue: live tasks}        bytes  {queue: their payload bytes}
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Optional

from broker_daemon.records import TaskRecord
from qtasks.protocol import TaskEnvelope

DEFAULT_MAX_QUEUED_TASKS = 1_000_000
DEFAULT_MAX_QUEUED_BYTES = 1 << 30


class QueueLimits:
    def __init__(self, max_tasks: int = DEFAULT_MAX_QUEUED_TASKS, max_bytes: int = DEFAULT_MAX_QUEUED_BYTES) -> None:
        self.max_tasks = max_tasks
        self.max_bytes = max_bytes
        self.tasks: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()

    def refusal(self, envelopes: Iterable[TaskEnvelope]) -> Optional[str]:
        """Why these envelopes may not be added (None: they may)."""
        tasks: Counter[str] = Counter()
        size: Counter[str] = Counter()
        for envelope in envelopes:
            tasks[envelope.queue] += 1
            size[envelope.queue] += len(envelope.payload)
        for queue, count in tasks.items():
            if self.tasks[queue] + count > self.max_tasks:
                return (f"queue {queue!r} holds {self.tasks[queue]} unfinished task(s); {count} more would pass "
                        f"its limit of {self.max_tasks} (qtasks-broker --max-queued-tasks): the submit was "
                        "refused, nothing of it stored. Let workers catch up, then submit again")
            if self.bytes[queue] + size[queue] > self.max_bytes:
                return (f"queue {queue!r} holds {self.bytes[queue]} bytes of task arguments; {size[queue]} more "
                        f"would pass its limit of {self.max_bytes} (qtasks-broker --max-queued-bytes): the submit "
                        "was refused, nothing of it stored. Let workers catch up, then submit again")
        return None

    def added(self, record: TaskRecord) -> None:
        envelope = record.envelope
        self.tasks[envelope.queue] += 1
        self.bytes[envelope.queue] += len(envelope.payload)

    def ended(self, record: TaskRecord) -> None:
        envelope = record.envelope
        queue = envelope.queue
        self.tasks[queue] -= 1
        self.bytes[queue] -= len(envelope.payload)
        if self.tasks[queue] <= 0:
            del self.tasks[queue]
            self.bytes.pop(queue, None)
