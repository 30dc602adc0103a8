"""The durable broker's logic in-process: storages, restore, acknowledged results, limits, TTL,
dead letters, and forgetting clients that went away (no sockets)."""

from __future__ import annotations

import time

import msgpack
import pytest

from broker_daemon.core import BrokerCore
from broker_daemon.limits import QueueLimits
from broker_daemon.storage import MemoryStorage
from broker_daemon.storage.sqlite import SQLiteStorage
from qtasks import protocol as p
from qtasks.exc import DataDirError, DataDirInUseError
from tests.test_broker_core import CLIENT, Harness, make_envelope


class Durable(Harness):
    """A harness whose core stores in ``directory``, and which persists after every message as the loop does."""

    def __init__(self, directory, **options) -> None:
        self.directory = directory
        super().__init__(storage=SQLiteStorage(directory), **options)
        self.core.restore()

    def send(self, peer, message):
        self.core.handle(peer, message)
        out = self.core.flush()
        self.core.persist()
        self.sent.extend(out)
        return out

    def restart(self, **options) -> Durable:
        """The process dies: nothing but the directory survives."""
        self.core.storage._db.close()
        self.core.storage._lock.release()
        return Durable(self.directory, **options)


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, tmp_path):
    made = MemoryStorage() if request.param == "memory" else SQLiteStorage(tmp_path / "data")
    yield made
    made.close()


def test_both_storages_keep_records_expire_them_and_index_dead_letters(storage):
    core = BrokerCore(storage)
    h = Harness.__new__(Harness)
    h.core, h.sent = core, []
    h.worker(b"w", 10)
    ok, bad = make_envelope(name="ok"), make_envelope(name="bad")
    deliveries = {d.envelope.uuid: d for _, d in h.dispatched(h.submit(ok, bad))}
    h.finish(b"w", deliveries[ok.uuid])
    h.finish(b"w", deliveries[bad.uuid], status="error")
    core.persist()
    assert core.storage.get(ok.uuid).status == "success" and len(core.storage) == 2
    assert [r.envelope.uuid for r in core.storage.dead_letters()] == [bad.uuid]
    assert core.storage.dead_count(app="q", task_name="bad") == 1 and core.storage.dead_count(task_name="ok") == 0
    assert core.storage.expire(time.time() + 1) == 1  # the success goes, the dead letter stays
    assert core.storage.get(ok.uuid) is None and core.storage.get(bad.uuid) is not None
    assert core.storage.delete_dead(app="q") == 1 and len(core.storage) == 0


def test_a_restart_takes_up_queued_delayed_and_running_tasks_and_state(tmp_path):
    h = Durable(tmp_path / "data", heartbeat_interval=0.01)
    h.worker(b"w", 1)
    running, queued = make_envelope(), make_envelope(priority=5)
    h.submit(running, queued)
    h.send(CLIENT, p.StateOp(2, ("q", "Counter", ""), "incr", msgpack.packb(["n", 7])))
    h = h.restart(heartbeat_interval=0.01)
    assert h.record(running).status == "process" and h.core.stats()["queues"] == {"q": 1}
    assert msgpack.unpackb(h.core.state.apply(("q", "Counter", ""), "get", msgpack.packb(["n"]))) == 7
    # the worker comes back claiming its delivery; its result is taken once
    out = h.send(b"w", p.Ready("q", 1, 1, "host", running=[(running.uuid, 1)]))
    assert not h.dispatched(out)  # its one slot is the running task's
    out = h.finish(b"w", p.Delivery(running, 1))
    assert h.record(running).status == "success"
    [(_, second)] = h.dispatched(out)  # its slot is free: the queued task goes out
    assert second.envelope.uuid == queued.uuid


def test_a_task_nobody_claims_after_a_restart_runs_again_with_the_attempt_counted(tmp_path):
    h = Durable(tmp_path / "data", heartbeat_interval=0.01)
    h.worker(b"w", 1)
    envelope = make_envelope()
    h.submit(envelope)
    h = h.restart(heartbeat_interval=0.01)
    h.worker(b"v", 1)  # another worker; "w" never comes back
    h.core._orphans_until = 0
    h.core.tick()
    [(_, delivery)] = h.dispatched(h.core.flush())
    assert delivery.attempt == 2 and h.core.totals["lost"] == 1


def test_results_are_acknowledged_in_order_and_a_resend_is_applied_once():
    h = Harness()
    h.worker(b"w", 4)
    envelopes = [make_envelope() for _ in range(3)]
    deliveries = [d for _, d in h.dispatched(h.submit(*envelopes))]
    outcome = lambda d: p.TaskOutcome(d.envelope.uuid, d.attempt, "success", None, None, 0.0, {})  # noqa: E731
    h.send(b"w", p.Result([outcome(deliveries[0])], seq=1))
    h.send(b"w", p.Result([outcome(deliveries[2])], seq=3))  # seq 2 was lost on the way: applied, not acked
    h.core.tick()
    beats = [m for peer, m in h.core.flush() if isinstance(m, p.Heartbeat)]
    assert beats == [p.Heartbeat(1)]
    h.send(b"w", p.Result([outcome(deliveries[1])], seq=2))  # sent again
    h.send(b"w", p.Result([outcome(deliveries[2])], seq=3))
    assert h.core.workers[b"w"].results_seq == 3
    h.send(b"w", p.Result([outcome(deliveries[2])], seq=3))  # once more: already done
    assert h.core.totals["resent_results"] == 2 and h.core.totals["duplicate_results"] == 0
    assert all(h.record(e).status == "success" for e in envelopes)
    h.send(b"w", p.Ready("q", 4, 1, "host", results_acked=10))  # a worker that re-registers says where it is
    assert h.core.workers[b"w"].results_seq == 10


