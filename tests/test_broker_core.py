"""The broker's logic without sockets: dispatch order, credit, loss, fencing, waiters."""

from __future__ import annotations

import os
import time

import pytest

from broker_daemon.core import BrokerCore
from qtasks import protocol as p

CLIENT = b"client"


def make_envelope(priority: int = 0, name: str = "t", queue: str = "q") -> p.TaskEnvelope:
    return p.TaskEnvelope(os.urandom(16), name, queue, priority, time.time(),
                          p.pack_arguments(name, [], {}), {})


class Harness:
    """Drives a BrokerCore the way the socket loop does, recording what it sends."""

    def __init__(self, **options) -> None:
        self.core = BrokerCore(**options)
        self.sent: list[tuple[bytes, p.Message]] = []

    def send(self, peer: bytes, message: p.Message) -> list[tuple[bytes, p.Message]]:
        self.core.handle(peer, message)
        out = self.core.flush()
        self.sent.extend(out)
        return out

    def worker(self, name: bytes, concurrency: int, pid: int = 0, **ready) -> None:
        self.send(name, p.Ready("q", concurrency, pid or hash(name) % 100000, "host", **ready))

    def submit(self, *envelopes: p.TaskEnvelope, wait: float | None = None) -> list[tuple[bytes, p.Message]]:
        return self.send(CLIENT, p.Submit(1, wait, list(envelopes)))

    def dispatched(self, out: list[tuple[bytes, p.Message]]) -> list[tuple[bytes, p.Delivery]]:
        return [(peer, d) for peer, m in out if isinstance(m, p.Dispatch) for d in m.deliveries]

    def finish(self, worker: bytes, delivery: p.Delivery, status: str = "success") -> list:
        return self.send(worker, p.Result([p.TaskOutcome(delivery.envelope.uuid, delivery.attempt, status,
                                                          p.pack_value(1), None, time.time(), {})]))

    def record(self, envelope: p.TaskEnvelope):
        return self.core.storage.get(envelope.uuid)


def test_priority_order_then_fifo_with_one_slot():
    h = Harness()
    h.worker(b"w", 1)
    first, *rest = [make_envelope(pr) for pr in (5, 5, 1, 9, 1, 0)]
    out = h.submit(first, *rest)
    order = [d.envelope for _, d in h.dispatched(out)]
    while True:
        out = h.finish(b"w", p.Delivery(order[-1], 1))
        more = h.dispatched(out)
        if not more:
            break
        order.append(more[0][1].envelope)
    assert [e.priority for e in order] == [0, 1, 1, 5, 5, 9]
    assert order[1:5] == [rest[1], rest[3], first, rest[0]]  # FIFO within a priority


def test_credit_is_never_exceeded_and_idle_workers_get_work_first():
    h = Harness()
    h.worker(b"a", 3)
    h.worker(b"b", 3)
    out = h.submit(*[make_envelope() for _ in range(10)])
    per_worker = {}
    for peer, _ in h.dispatched(out):
        per_worker[peer] = per_worker.get(peer, 0) + 1
    assert per_worker == {b"a": 3, b"b": 3}
    assert h.core.stats()["queues"] == {"q": 4}


def test_a_busy_worker_is_not_handed_work_while_an_idle_one_waits():
    h = Harness()
    h.worker(b"a", 2)
    h.worker(b"b", 2)
    out = h.submit(make_envelope())
    [(first_peer, _)] = h.dispatched(out)
    out = h.submit(make_envelope())
    [(second_peer, _)] = h.dispatched(out)
    assert first_peer != second_peer


def test_lost_worker_tasks_are_requeued_counted_and_fail_after_max_attempts():
    h = Harness(max_attempts=2)
    envelope = make_envelope()
    h.worker(b"w1", 1, pid=1)
    assert h.dispatched(h.submit(envelope))[0][1].attempt == 1
    # the replacement process reports which pid died and how
    out = h.send(b"w2", p.Ready("q", 1, 2, "host", replaces=1, cause="signal 9, SIGKILL"))
    [(peer, delivery)] = h.dispatched(out)
    assert peer == b"w2" and delivery.attempt == 2
    h.send(b"w3", p.Ready("q", 1, 3, "host", replaces=2, cause="signal 9, SIGKILL"))
    record = h.record(envelope)
    assert record.status == "error" and record.attempts == 2 and record.losses == 2
    assert "lost 2 times (last: signal 9, SIGKILL); gave up after 2 attempts" in record.traceback


