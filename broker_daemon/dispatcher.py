"""Who gets which task next: queues, the workers serving them, and the in-flight table.

Tasks wait in a priority queue per app (queue name); workers of that app announce
credit. A dispatch hands queued tasks, lowest priority number first, to the workers
with the most free slots (equally free ones take turns), never beyond a worker's
credit, counting the attempt as it goes out. A *suspect* (a task lost together with
others when its process died) runs alone on an idle process, and keeps its place in
line until one is free.
"""

from __future__ import annotations

import time
from collections import Counter

from broker_daemon.inflight import InFlightTable
from broker_daemon.queues import PriorityQueue
from broker_daemon.records import TaskRecord
from broker_daemon.storage import Storage
from broker_daemon.workers import WorkerPeer
from qtasks.protocol import Delivery, Dispatch

NEW, PROCESS = "new", "process"


class Dispatcher:
    def __init__(self, storage: Storage, totals: Counter[str]) -> None:
        self.storage = storage
        self.totals = totals
        self.queues: dict[str, PriorityQueue] = {}
        self.queue_workers: dict[str, list[WorkerPeer]] = {}
        self.inflight = InFlightTable()
        self._dirty: set[str] = set()
        self._turn = 0

    # ------------------------------------------------------------------ membership

    def join(self, worker: WorkerPeer) -> None:
        self.queue_workers.setdefault(worker.queue, []).append(worker)
        self._dirty.add(worker.queue)

    def leave(self, worker: WorkerPeer) -> dict[bytes, int]:
        """Forget ``worker``; returns the deliveries it held ({uuid: attempt})."""
        self.queue_workers[worker.queue].remove(worker)
        self._dirty.add(worker.queue)
        return self.inflight.pop_worker(worker.identity)

    def changed(self, worker: WorkerPeer) -> None:
        """Its credit changed: its queue may dispatch again."""
        self._dirty.add(worker.queue)

    # ------------------------------------------------------------------ tasks

    def enqueue(self, record: TaskRecord) -> None:
        if record.queued:
            return
        record.queued = True
        envelope = record.envelope
        queue = self.queues.get(envelope.queue)
        if queue is None:
            queue = self.queues[envelope.queue] = PriorityQueue()
        queue.push(envelope.priority, envelope.uuid)
        self._dirty.add(envelope.queue)

    def requeue(self, record: TaskRecord) -> None:
        """Back to the head of its priority: it already waited its turn once."""
        record.status = NEW
        record.updated_at = time.time()
        self.storage.save(record)
        self.totals["requeued"] += 1
        if record.queued:
            return
        record.queued = True
        envelope = record.envelope
        queue = self.queues.setdefault(envelope.queue, PriorityQueue())
        queue.push_front(envelope.priority, envelope.uuid)
        self._dirty.add(envelope.queue)

    def adopt(self, record: TaskRecord, worker: WorkerPeer, attempt: int) -> None:
        """``worker`` already runs this delivery (it reconnected): book it as in flight there."""
        record.status = PROCESS
        record.attempts = max(record.attempts, attempt)
        self.inflight.add(record.uuid, worker.identity, attempt)
        worker.busy += 1
        self.storage.save(record)

    def release(self, uuid: bytes, worker: WorkerPeer | None) -> None:
        """The delivery of ``uuid`` ended; its slot is free again."""
        self.inflight.remove(uuid)
        if worker is not None:
            worker.busy -= 1
            if worker.isolating == uuid:
                worker.isolating = None
            self._dirty.add(worker.queue)

    def dispatch(self) -> list[tuple[bytes, Dispatch]]:
        """Everything that can go out now, one DISPATCH per worker."""
        messages: list[tuple[bytes, Dispatch]] = []
        while self._dirty:
            messages.extend(self._dispatch(self._dirty.pop()))
        return messages

    def _dispatch(self, queue_name: str) -> list[tuple[bytes, Dispatch]]:
        queue = self.queues.get(queue_name)
        if not queue:
            return []
        ready = [w for w in self.queue_workers.get(queue_name, ()) if w.free > 0]
        if not ready:
            return []
        if len(ready) > 1:  # rotate, so equally free workers take turns
            self._turn = (self._turn + 1) % len(ready)
            ready = ready[self._turn:] + ready[:self._turn]
        get, save, inflight = self.storage.get, self.storage.save, self.inflight
        batches: dict[bytes, list[Delivery]] = {}
        now = time.time()
        count = 0
        while ready and queue:
            uuid = queue.pop()
            record = get(uuid)
            if record is None:
                continue
            record.queued = False
            if record.status != NEW:  # cancelled or adopted while it waited
                continue
            if record.suspect:
                worker = next((w for w in ready if w.busy == 0), None)
                if worker is None:
                    record.queued = True
                    queue.push_front(record.envelope.priority, uuid)
                    break  # keep its place; an idle process will take it
                worker.isolating = uuid
            else:
                worker = ready[0] if len(ready) == 1 else max(ready, key=_free_slots)
            record.attempts += 1  # counted as it goes out: a SIGKILL cannot skip it
            record.status = PROCESS
            record.updated_at = now
            save(record)
            inflight.add(uuid, worker.identity, record.attempts)
            worker.busy += 1
            batch = batches.get(worker.identity)
            if batch is None:
                batch = batches[worker.identity] = []
            batch.append(Delivery(record.envelope, record.attempts))
            count += 1
            if worker.free <= 0:
                ready.remove(worker)
        self.totals["dispatched"] += count
        return [(identity, Dispatch(deliveries)) for identity, deliveries in batches.items()]


def _free_slots(worker: WorkerPeer) -> int:
    return worker.free
