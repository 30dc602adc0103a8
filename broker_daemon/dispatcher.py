"""Who gets which task next: queues, the workers serving them, and the in-flight table.

Tasks wait in a priority queue per app (queue name); workers of that app announce
credit. A dispatch hands queued tasks, lowest priority number first, to the workers
with the most free slots (equally free ones take turns), never beyond a worker's
credit, counting the attempt as it goes out. A *suspect* (a task lost together with
others when its process died) runs alone on an idle process, and keeps its place in
line until one is free.

Workers say which task names they run, and a task goes only to a worker that runs its
name. When workers of one queue run different names (two apps that share a name), a
task whose workers are all busy lets the tasks behind it pass, and a task none of the
connected workers runs is *parked* aside until one that runs it joins::

    parked  {queue: {task name: [uuid, ...]}}        counted in ``unserved()``

(The broker refuses at submit a task whose queue has workers none of which runs it.)
"""

from __future__ import annotations

import time
from collections import Counter

from broker_daemon.inflight import InFlightTable
from broker_daemon.queues import PriorityQueue
from broker_daemon.records import Status, TaskRecord
from broker_daemon.storage import Storage
from broker_daemon.workers import WorkerPeer
from qtasks.protocol import Delivery, Dispatch

MAX_PASSED_OVER = 1000
"""Tasks a dispatch turn may pass over (their workers are busy) looking for ones an idle worker runs."""


class Dispatcher:
    def __init__(self, storage: Storage, totals: Counter[str]) -> None:
        self.storage = storage
        self.totals = totals
        self.parked: dict[str, dict[str, list[bytes]]] = {}
        self.queues: dict[str, PriorityQueue] = {}
        self.queue_workers: dict[str, list[WorkerPeer]] = {}
        self.inflight = InFlightTable()
        self._served: dict[str, frozenset[str] | None] = {}
        """Per queue: the names its workers run together (None: some worker runs any)."""
        self._uniform: dict[str, bool] = {}
        """Per queue: every worker runs the same names (then one check per task is enough)."""
        self._dirty: set[str] = set()
        self._turn = 0

    # ------------------------------------------------------------------ membership

    def join(self, worker: WorkerPeer) -> None:
        self.queue_workers.setdefault(worker.queue, []).append(worker)
        self._workers_changed(worker.queue)
        self._unpark(worker)

    def leave(self, worker: WorkerPeer) -> dict[bytes, int]:
        """Forget ``worker``; returns the deliveries it held ({uuid: attempt})."""
        self.queue_workers[worker.queue].remove(worker)
        self._workers_changed(worker.queue)
        return self.inflight.pop_worker(worker.identity)

    def _workers_changed(self, queue: str) -> None:
        workers = self.queue_workers[queue]
        names = [w.tasks for w in workers]
        runs_any = any(n is None for n in names)
        self._served[queue] = None if runs_any else frozenset().union(*(n for n in names if n is not None))
        self._uniform[queue] = all(n == names[0] for n in names)
        self._dirty.add(queue)

    def served_names(self, queue: str) -> frozenset[str] | None:
        """The task names the connected workers of ``queue`` run (None: any, or no worker yet)."""
        if not self.queue_workers.get(queue):
            return None
        return self._served[queue]

    def unserved(self) -> dict[str, int]:
        """Per queue, the tasks waiting for a worker that runs them (none connected runs them)."""
        waiting = {name: len(queue) for name, queue in self.queues.items()
                   if queue and not self.queue_workers.get(name)}
        for name, by_task in self.parked.items():
            count = sum(len(uuids) for uuids in by_task.values())
            if count:
                waiting[name] = waiting.get(name, 0) + count
        return waiting

    def _park(self, record: TaskRecord) -> None:
        envelope = record.envelope
        self.parked.setdefault(envelope.queue, {}).setdefault(envelope.task_name, []).append(envelope.uuid)

    def _unpark(self, worker: WorkerPeer) -> None:
        """Parked tasks that ``worker`` runs go back to the front of their queue, in their order."""
        by_task = self.parked.get(worker.queue)
        if not by_task:
            return
        for name in [n for n in by_task if worker.serves(n)]:
            for uuid in reversed(by_task.pop(name)):
                record = self.storage.get(uuid)
                if record is not None and record.status == Status.NEW and not record.queued:
                    record.queued = True
                    self.queues.setdefault(worker.queue, PriorityQueue()).push_front(
                        record.envelope.priority, uuid)

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

    def dequeue(self, record: TaskRecord) -> None:
        """``record`` ended while it waited in line (cancelled): it leaves the line now."""
        queue = self.queues.get(record.envelope.queue)
        if record.queued and queue is not None:
            record.queued = False
            queue.remove(record.envelope.priority, record.uuid)

    def take_back(self, uuid: bytes, worker: WorkerPeer | None, *, refund: bool) -> None:
        """A delivery came back without a result (undeliverable, handed back): requeue it,
        refunding its attempt (see the attempt rule in :mod:`broker_daemon.records`)."""
        self.release(uuid, worker)
        record = self.storage.get(uuid)
        if record is not None and not record.ended:
            self.requeue(record, refund=refund)

    def requeue(self, record: TaskRecord, *, refund: bool) -> None:
        """Back to the head of its priority: it already waited its turn once."""
        record.taken_back(time.time(), refund=refund)
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
        record.adopted(attempt)
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
        served = self._served[queue_name]
        uniform = self._uniform[queue_name]
        get, save, inflight = self.storage.get, self.storage.save, self.inflight
        batches: dict[bytes, list[Delivery]] = {}
        passed_over: list[TaskRecord] = []
        now = time.time()
        count = 0
        while ready and queue and len(passed_over) < MAX_PASSED_OVER:
            uuid = queue.pop()
            record = get(uuid)
            if record is None:
                continue
            record.queued = False
            if record.status != Status.NEW:  # cancelled or adopted while it waited
                continue
            name = record.envelope.task_name
            if served is not None and name not in served:
                self._park(record)  # no connected worker runs it
                continue
            able = ready if uniform else [w for w in ready if w.serves(name)]
            if not able:  # its workers are all busy: let the tasks behind it pass
                passed_over.append(record)
                continue
            if record.suspect:
                worker = next((w for w in able if w.busy == 0), None)
                if worker is None:
                    passed_over.append(record)
                    if uniform:
                        break  # keep its place; an idle process will take it
                    continue
                worker.isolating = uuid
            else:
                worker = able[0] if len(able) == 1 else max(able, key=_free_slots)
            attempt = record.dispatched(now)  # the attempt counts as it goes out
            save(record)
            inflight.add(uuid, worker.identity, attempt)
            worker.busy += 1
            batch = batches.get(worker.identity)
            if batch is None:
                batch = batches[worker.identity] = []
            batch.append(Delivery(record.envelope, attempt))
            count += 1
            if worker.free <= 0:
                ready.remove(worker)
        for record in reversed(passed_over):  # back in front, in their order
            record.queued = True
            queue.push_front(record.envelope.priority, record.uuid)
        self.totals["dispatched"] += count
        return [(identity, Dispatch(deliveries)) for identity, deliveries in batches.items()]


def _free_slots(worker: WorkerPeer) -> int:
    return worker.free