def test_silent_workers_are_declared_lost_on_tick():
    h = Harness(heartbeat_interval=0.01, heartbeat_liveness=2)
    h.worker(b"w", 1)
    envelope = make_envelope()
    h.submit(envelope)
    h.core.workers[b"w"].last_seen -= 1.0
    h.core.tick()
    assert b"w" not in h.core.workers
    assert h.record(envelope).status == "new" and h.record(envelope).attempts == 1


def test_tasks_lost_together_are_refunded_and_rerun_alone():
    h = Harness(max_attempts=1)
    h.worker(b"w1", 4, pid=1)
    envelopes = [make_envelope() for _ in range(3)]
    h.submit(*envelopes)
    # When the process running all three dies, nobody knows which one killed it
    out = h.send(b"w2", p.Ready("q", 4, 2, "host", replaces=1, cause="signal 9, SIGKILL"))
    # Then none of them used up its only attempt, and they run one at a time
    assert all(h.record(e).status in ("new", "process") for e in envelopes)
    [(peer, delivery)] = h.dispatched(out)
    assert delivery.attempt == 1
    out = h.finish(peer, delivery)
    assert len(h.dispatched(out)) == 1


def test_a_suspect_waits_for_an_idle_process_and_keeps_its_place():
    h = Harness()
    h.worker(b"w1", 2, pid=1)
    suspects = [make_envelope(), make_envelope()]
    h.submit(*suspects)
    h.send(b"w2", p.Ready("q", 2, 2, "host", replaces=1, cause="lost"))  # both become suspects
    busy_with = [d for peer, d in h.dispatched(h.sent) if peer == b"w2"]
    assert len(busy_with) == 1
    h.submit(make_envelope())  # a newcomer queues behind the second suspect
    assert len([d for peer, d in h.dispatched(h.sent) if peer == b"w2"]) == 1


def test_undeliverable_dispatch_goes_back_to_the_head_uncounted():
    h = Harness()
    h.worker(b"gone", 1)
    h.worker(b"alive", 0)
    envelope = make_envelope()
    out = h.submit(envelope)
    [(peer, message)] = [(peer, m) for peer, m in out if isinstance(m, p.Dispatch)]
    h.core.undeliverable(peer, message, "unreachable")
    record = h.record(envelope)
    assert (record.status, record.attempts) == ("new", 0)
    assert b"gone" not in h.core.workers
    out = h.send(b"alive", p.Ready("q", 1, 7, "host"))
    assert h.dispatched(out)[0][1].attempt == 1


def test_late_result_after_a_false_loss_is_accepted_once_and_never_flips():
    h = Harness()
    h.worker(b"a", 1, pid=1)
    envelope = make_envelope()
    [(_, first)] = h.dispatched(h.submit(envelope))
    h.core.workers[b"a"].last_seen -= 100
    h.core.tick()  # declared lost while it was only paused (SIGSTOP)
    out = h.send(b"b", p.Ready("q", 1, 2, "host"))
    [(_, second)] = h.dispatched(out)
    assert second.attempt == 2
    # the paused worker wakes up and reports: accepted, since nothing was final yet
    out = h.send(b"a", p.Result([p.TaskOutcome(envelope.uuid, 1, "success", p.pack_value("A"), None, 0.0, {})]))
    assert any(isinstance(m, p.Error) and m.code == "not-ready" for _, m in out)
    assert h.record(envelope).returning == p.pack_value("A")
    # the second execution's result is ignored and counted
    h.send(b"b", p.Result([p.TaskOutcome(envelope.uuid, 2, "error", None, "tb", 0.0, {})]))
    record = h.record(envelope)
    assert (record.status, record.returning) == ("success", p.pack_value("A"))
    assert h.core.totals["duplicate_results"] == 1
    assert h.core.workers[b"b"].busy == 0


def test_returned_deliveries_are_requeued_without_counting():
    h = Harness()
    h.worker(b"w", 2)
    envelopes = [make_envelope(), make_envelope()]
    deliveries = [d for _, d in h.dispatched(h.submit(*envelopes))]
    h.send(b"w", p.Ready("q", 0, 1, "host"))  # draining
    out = h.send(b"w", p.Return([(d.envelope.uuid, d.attempt) for d in deliveries]))
    assert not h.dispatched(out)
    assert [(h.record(e).status, h.record(e).attempts) for e in envelopes] == [("new", 0), ("new", 0)]


