"""The broker's logic without sockets (sans-IO).

:class:`BrokerCore` takes decoded messages (``handle``), the passing of time
(``tick``) and failed sends (``undeliverable``), and queues what must go out;
the socket loop in :mod:`broker_daemon.server` drains that with ``flush``.
Everything here runs on one thread, one message at a time, so nothing is locked.

A task's life in the broker::

    SUBMIT ─▶ new ─(queue)─▶ DISPATCH: attempts += 1, process ─▶ RESULT ─▶ success | error | cancel
                  ▲                       │   │ YIELD: steps ─▶ PROGRESS     │
                  └── worker lost, ───────┘   │                            └─▶ NOTIFY waiting clients
                      attempts left           │ worker lost, none left ─▶ error "worker lost N times"
                                              └ RESULT retry ─▶ "retry", a child task (new, queued now
                                                or held until its delay) inherits the waiters
    CANCEL ─▶ cancel at once (a running one's worker is told to stop it)
"""

from __future__ import annotations

import difflib
import logging
import os
import time
import uuid as uuid_module
from collections import Counter
from typing import Any, Callable, Optional

from broker_daemon.delayed import DelayedTasks
from broker_daemon.dispatcher import Dispatcher
from broker_daemon.limits import QueueLimits
from broker_daemon.ops import TimerReports
from broker_daemon.ops import status as ops_status
from broker_daemon.ops import tasks as ops_tasks
from broker_daemon.ops import view as ops_view
from broker_daemon.records import Status, TaskRecord
from broker_daemon.state import StateActor, StateOpError
from broker_daemon.storage import MemoryStorage, Storage
from broker_daemon.telemetry import Telemetry
from broker_daemon.waiters import Waiters
from broker_daemon.workers import WorkerPeer
from qtasks.enums import FINAL_STATUSES
from qtasks.protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    BrokerHello,
    Bye,
    Cancel,
    Dead,
    Dispatch,
    Error,
    Flush,
    Get,
    Heartbeat,
    Message,
    Notify,
    Ops,
    Ping,
    Progress,
    Ready,
    Reply,
    Result,
    Return,
    StateOp,
    Stats,
    Submit,
    TaskEnvelope,
    TaskSnapshot,
    Wait,
    Watch,
    Welcome,
    Yield,
)

log = logging.getLogger("qtasks.broker")

WAIT_MARGIN = 5.0
"""Seconds a waiter registration outlives the client's own timeout before it is forgotten."""
DEFAULT_RESULT_TTL = 86_400.0
"""Seconds an ended record is kept (``--result-ttl``; 0 keeps them); dead letters stay until handled."""
EXPIRE_EVERY = 10.0
"""Seconds between sweeps for expired records."""
ORPHAN_GRACE_BEATS = 6
"""After a restart, heartbeat intervals a task that was running waits for its worker to come back
and claim it (or send its result) before it is counted lost and runs again."""
RESTORE_REPORT_EVERY = 1000
"""Records taken up between two progress reports at start (a report costs more than a record)."""

_HEARTBEAT = Heartbeat()