def test_a_submit_over_a_queue_limit_is_refused_whole_and_stores_nothing():
    h = Harness(limits=QueueLimits(max_tasks=3, max_bytes=10_000))
    out = h.submit(*[make_envelope() for _ in range(4)])
    [(_, error)] = out
    assert isinstance(error, p.Error) and error.code == "queue-full"
    assert "holds 0 unfinished task(s); 4 more would pass its limit of 3 (qtasks-broker --max-queued-tasks)" \
        in error.message
    assert len(h.core.storage) == 0
    h.worker(b"w", 1)
    [(_, delivery)] = h.dispatched(h.submit(*[make_envelope() for _ in range(3)]))
    assert isinstance(h.submit(make_envelope())[0][1], p.Error)
    h.finish(b"w", delivery)  # one ended: room for one more
    assert isinstance(h.submit(make_envelope())[0][1], p.Reply)
    big = p.TaskEnvelope(b"\x01" * 16, "t", "other", 0, 0.0, b"x" * 20_000, {})
    assert "--max-queued-bytes" in h.submit(big)[0][1].message


def test_dead_letters_list_retry_and_purge():
    h = Harness()
    h.worker(b"w", 10)
    envelopes = [make_envelope(name="flaky"), make_envelope(name="flaky"), make_envelope(name="other")]
    for _, delivery in h.dispatched(h.submit(*envelopes)):
        h.finish(b"w", delivery, status="error")
    [(_, reply)] = h.send(CLIENT, p.Dead(5, "list", "q", "flaky", [], 1))
    count, found = reply.as_dead_list()
    assert count == 2 and [s.envelope.uuid for s in found] == [envelopes[0].uuid]
    out = h.send(CLIENT, p.Dead(7, "retry", None, None, [envelopes[0].uuid, b"\x00" * 16], None))
    [reply] = [m for _, m in out if isinstance(m, p.Reply)]
    child, nothing = reply.as_snapshots()
    assert nothing is None and child.extra["retry_parent_uuid"] and h.record(envelopes[0]).dead is False
    [(_, delivery)] = h.dispatched(out)
    assert delivery.envelope.uuid == child.envelope.uuid
    h.send(CLIENT, p.Wait(6, [envelopes[0].uuid], 30))  # waiting on the dead uuid follows its retry
    out = h.finish(b"w", delivery)
    [notify] = [m for _, m in out if isinstance(m, p.Notify)]
    assert notify.items[0][0] == envelopes[0].uuid and notify.items[0][1].status == "success"
    [(_, reply)] = h.send(CLIENT, p.Dead(8, "purge", "q", None, [], None))
    assert reply.value == 2 and h.core.stats()["dead_letters"] == 0


def test_ended_records_expire_after_the_result_ttl():
    h = Harness(result_ttl=5.0)
    h.worker(b"w", 1)
    envelope = make_envelope()
    [(_, delivery)] = h.dispatched(h.submit(envelope))
    h.finish(b"w", delivery)
    assert h.core.expire_records() == 0
    h.record(envelope).updated_at -= 10
    h.core.storage._ended[0] = (h.record(envelope).updated_at, envelope.uuid)
    assert h.core.expire_records() == 1 and h.record(envelope) is None


def test_waits_of_a_client_that_went_away_are_dropped_unless_it_comes_back():
    h = Harness()
    envelope = make_envelope()
    h.submit(envelope, wait=60)
    h.send(b"other", p.Wait(2, [envelope.uuid], 60))
    h.core.forget_peer(CLIENT)
    h.core.forget_peer(b"other")
    h.send(b"other", p.Ping(3))  # it reconnected under its identity
    h.core._gone_peers = {peer: 0.0 for peer in h.core._gone_peers}
    h.core.tick()
    assert len(h.core.waiters) == 1 and h.core.totals["waits_dropped"] == 1


def test_a_data_directory_is_locked_and_versioned(tmp_path):
    directory = tmp_path / "data"
    first = SQLiteStorage(directory)
    with pytest.raises(DataDirInUseError, match=r"in use by qtasks-broker pid \d+"):
        SQLiteStorage(directory)
    first._db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    first.close()
    with pytest.raises(DataDirError, match=r"written by a newer qtasks-broker \(schema 99; this one reads up to 1\)"):
        SQLiteStorage(directory)


def test_state_is_stored_key_by_key_and_survives_a_restart(tmp_path):
    h = Durable(tmp_path / "data")

    def op(namespace: tuple, name: str, *args) -> object:
        [(_, reply)] = h.send(CLIENT, p.StateOp(9, namespace, name, msgpack.packb(list(args))))
        return msgpack.unpackb(reply.value)

    kept, cleared = ("q", "Kept", ""), ("q", "Cleared", "")
    op(kept, "update", {"a": 1, "b": 2, "c": 3})
    op(kept, "delete", "b")
    op(kept, "incr", "a", 5)
    op(kept, "pop", "c")
    op(kept, "setdefault", "d", [1, 2])
    op(cleared, "set", "x", 1)
    op(cleared, "clear")
    op(cleared, "set", "y", 2)
    h = h.restart()
    assert op(kept, "get_all") == {"a": 6, "d": [1, 2]}
    assert op(cleared, "get_all") == {"y": 2}


def test_answered_waits_leave_no_deadlines_behind():
    from broker_daemon.waiters import Waiters

    waiters = Waiters()
    for i in range(5000):
        waiters.add(i.to_bytes(16, "big"), b"client", 1e12)
    for i in range(5000):
        waiters.pop(i.to_bytes(16, "big"))
    assert len(waiters) == 0 and len(waiters._deadlines) <= 1024