def test_waiters_get_results_pushed_and_already_final_tasks_at_once():
    h = Harness()
    h.worker(b"w", 1)
    envelope = make_envelope()
    out = h.submit(envelope, wait=5.0)
    [(_, delivery)] = h.dispatched(out)
    out = h.finish(b"w", delivery)
    [notify] = [m for peer, m in out if peer == CLIENT and isinstance(m, p.Notify)]
    [(asked, snapshot)] = notify.items
    assert asked == envelope.uuid and snapshot.status == "success"
    out = h.send(b"other", p.Wait(9, [envelope.uuid, os.urandom(16)], 1.0))
    kinds = {type(m) for peer, m in out if peer == b"other"}
    assert kinds == {p.Reply, p.Notify}
    reply = next(m for _, m in out if isinstance(m, p.Reply))
    assert len(reply.as_wait_ack()[0]) == 1  # the unknown uuid


def test_expired_waiters_are_forgotten():
    h = Harness()
    envelope = make_envelope()
    h.submit(envelope, wait=0.0)
    assert len(h.core.waiters) == 1
    h.core.waiters.expire(time.monotonic() + 10)
    assert len(h.core.waiters) == 0


def test_unknown_worker_messages_get_not_ready_and_reconnects_adopt_running_tasks():
    h = Harness()
    out = h.send(b"stranger", p.Heartbeat())
    assert [m.code for _, m in out if isinstance(m, p.Error)] == ["not-ready"]
    h.worker(b"w", 2, pid=5)
    envelope = make_envelope()
    [(_, delivery)] = h.dispatched(h.submit(envelope))
    # the broker forgets the worker (say it restarted); the worker registers again with what it runs
    h.core.workers[b"w"].last_seen -= 100
    h.core.tick()
    h.send(b"w-again", p.Ready("q", 2, 5, "host", running=[(envelope.uuid, delivery.attempt)]))
    record = h.record(envelope)
    assert record.status == "process" and h.core.inflight.get(envelope.uuid) == (b"w-again", 1)
    h.finish(b"w-again", delivery)
    assert h.record(envelope).status == "success"


def test_resubmitting_a_uuid_is_ignored_not_duplicated():
    h = Harness()
    envelope = make_envelope()
    h.submit(envelope)
    h.submit(envelope)
    assert h.core.stats()["queues"] == {"q": 1}
    assert h.core.totals["resubmitted"] == 1


def test_max_attempts_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        BrokerCore(max_attempts=0)


def test_a_retry_outcome_makes_a_child_that_inherits_the_waiters():
    h = Harness()
    h.worker(b"w", 1)
    envelope = make_envelope()
    [(_, delivery)] = h.dispatched(h.submit(envelope, wait=10.0))
    out = h.send(b"w", p.Result([p.TaskOutcome(envelope.uuid, 1, "retry", None, "Traceback: boom", 0.0,
                                               {"retry": 2, "retry_delay": 0.0})]))
    parent = h.record(envelope)
    assert parent.status == "retry" and parent.extra["retry"] == 2 and parent.traceback == "Traceback: boom"
    child = h.core.storage.get(parent.retry_child)
    assert child.extra == {"retry": 1, "retry_parent_uuid": str(__import__("uuid").UUID(bytes=envelope.uuid))}
    assert child.envelope.metadata["retry"] == 1 and child.envelope.payload == envelope.payload
    [(_, redelivery)] = h.dispatched(out)
    assert redelivery.envelope.uuid == child.uuid
    out = h.finish(b"w", redelivery)
    [notify] = [m for peer, m in out if isinstance(m, p.Notify)]
    [(asked, snapshot)] = notify.items
    assert asked == envelope.uuid and snapshot.envelope.uuid == child.uuid  # the chain's end, for the head
    # waiting on the head later follows the chain too
    out = h.send(b"late", p.Wait(5, [envelope.uuid], 1.0))
    assert [m.items[0][1].envelope.uuid for _, m in out if isinstance(m, p.Notify)] == [child.uuid]