class BrokerCore:
    def __init__(
        self,
        storage: Storage | None = None,
        *,
        max_attempts: int = 3,
        heartbeat_interval: float = 1.0,
        heartbeat_liveness: int = 3,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        result_ttl: float = DEFAULT_RESULT_TTL,
        limits: QueueLimits | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.storage = storage if storage is not None else MemoryStorage()
        self.max_attempts = max_attempts
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_liveness = heartbeat_liveness
        self.boot_id = os.urandom(8)
        self.max_message_size = max_message_size
        self.hello = BrokerHello(self.boot_id, max_message_size)
        self.started_at = time.time()
        self._last_tick = time.monotonic()
        self.totals: Counter[str] = Counter()
        self.workers: dict[bytes, WorkerPeer] = {}
        self.dispatcher = Dispatcher(self.storage, self.totals)
        self.inflight = self.dispatcher.inflight
        self.waiters = Waiters()
        self.watchers = Waiters()
        """Clients following generator steps (they are waiters for the end too)."""
        self.delayed = DelayedTasks()
        self.state = StateActor()
        self.result_ttl = result_ttl
        self.limits = limits if limits is not None else QueueLimits()
        self.telemetry = Telemetry()
        self.timer_reports = TimerReports()
        self._orphans: dict[bytes, TaskRecord] = {}
        """After a restart: tasks that were running, until their worker claims them or the grace ends."""
        self._orphans_until = 0.0
        self._gone_peers: dict[bytes, float] = {}
        """Peers whose connection closed, until when their waits are kept."""
        self._next_expiry = time.monotonic() + EXPIRE_EVERY
        self._outgoing: list[tuple[bytes, Message]] = []
        self._notify: dict[bytes, list[tuple[bytes, TaskSnapshot]]] = {}
        self._progress: dict[bytes, list[tuple[bytes, int, bytes]]] = {}
        self._handlers: dict[type, Callable[[bytes, Any], None]] = {
            Submit: self._on_submit,
            Wait: self._on_wait,
            Get: self._on_get,
            Stats: self._on_stats,
            Ping: self._on_ping,
            Flush: self._on_flush,
            Dead: self._on_dead,
            Ops: self._on_ops,
            StateOp: self._on_state,
            Cancel: self._on_cancel,
            Watch: self._on_watch,
            Ready: self._on_ready,
            Heartbeat: self._on_heartbeat,
            Result: self._on_result,
            Yield: self._on_yield,
            Return: self._on_return,
            Bye: self._on_bye,
        }

    # ------------------------------------------------------------------ the loop's interface

    def restore(self, progress: Optional[Callable[[int], Any]] = None) -> int:
        """Take up what a data directory kept: queued and delayed tasks go back in line, tasks that
        were running wait for their worker to come back (see ``ORPHAN_GRACE_BEATS``), State returns.
        Returns how many unfinished tasks there were; ``progress`` is told the count so far now
        and then, and at the end."""
        now = time.time()
        restored = 0
        for record in self.storage.live():
            restored += 1
            if progress is not None and restored % RESTORE_REPORT_EVERY == 0:
                progress(restored)
            self.limits.added(record)
            if record.status == Status.PROCESS:
                self._orphans[record.uuid] = record
                continue
            eta = record.extra.get("eta")
            if isinstance(eta, (int, float)) and eta > now:
                self.delayed.add(eta, record.uuid)
            else:
                record.extra.pop("eta", None)
                self.dispatcher.enqueue(record)
        if progress is not None:
            progress(restored)
        self.state.load(self.storage.load_state())
        if self._orphans:
            self._orphans_until = time.monotonic() + self.heartbeat_interval * ORPHAN_GRACE_BEATS
        return restored

    def persist(self) -> None:
        """Store everything changed since the last call (the loop calls it before it sends anything)."""
        storage = self.storage
        if self.state.changed:
            for namespace, cleared, keys in self.state.take_changed():
                storage.save_state(namespace, cleared, keys)
        storage.commit()

    def handle(self, peer: bytes, message: Message) -> None:
        """Apply one decoded message from ``peer``."""
        worker = self.workers.get(peer)
        if worker is not None and not worker.suspended:
            worker.last_seen = time.monotonic()
        if self._gone_peers and peer in self._gone_peers:
            del self._gone_peers[peer]  # it came back
        handler = self._handlers.get(type(message))
        if handler is None:
            self.reply_error(peer, getattr(message, "req_id", None), "unexpected",
                             f"{message.COMMAND.decode()} is not a command the broker accepts")
            return
        handler(peer, message)

    def flush(self) -> list[tuple[bytes, Message]]:
        """Dispatch what can be dispatched and hand over everything that must be sent."""
        # dispatches go out first: they are on every task's critical path
        self._outgoing[:0] = self.dispatcher.dispatch()
        if self._progress:
            for peer, steps in self._progress.items():
                self._outgoing.append((peer, Progress(steps)))
            self._progress = {}
        if self._notify:
            for peer, items in self._notify.items():
                self._outgoing.append((peer, Notify(items)))
            self._notify = {}
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def next_wakeup(self) -> Optional[float]:
        """Seconds until a delayed task is due (the loop must wake then), or None."""
        return self.delayed.timeout()

    def release_delayed(self) -> None:
        """Queue the delayed tasks whose time has come (cancelled ones stay out)."""
        for uuid in self.delayed.due():
            record = self.storage.get(uuid)
            if record is not None and record.status == Status.NEW:
                record.extra.pop("eta", None)
                self.dispatcher.enqueue(record)

    def tick(self) -> None:
        """Called every heartbeat interval: declare silent workers lost, send heartbeats.

        Time the broker itself spent not running (a late tick: the machine was busy) is
        not held against the workers: they could not be heard while nobody listened.
        """
        now = time.monotonic()
        lag = max(0.0, now - self._last_tick - self.heartbeat_interval)
        self._last_tick = now
        limit = self.heartbeat_interval * self.heartbeat_liveness
        for worker in list(self.workers.values()):
            if lag:
                worker.last_seen = min(now, worker.last_seen + lag)
            silent = now - worker.last_seen
            if silent > limit:
                self._lose_worker(worker, f"no heartbeat for {silent:.1f} s")
            elif not worker.suspended:
                self._outgoing.append((worker.identity, Heartbeat(worker.results_seq) if worker.results_seq
                                       else _HEARTBEAT))
        self.waiters.expire(now)
        self.watchers.expire(now)
        self.telemetry.sample(time.time())
        if self._orphans and now >= self._orphans_until:
            self._requeue_orphans()
        if self._gone_peers:
            self._drop_gone_peers(now)
        if now >= self._next_expiry:
            self._next_expiry = now + min(EXPIRE_EVERY, max(self.result_ttl, self.heartbeat_interval))
            self.expire_records()

    def expire_records(self) -> int:
        """Delete the ended records older than the result TTL (dead letters stay)."""
        if not self.result_ttl:
            return 0
        expired = self.storage.expire(time.time() - self.result_ttl)
        if expired:
            self.totals["expired"] += expired
            log.debug("deleted %d ended task record(s) older than %g s", expired, self.result_ttl)
        return expired

    def _requeue_orphans(self) -> None:
        """Tasks that were running before a restart and that no worker claimed: their worker is gone."""
        orphans, self._orphans = self._orphans, {}
        requeued = failed = 0
        for record in orphans.values():
            if record.ended or record.status != Status.PROCESS or self.inflight.get(record.uuid) is not None:
                continue
            self.totals["lost"] += 1
            self.telemetry.lost(record)
            if record.lost(shared=False, max_attempts=self.max_attempts):
                requeued += 1
                self.dispatcher.requeue(record, refund=False)
            else:
                failed += 1
                self._fail(record, f"WorkerLostError: the worker running this task did not come back after the "
                                   f"broker restarted; gave up after {record.attempts} attempts "
                                   f"(qtasks-broker --max-attempts {self.max_attempts})")
        if requeued or failed:
            log.warning("%d task(s) that were running when the broker stopped were not claimed by their worker: "
                        "%d requeued, %d failed for good", requeued + failed, requeued, failed)

    def forget_peer(self, peer: bytes) -> None:
        """A peer's connection closed. Its waits are dropped unless it is heard from again within
        ``WAIT_MARGIN`` (a client whose connection broke reconnects under the same identity)."""
        self._gone_peers[peer] = time.monotonic() + WAIT_MARGIN

    def _drop_gone_peers(self, now: float) -> None:
        for peer in [p for p, until in self._gone_peers.items() if until <= now]:
            del self._gone_peers[peer]
            dropped = self.waiters.drop_peer(peer) + self.watchers.drop_peer(peer)
            if dropped:
                self.totals["waits_dropped"] += dropped
                log.debug("dropped %d wait(s) of a client that went away", dropped)

    def undeliverable(self, peer: bytes, message: Message, reason: str) -> None:
        """A send to ``peer`` failed (it vanished): take back what it was given, uncounted."""
        if not isinstance(message, Dispatch):
            log.debug("dropped %s for vanished peer %r: %s", message.COMMAND.decode(), peer, reason)
            return
        for delivery in message.deliveries:
            uuid = delivery.envelope.uuid
            if self.inflight.get(uuid) == (peer, delivery.attempt):  # it never ran: refund it
                self.dispatcher.take_back(uuid, self.workers.get(peer), refund=True)
        worker = self.workers.get(peer)
        if worker is not None:
            self._lose_worker(worker, reason)

    def connection_closed(self, peer: bytes) -> None:
        """The connection a registered worker came on closed (the socket loop tells, with CURVE on).

        A peer picks its own routing id, so whoever connects next under that name may not be
        the worker: until a READY (which only a worker key may send) arrives on a new
        connection, nothing more goes to the name, and nothing it sends keeps the worker
        alive. What the worker holds stays its own until it comes back or its liveness ends.
        """
        worker = self.workers.get(peer)
        if worker is None or worker.suspended:
            return
        worker.suspended = True
        worker.concurrency = 0
        self.dispatcher.changed(worker)
        log.info("worker %s (pid %d): its connection closed; nothing more goes to it until it registers again",
                 peer.decode("utf-8", "replace"), worker.pid)

    def reply_error(self, peer: bytes, req_id: int | None, code: str, message: str) -> None:
        self._outgoing.append((peer, Error(req_id, code, message)))

    # ------------------------------------------------------------------ clients

    def _on_submit(self, peer: bytes, msg: Submit) -> None:
        now = time.time()
        known = self.storage.known(e.uuid for e in msg.envelopes)
        new = list({e.uuid: e for e in msg.envelopes if e.uuid not in known}.values())  # a uuid is one task
        refusal = self.limits.refusal(new)
        if refusal is not None:
            self.totals["refused"] += len(new)
            self.reply_error(peer, msg.req_id, "queue-full", refusal)
            return
        self.totals["resubmitted"] += len(msg.envelopes) - len(new)
        fresh = []
        for envelope in new:
            record = TaskRecord(envelope, now)
            fields = envelope.metadata.get("fields")
            if isinstance(fields, dict):  # record fields an app plugin added at submit
                record.extra.update(fields)
            fresh.append(record)
            self.limits.added(record)
        self.storage.add_many(fresh)
        served = self.dispatcher.served_names
        for record in fresh:
            names = served(record.envelope.queue)
            if names is not None and record.envelope.task_name not in names:
                self._unservable(record, names)
            else:
                self.dispatcher.enqueue(record)
        self.totals["submitted"] += len(fresh)
        self.telemetry.submitted([r.envelope.task_name for r in fresh])
        if msg.wait is not None:
            self._watch(peer, [e.uuid for e in msg.envelopes], msg.wait)
        self._outgoing.append((peer, Reply(msg.req_id, Reply.submit_value(len(fresh), self.hello))))

    def _on_wait(self, peer: bytes, msg: Wait) -> None:
        unknown = self._watch(peer, msg.uuids, msg.wait)
        self._outgoing.append((peer, Reply(msg.req_id, Reply.wait_value(unknown, self.hello))))

    def _watch(self, peer: bytes, uuids: list[bytes], wait: float) -> list[bytes]:
        """Register ``peer`` as waiting for ``uuids`` (to the end of their retry chains);
        returns the uuids nobody knows."""
        deadline = time.monotonic() + max(0.0, wait) + WAIT_MARGIN
        unknown = []
        for uuid in uuids:
            record = self._last_of_chain(self.storage.get(uuid))
            if record is None:
                unknown.append(uuid)
            elif record.status in FINAL_STATUSES:
                self._notify.setdefault(peer, []).append((uuid, record.snapshot()))
            else:
                self.waiters.add(record.uuid, peer, deadline, uuid)
        return unknown

    def _last_of_chain(self, record: Optional[TaskRecord]) -> Optional[TaskRecord]:
        """The task a retried task's chain ends in (the record itself when not retried)."""
        while record is not None and record.retry_child is not None:
            record = self.storage.get(record.retry_child)
        return record

    def _on_get(self, peer: bytes, msg: Get) -> None:
        records = (self.storage.get(uuid) for uuid in msg.uuids)
        snapshots = [None if r is None else r.snapshot() for r in records]
        self._outgoing.append((peer, Reply(msg.req_id, Reply.get_value(snapshots))))

    def _on_cancel(self, peer: bytes, msg: Cancel) -> None:
        if msg.req_id is None:
            self.reply_error(peer, None, "unexpected", "CANCEL from a client needs a req_id")
            return
        snapshots: list[Optional[TaskSnapshot]] = []
        for uuid in msg.uuids:
            record = self._last_of_chain(self.storage.get(uuid))
            if record is not None and not record.ended:
                self._cancel(record, msg.reason or f"{record.envelope.task_name}.cancel")
            snapshots.append(None if record is None else record.snapshot())
        self._outgoing.append((peer, Reply(msg.req_id, Reply.get_value(snapshots))))

    def _cancel(self, record: TaskRecord, reason: str) -> None:
        """End it as cancelled now; a worker running it is told to stop (it answers with a RESULT)."""
        record.cancelled(reason, time.time())
        self.dispatcher.dequeue(record)
        self.totals[Status.CANCEL] += 1
        held = self.inflight.get(record.uuid)
        if held is not None:
            self._outgoing.append((held[0], Cancel(None, [record.uuid], reason)))
        self._finish(record)

    def _on_watch(self, peer: bytes, msg: Watch) -> None:
        record = self._last_of_chain(self.storage.get(msg.uuid))
        if record is not None and not record.ended:
            deadline = time.monotonic() + max(0.0, msg.wait) + WAIT_MARGIN
            self.watchers.add(record.uuid, peer, deadline, msg.uuid)
            self.waiters.add(record.uuid, peer, deadline, msg.uuid)
        snapshot = None if record is None else record.snapshot()
        self._outgoing.append((peer, Reply(msg.req_id, Reply.watch_value(snapshot))))

    def _on_stats(self, peer: bytes, msg: Stats) -> None:
        self._outgoing.append((peer, Reply(msg.req_id, self.stats())))

    def _on_ping(self, peer: bytes, msg: Ping) -> None:
        self._outgoing.append((peer, Reply(msg.req_id, self.hello.to_wire())))

    def _on_flush(self, peer: bytes, msg: Flush) -> None:
        self.storage._trigger_sync("storage_flush_all", storage=self.storage)
        deleted = self.storage.delete_ended(msg.app)
        log.info("flushed %d ended task record(s) of %r", deleted, msg.app)
        self._outgoing.append((peer, Reply(msg.req_id, deleted)))

    def _on_dead(self, peer: bytes, msg: Dead) -> None:
        storage = self.storage
        if msg.op == "list":
            found = storage.dead_letters(msg.app, msg.task_name, msg.limit)
            count = storage.dead_count(msg.app, msg.task_name) if msg.limit is not None else len(found)
            value: Any = Reply.dead_list_value(count, [r.snapshot() for r in found])
        elif msg.op == "retry":
            if msg.uuids:
                records = [storage.get(uuid) for uuid in msg.uuids]
            else:
                records = list(storage.dead_letters(msg.app, msg.task_name, min(msg.limit or Dead.BATCH, Dead.BATCH)))
            dead = [r for r in records if r is not None and r.dead]
            refusal = self.limits.refusal(r.envelope for r in dead)
            if refusal is not None:
                self.reply_error(peer, msg.req_id, "queue-full", refusal)
                return
            children = {r.uuid: self._revive(r) for r in dead}
            value = Reply.get_value(children.get(r.uuid) if r is not None else None for r in records)
            if dead:
                log.info("retried %d dead letter(s)", len(dead))
        else:
            value = storage.delete_dead(msg.app, msg.task_name)
            log.info("purged %d dead letter(s)%s%s", value, f" of {msg.app!r}" if msg.app else "",
                     f" of task {msg.task_name!r}" if msg.task_name else "")
        self._outgoing.append((peer, Reply(msg.req_id, value)))

    def _on_ops(self, peer: bytes, msg: Ops) -> None:
        """An operator's request (see ``broker_daemon.ops``)."""
        args = msg.args
        value: Any = None
        if msg.op == "status":
            value = ops_status(self)
        elif msg.op == "tasks":
            value = ops_tasks(self, args)
        elif msg.op == "inspect":
            record = self.storage.get(args["uuid"])
            value = None if record is None else ops_view(self, record).to_wire()
        elif msg.op == "retry":
            record = self.storage.get(args["uuid"])
            refusal = self._not_retryable(record)
            if refusal is None and record is not None:
                refusal = self.limits.refusal([record.envelope])
            if refusal is not None or record is None:
                self.reply_error(peer, msg.req_id, "not-retryable" if record is not None else "no-such-task",
                                 refusal or f"no task {uuid_module.UUID(bytes=args['uuid'])}")
                return
            child = self._revive(record).envelope.uuid
            log.info("task %s run again by hand as %s", uuid_module.UUID(bytes=record.uuid),
                     uuid_module.UUID(bytes=child))
            value = child
        else:  # timers
            value = self.timer_reports.report(args["app"], args["source"], args["jobs"], float(args["ttl"]),
                                              time.monotonic())
        self._outgoing.append((peer, Reply(msg.req_id, value)))

    @staticmethod
    def _not_retryable(record: Optional[TaskRecord]) -> Optional[str]:
        """Why ``record`` cannot be run again by hand (None: it can: it ended error or cancel, not retried yet)."""
        if record is None:
            return None
        name = f"task {uuid_module.UUID(bytes=record.uuid)}"
        if record.status not in (Status.ERROR, Status.CANCEL):
            return f"{name} is {record.status}: only a task that ended error or cancel can be retried"
        if record.retry_child is not None:
            return f"{name} was retried already, as {uuid_module.UUID(bytes=record.retry_child)}"
        return None

    def _revive(self, record: TaskRecord) -> TaskSnapshot:
        """Run a dead letter again as a new task of the same call; waits on it follow there."""
        now = time.time()
        parent = record.envelope
        parent_text = str(uuid_module.UUID(bytes=parent.uuid))
        child_uuid = uuid_module.uuid4().bytes
        lineage = {"retry_parent_uuid": parent_text}
        child = TaskRecord(TaskEnvelope(child_uuid, parent.task_name, parent.queue, parent.priority, now,
                                        parent.payload, {**parent.metadata, **lineage}), now)
        child.extra.update(lineage)
        self.storage.add_many([child])
        self.limits.added(child)
        record.revived(child_uuid, str(uuid_module.UUID(bytes=child_uuid)), now)
        self.storage.save(record)
        self.totals["dead_retried"] += 1
        names = self.dispatcher.served_names(parent.queue)
        if names is not None and parent.task_name not in names:
            self._unservable(child, names)
        else:
            self.dispatcher.enqueue(child)
        return child.snapshot()

    def _on_state(self, peer: bytes, msg: StateOp) -> None:
        try:
            result = self.state.apply(msg.namespace, msg.op, msg.args)
        except StateOpError as exc:
            self.totals["state_errors"] += 1
            self.reply_error(peer, msg.req_id, "state", str(exc))
            return
        self.totals["state_ops"] += 1
        self._outgoing.append((peer, Reply(msg.req_id, result)))

    def stats(self) -> dict[str, Any]:
        return {
            "boot_id": self.boot_id.hex(),
            "uptime": time.time() - self.started_at,
            "queues": {name: len(queue) for name, queue in self.dispatcher.queues.items()},
            "unserved": self.dispatcher.unserved(),
            "workers": [w.describe() for w in self.workers.values()],
            "in_flight": len(self.inflight),
            "delayed": len(self.delayed),
            "dead_letters": self.storage.dead_count(),
            "waiters": len(self.waiters),
            "records": len(self.storage),
            "durable": self.storage.durable,
            "result_ttl": self.result_ttl,
            "limits": {"max_queued_tasks": self.limits.max_tasks, "max_queued_bytes": self.limits.max_bytes},
            "state": self.state.stats(),
            "max_attempts": self.max_attempts,
            "totals": dict(self.totals),
        }

    # ------------------------------------------------------------------ workers

    def _on_ready(self, peer: bytes, msg: Ready) -> None:
        worker = self.workers.get(peer)
        if worker is None:
            if msg.replaces is not None:
                for old in [w for w in self.workers.values()
                            if w.pid == msg.replaces and w.host == msg.host]:
                    self._lose_worker(old, msg.cause or "replaced by a new process")
            worker = WorkerPeer(peer, msg.queue, msg.concurrency, msg.pid, msg.host, msg.tasks)
            self.workers[peer] = worker
            self.dispatcher.join(worker)
            log.info("worker %s (pid %d on %s) joined queue %r with %d slots",
                     peer.decode("utf-8", "replace"), msg.pid, msg.host, msg.queue, msg.concurrency)
        elif worker.suspended:
            worker.suspended = False
            worker.last_seen = time.monotonic()
            worker.concurrency = msg.concurrency
            log.info("worker %s (pid %d) registered again on a new connection", peer.decode("utf-8", "replace"),
                     worker.pid)
        elif msg.concurrency != worker.concurrency:
            log.info("worker %s (pid %d) now takes %d tasks at once%s", peer.decode("utf-8", "replace"),
                     worker.pid, msg.concurrency, " (draining)" if msg.concurrency == 0 else "")
            worker.concurrency = msg.concurrency
        worker.results_seq = msg.results_acked  # the RESULTs after it come (again) next
        self._adopt(worker, msg.running)
        self.dispatcher.changed(worker)
        self._outgoing.append(
            (peer, Welcome(self.boot_id, self.heartbeat_interval, self.heartbeat_liveness,
                           self.max_message_size)))

    def _adopt(self, worker: WorkerPeer, running: list[tuple[bytes, int]]) -> None:
        """Take over deliveries a reconnecting worker still runs, unless given to someone else."""
        for uuid, attempt in running:
            record = self.storage.get(uuid)
            if record is None or record.ended or self.inflight.get(uuid) is not None:
                continue
            self._orphans.pop(uuid, None)
            self.dispatcher.adopt(record, worker, attempt)

    def _on_heartbeat(self, peer: bytes, msg: Heartbeat) -> None:
        worker = self.workers.get(peer)
        if worker is None or worker.suspended:
            self._not_ready(peer)

    def _on_result(self, peer: bytes, msg: Result) -> None:
        worker = self.workers.get(peer)
        if worker is not None and msg.seq:
            if msg.seq <= worker.results_seq:  # sent again after a lost acknowledgement: done already
                self.totals["resent_results"] += len(msg.outcomes)
                return
            if msg.seq == worker.results_seq + 1:  # acknowledged in order; after a gap (a lost message
                worker.results_seq = msg.seq       # the worker sends again) outcomes apply anyway
        now = time.time()
        for outcome in msg.outcomes:
            uuid = outcome.uuid
            if self.inflight.get(uuid) == (peer, outcome.attempt):
                self.dispatcher.release(uuid, self.workers.get(peer))
            record = self.storage.get(uuid)
            if record is None:
                self.totals["unknown_results"] += 1
                log.debug("ignored a result for unknown task %s", uuid.hex())
                continue
            if record.ended:
                if outcome.attempt == record.attempts and outcome.status == record.status:
                    self.totals["resent_results"] += 1  # stored before a restart, sent again after it
                elif record.status != Status.CANCEL:
                    # A second execution after a false "lost" verdict: the first result stands.
                    self.totals["duplicate_results"] += 1
                    log.info("ignored a late result for task %s (attempt %d): it already ended %s",
                             uuid.hex(), outcome.attempt, record.status)
                continue
            if outcome.status == Status.RETRY:
                self._retry(record, outcome.traceback, outcome.extra, now)
                continue
            if outcome.status not in FINAL_STATUSES:
                log.warning("ignored a result with status %r for task %s", outcome.status, uuid.hex())
                continue
            began = record.updated_at  # when it was dispatched
            record.finished(outcome.status, outcome.returning, outcome.traceback, outcome.extra, now)
            self.totals[outcome.status] += 1
            self._finish(record, began)
        if peer not in self.workers:
            self._not_ready(peer)

    def _retry(self, record: TaskRecord, traceback: Optional[str], extra: dict[str, Any], now: float) -> None:
        """The task failed and asked for another run: a child task takes over its waiters.

        As upstream QTasks: the failed record turns ``retry`` with ``retry`` (runs left
        before this one) and ``retry_child_uuid``; the child carries ``retry - 1`` and
        ``retry_parent_uuid``, so the chain reads the same from either end.
        """
        remaining = extra.get("retry")
        delay = extra.get("retry_delay") or 0.0
        if (isinstance(remaining, bool) or not isinstance(remaining, int) or remaining < 1
                or not isinstance(delay, (int, float))):
            log.warning("ignored a malformed retry request for task %s: %r", record.uuid.hex(), extra)
            return
        parent = record.envelope
        parent_text = str(uuid_module.UUID(bytes=parent.uuid))
        child_uuid = uuid_module.uuid4().bytes
        lineage = {"retry": remaining - 1, "retry_parent_uuid": parent_text}
        child = TaskRecord(TaskEnvelope(child_uuid, parent.task_name, parent.queue, parent.priority, now,
                                        parent.payload, {**parent.metadata, **lineage}), now)
        child.extra.update(lineage)
        self.storage.add_many([child])
        self.limits.added(child)
        self.telemetry.retried(record, traceback, now)  # before retried(): updated_at is when it started
        record.retried(child_uuid, str(uuid_module.UUID(bytes=child_uuid)), remaining, traceback, now)
        self.storage.save(record)
        self.limits.ended(record)
        self.totals[Status.RETRY] += 1
        for peer, deadline, asked in self.waiters.pop(parent.uuid):
            self.waiters.add(child_uuid, peer, deadline, asked)
        for peer, deadline, asked in self.watchers.pop(parent.uuid):
            self.watchers.add(child_uuid, peer, deadline, asked)
        if delay > 0:
            child.extra["eta"] = now + delay
            self.delayed.add(now + delay, child_uuid)
        else:
            self.dispatcher.enqueue(child)

    def _on_yield(self, peer: bytes, msg: Yield) -> None:
        for uuid, attempt, index, value in msg.steps:
            record = self.storage.get(uuid)
            # steps of the current attempt only, each once (a redelivered run repeats earlier ones)
            if record is None or record.ended or attempt != record.attempts or index != len(record.steps):
                continue
            record.steps.append(value)
            self.storage.save(record)
            for watcher, _, asked in self.watchers.entries(uuid):
                self._progress.setdefault(watcher, []).append((asked, index, value))

    def _on_return(self, peer: bytes, msg: Return) -> None:
        for uuid, attempt in msg.items:
            if self.inflight.get(uuid) == (peer, attempt):  # handed back unstarted: refund it
                self.totals["returned"] += 1
                self.dispatcher.take_back(uuid, self.workers.get(peer), refund=True)

    def _on_bye(self, peer: bytes, msg: Bye) -> None:
        worker = self.workers.get(peer)
        if worker is not None:
            self._lose_worker(worker, "it stopped")

    def _not_ready(self, peer: bytes) -> None:
        self.reply_error(peer, None, "not-ready", "this worker is not registered: send READY")

    def _lose_worker(self, worker: WorkerPeer, cause: str) -> None:
        """Forget a worker; requeue what it held, or fail what used up its attempts.

        When the process held several deliveries, nobody knows which one killed it:
        their attempts are refunded and each becomes a *suspect* that later runs alone
        on an idle process. A loss while running alone is certain and stays counted, so
        a poison task still ends after max_attempts deliveries (plus at most one
        refunded), and tasks that merely shared its process lose nothing.
        """
        del self.workers[worker.identity]
        held = self.dispatcher.leave(worker)
        shared = len(held) > 1
        requeued = failed = 0
        for uuid in held:
            record = self.storage.get(uuid)
            if record is None or record.ended:
                continue
            self.totals["lost"] += 1
            self.telemetry.lost(record)
            if not record.lost(shared=shared, max_attempts=self.max_attempts):
                failed += 1
                self._fail(record, f"WorkerLostError: the worker process running this task was lost "
                                   f"{record.losses} times (last: {cause}); gave up after {record.attempts} "
                                   f"attempts (qtasks-broker --max-attempts {self.max_attempts})")
            else:
                requeued += 1
                self.dispatcher.requeue(record, refund=False)  # lost() refunded a shared loss
        if held:
            log.warning("worker %s (pid %d) lost: %s; %d task(s) requeued, %d failed for good",
                        worker.identity.decode("utf-8", "replace"), worker.pid, cause, requeued, failed)
        else:
            log.info("worker %s (pid %d) left: %s", worker.identity.decode("utf-8", "replace"),
                     worker.pid, cause)

    def _unservable(self, record: TaskRecord, served: frozenset[str]) -> None:
        """The workers of the task's queue are there, and none runs its name: end it as error."""
        name, queue = record.envelope.task_name, record.envelope.queue
        close = difflib.get_close_matches(name, served, n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        log.warning("task %s %s failed: no worker of queue %r serves it", name,
                    uuid_module.UUID(bytes=record.uuid), queue)
        self._fail(record, f"UnknownTaskError: unknown task {name!r}{hint} (the workers serving queue "
                           f"{queue!r} run: {', '.join(sorted(served)[:20]) or 'nothing'}). If another "
                           "app of the same name serves it, give the apps different names: "
                           "QueueTasks(name=...)")

    def _fail(self, record: TaskRecord, traceback: str) -> None:
        """End the record as error, decided by the broker itself (no worker reported it)."""
        record.failed(traceback, time.time())
        self.totals[Status.ERROR] += 1
        self._finish(record)

    def _finish(self, record: TaskRecord, began: Optional[float] = None) -> None:
        """The record reached a final status (``began``: when the run that ended it started): persist
        it and push it to whoever waits."""
        self.storage.save(record)
        self.limits.ended(record)
        self.telemetry.finished(record, began)
        self._orphans.pop(record.uuid, None)
        self.watchers.pop(record.uuid)
        waiting = self.waiters.pop(record.uuid)
        if waiting:
            snapshot = record.snapshot()
            for peer, _, asked in waiting:
                self._notify.setdefault(peer, []).append((asked, snapshot))