def test_a_late_result_for_a_retried_task_never_changes_its_record():
    h = Harness()
    h.worker(b"w", 1)
    envelope = make_envelope()
    h.submit(envelope)
    h.send(b"w", p.Result([p.TaskOutcome(envelope.uuid, 1, "retry", None, "boom", 0.0,
                                         {"retry": 2, "retry_delay": 0.0})]))
    child = h.record(envelope).retry_child
    # a second execution of attempt 1 (after a false "lost" verdict) reports success late
    h.send(b"w", p.Result([p.TaskOutcome(envelope.uuid, 1, "success", p.pack_value(9), None, 0.0, {})]))
    parent = h.record(envelope)
    assert parent.status == "retry" and parent.retry_child == child and parent.returning is None
    assert h.core.totals["duplicate_results"] == 1 and h.core.totals["retry"] == 1


def test_a_delayed_retry_is_held_until_due():
    h = Harness()
    h.worker(b"w", 1)
    envelope = make_envelope()
    h.submit(envelope)
    out = h.send(b"w", p.Result([p.TaskOutcome(envelope.uuid, 1, "retry", None, None, 0.0,
                                               {"retry": 1, "retry_delay": 0.2})]))
    assert not h.dispatched(out) and len(h.core.delayed) == 1
    assert 0 < h.core.next_wakeup() <= 0.2
    h.core.release_delayed()
    assert not h.dispatched(h.core.flush())  # not yet due
    h.core.delayed.clock = lambda: time.time() + 0.25
    h.core.release_delayed()
    assert len(h.dispatched(h.core.flush())) == 1


def test_cancel_queued_and_running_tasks():
    h = Harness()
    h.worker(b"w", 1)
    running, queued = make_envelope(), make_envelope()
    h.submit(running, queued)
    out = h.send(CLIENT, p.Cancel(3, [queued.uuid, running.uuid, os.urandom(16)], "stop"))
    reply = next(m for _, m in out if isinstance(m, p.Reply))
    statuses = [None if s is None else (s.status, s.extra["cancel_reason"]) for s in reply.as_snapshots()]
    assert statuses == [("cancel", "stop"), ("cancel", "stop"), None]
    [stop] = [m for peer, m in out if peer == b"w" and isinstance(m, p.Cancel)]
    assert stop.uuids == [running.uuid] and stop.req_id is None
    # the worker's answer frees its slot, and nothing is dispatched for the cancelled queued task
    out = h.send(b"w", p.Result([p.TaskOutcome(running.uuid, 1, "cancel", None, None, 0.0, {})]))
    assert not h.dispatched(out) and h.core.workers[b"w"].busy == 0
    assert h.core.totals.get("duplicate_results", 0) == 0


def test_steps_are_kept_once_and_pushed_to_watchers():
    h = Harness()
    h.worker(b"w", 1)
    envelope = make_envelope()
    [(_, delivery)] = h.dispatched(h.submit(envelope))
    h.send(b"w", p.Yield([(envelope.uuid, 1, 0, p.pack_value("a"))]))
    out = h.send(b"watcher", p.Watch(4, envelope.uuid, 10.0))
    reply = next(m for _, m in out if isinstance(m, p.Reply))
    assert reply.as_watch().steps == [p.pack_value("a")]
    out = h.send(b"w", p.Yield([(envelope.uuid, 1, 1, p.pack_value("b")), (envelope.uuid, 1, 1, p.pack_value("dup")),
                                (envelope.uuid, 9, 2, p.pack_value("stale attempt"))]))
    [progress] = [m for peer, m in out if peer == b"watcher" and isinstance(m, p.Progress)]
    assert progress.steps == [(envelope.uuid, 1, p.pack_value("b"))]
    out = h.finish(b"w", delivery)
    assert any(peer == b"watcher" and isinstance(m, p.Notify) for peer, m in out)
    assert h.record(envelope).steps == [p.pack_value("a"), p.pack_value("b")]


def test_a_late_tick_does_not_count_against_the_workers():
    h = Harness(heartbeat_interval=0.05, heartbeat_liveness=2)
    h.worker(b"w", 1)
    h.core.workers[b"w"].last_seen -= 0.5
    h.core._last_tick -= 0.5  # the broker itself did not run for half a second
    h.core.tick()
    assert b"w" in h.core.workers
    h.core.workers[b"w"].last_seen -= 0.5  # but a worker silent while the broker ran is lost
    h.core.tick()
    assert b"w" not in h.core.workers
