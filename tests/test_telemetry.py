"""The broker's telemetry, its operator answers and its metrics collector, in-process (no sockets)."""

from __future__ import annotations

import os
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from broker_daemon import ops, telemetry
from broker_daemon.core import BrokerCore
from broker_daemon.metrics import BrokerCollector
from broker_daemon.records import TaskRecord
from broker_daemon.storage import MemoryStorage
from broker_daemon.storage.sqlite import SQLiteStorage
from broker_daemon.telemetry import Rates, Telemetry, exception_of
from qtasks import protocol as p
from qtasks.exc import DecodeError

CLIENT = b"client"
NOW = 1_800_000_000.0


def envelope(name: str = "t", priority: int = 0, queue: str = "q", created_at: float | None = None) -> p.TaskEnvelope:
    return p.TaskEnvelope(os.urandom(16), name, queue, priority, time.time() if created_at is None else created_at,
                          p.pack_arguments(name, [1], {}), {})


class Harness:
    def __init__(self) -> None:
        self.core = BrokerCore()
        self.sent: list[tuple[bytes, p.Message]] = []

    def send(self, peer: bytes, message: p.Message) -> list[tuple[bytes, p.Message]]:
        self.core.handle(peer, message)
        out = self.core.flush()
        self.sent.extend(out)
        return out

    def reply(self, message: p.Message) -> p.Reply | p.Error:
        [(_, answer)] = [(peer, m) for peer, m in self.send(CLIENT, message) if isinstance(m, (p.Reply, p.Error))]
        return answer

    def deliveries(self, out: list[tuple[bytes, p.Message]]) -> list[p.Delivery]:
        return [d for _, m in out if isinstance(m, p.Dispatch) for d in m.deliveries]

    def result(self, worker: bytes, delivery: p.Delivery, status: str, traceback: str | None = None,
               extra: dict | None = None) -> list[tuple[bytes, p.Message]]:
        return self.send(worker, p.Result([p.TaskOutcome(delivery.envelope.uuid, delivery.attempt, status,
                                                          p.pack_value(1), traceback, time.time(), extra or {})]))


# ---------------------------------------------------------------------------- telemetry alone


def ended(name: str, status: str, traceback: str | None = None, at: float = NOW, uuid: bytes | None = None,
          created_at: float = NOW) -> TaskRecord:
    record = TaskRecord(p.TaskEnvelope(uuid or os.urandom(16), name, "q", 0, created_at, b"", {}), at)
    record.finished(status, None, traceback, {}, at)
    return record


def test_rates_count_the_last_sixty_seconds_only():
    t = Telemetry(now=NOW)
    t.submitted(["a"] * 30)
    t.sample(NOW + 1)
    t.submitted(["a"] * 30)
    t.sample(NOW + 10)
    assert t.rates_now()["submitted"] == 1.0
    t.sample(NOW + 62)
    assert t.rates_now()["submitted"] == 0.5  # the first 30 fell out of the window
    t.finished(ended("a", "error", "ValueError: x", NOW + 63))
    assert t.rates_now() == {"submitted": 0.5, "finished": pytest.approx(1 / 60), "failed": pytest.approx(1 / 60)}
    t.sample(NOW + 200)
    assert t.rates_now()["submitted"] == 0.0


def test_rate_samples_stay_bounded():
    rates = Rates(1, NOW)
    for i in range(1000):
        rates.sample((i,), NOW + i * 0.5)
    assert len(rates.samples) <= telemetry.WINDOW + 2


def test_failures_are_grouped_by_exception_type_newest_first_and_bounded():
    t = Telemetry()
    for i in range(3):
        t.finished(ended("parse", "error", f"Traceback ...\nValueError: bad {i}", NOW + i, bytes([i]) * 16))
    t.finished(ended("lookup", "error", "Traceback ...\nKeyError: 'x'", NOW + 5))
    [keys, values] = t.failures_now()
    assert (keys["exception"], keys["count"], keys["last"]["name"]) == ("KeyError", 1, "lookup")
    assert (values["exception"], values["count"], values["last"]["message"]) == ("ValueError", 3, "bad 2")
    assert values["last"]["uuid"] == "02020202-0202-0202-0202-020202020202"
    for i in range(telemetry.MAX_FAILURE_TYPES + 5):
        t.finished(ended("x", "error", f"Error{i}: no", NOW + 10 + i))
    kinds = [f["exception"] for f in t.failures_now()]
    assert len(kinds) == telemetry.MAX_FAILURE_TYPES and "KeyError" not in kinds and kinds[0] == "Error54"


@pytest.mark.parametrize("traceback, expected", [
    ("Traceback (most recent call last):\n  File ...\nValueError: bad input", ("ValueError", "bad input")),
    ("mymodule.errors.QuotaError: over", ("QuotaError", "over")),
    ("KeyboardInterrupt", ("KeyboardInterrupt", "")),
    ("WorkerLostError: the worker process running this task was lost 3 times", ("WorkerLostError",
                                                                                "the worker process running this "
                                                                                "task was lost 3 times")),
    ("something odd happened here", ("Error", "something odd happened here")),
    (None, ("Error", "")),
])
def test_the_exception_type_comes_from_the_last_line(traceback, expected):
    assert exception_of(traceback) == expected


def test_queue_wait_and_run_time_are_timed_from_the_dispatch():
    t = Telemetry()
    t.finished(ended("job", "success", at=NOW + 3.0, created_at=NOW), began=NOW + 0.2)
    t.finished(ended("job", "cancel", at=NOW + 1), began=None)  # cancelled before it ran: nothing to time
    stats = t.tasks["job"]
    assert stats.wait.count == 1 and stats.wait.total == pytest.approx(0.2)
    assert stats.run.count == 1 and stats.run.total == pytest.approx(2.8)
    assert dict(stats.run.cumulative())["2.5"] == 0 and dict(stats.run.cumulative())["5.0"] == 1
    assert stats.outcomes == [0, 1, 0, 0, 1, 0]


def test_task_names_past_the_cap_are_pooled_as_other():
    t = Telemetry()
    t.submitted([f"task{i}" for i in range(telemetry.MAX_TASK_NAMES + 10)])
    assert len(t.tasks) == telemetry.MAX_TASK_NAMES + 1
    assert t.tasks[telemetry.OTHER].outcomes[0] == 10


# ---------------------------------------------------------------------------- fed by the core


def test_the_core_feeds_submits_starts_results_retries_and_losses():
    h = Harness()
    h.send(b"w", p.Ready("q", 2, 11, "host"))
    ok, bad, again = envelope("ok", created_at=time.time() - 2), envelope("bad"), envelope("again")
    out = h.send(CLIENT, p.Submit(1, None, [ok, bad]))
    first, second = h.deliveries(out)
    tel = h.core.telemetry
    assert tel.rates_now()["submitted"] == pytest.approx(2 / 60)
    h.result(b"w", first, "success")
    h.result(b"w", second, "error", "Traceback\nValueError: no")
    assert tel.tasks["ok"].outcomes[:3] == [1, 1, 0] and tel.tasks["ok"].run.count == 1
    assert tel.tasks["ok"].wait.count == 1 and tel.tasks["ok"].wait.total >= 2
    assert tel.tasks["bad"].outcomes[:3] == [1, 0, 1]
    assert tel.rates_now()["finished"] == pytest.approx(2 / 60) and tel.rates_now()["failed"] == pytest.approx(1 / 60)
    [delivery] = h.deliveries(h.send(CLIENT, p.Submit(2, None, [again])))
    h.result(b"w", delivery, "retry", "Traceback\nTimeoutError: slow", {"retry": 2})
    assert tel.tasks["again"].outcomes[telemetry.OUTCOMES.index("retried")] == 1
    assert tel.tasks["again"].run.count == 1
    assert [f["exception"] for f in tel.failures_now()] == ["TimeoutError", "ValueError"]
    h.send(b"w", p.Bye())  # the retry's child was running there
    assert tel.tasks["again"].outcomes[telemetry.OUTCOMES.index("lost")] == 1


def test_status_shows_queued_depth_per_priority_and_what_each_worker_runs():
    h = Harness()
    queued = [envelope("idle", priority) for priority in (0, 5, 5)]
    h.send(CLIENT, p.Submit(1, None, [*queued, envelope("run", queue="busy")]))
    h.send(b"w", p.Ready("busy", 3, 77, "box"))
    reply = h.reply(p.Ops(9, "status"))
    assert isinstance(reply, p.Reply)
    status = reply.value
    [busy, q] = status["queues"]
    assert (q["name"], q["depth"], q["by_priority"], q["delayed"], q["dead"]) == ("q", 3, {"0": 1, "5": 2}, 0, 0)
    assert busy["depth"] == 0
    [worker] = status["workers"]
    assert (worker["pid"], worker["host"], worker["queue"], worker["slots"]) == (77, "box", "busy", 3)
    [running] = worker["running"]
    assert running["name"] == "run" and time.time() - 5 < running["since"] <= time.time()
    assert status["totals"]["submitted"] == 4 and status["rates"]["submitted"] == pytest.approx(4 / 60)


def test_a_task_cancelled_in_line_leaves_the_depth_and_is_never_dispatched():
    h = Harness()
    first, cancelled, last = (envelope("t", priority) for priority in (3, 3, 1))
    h.send(CLIENT, p.Submit(1, None, [first, cancelled, last]))
    h.send(CLIENT, p.Cancel(2, [cancelled.uuid], "no"))
    [queue] = h.reply(p.Ops(3, "status")).value["queues"]
    assert queue["depth"] == 2 and queue["by_priority"] == {"1": 1, "3": 1}
    out = h.send(b"w", p.Ready("q", 5, 11, "host"))
    assert [d.envelope.uuid for d in h.deliveries(out)] == [last.uuid, first.uuid]
    assert len(h.core.dispatcher.queues["q"]) == 0 and h.core.dispatcher.queues["q"].levels() == {}


def test_retry_runs_an_ended_task_again_as_a_linked_task_once():
    h = Harness()
    h.send(b"w", p.Ready("q", 1, 11, "host"))
    failed = envelope("f")
    [delivery] = h.deliveries(h.send(CLIENT, p.Submit(1, None, [failed])))
    h.result(b"w", delivery, "error", "Traceback\nValueError: no")
    reply = h.reply(p.Ops(2, "retry", {"uuid": failed.uuid}))
    assert isinstance(reply, p.Reply)
    child = reply.as_uuid()
    view = p.Reply(3, h.reply(p.Ops(3, "inspect", {"uuid": failed.uuid})).value).as_view()
    assert view is not None and view.retries == [child]
    child_view = h.reply(p.Ops(4, "inspect", {"uuid": child}))
    assert p.TaskView.from_wire(child_view.value).snapshot.extra["retry_parent_uuid"] == ops.text(failed.uuid)
    again = h.reply(p.Ops(5, "retry", {"uuid": failed.uuid}))
    assert isinstance(again, p.Error) and again.code == "not-retryable" and "retried already" in again.message
    unknown = h.reply(p.Ops(6, "retry", {"uuid": os.urandom(16)}))
    assert isinstance(unknown, p.Error) and unknown.code == "no-such-task"
    running = h.reply(p.Ops(7, "retry", {"uuid": child}))
    assert isinstance(running, p.Error) and "only a task that ended error or cancel" in running.message


def test_views_leave_out_values_too_large_to_show():
    h = Harness()
    big = p.TaskEnvelope(os.urandom(16), "big", "q", 0, time.time(),
                         p.pack_arguments("big", ["x" * (p.Ops.MAX_VALUE + 1)], {}), {})
    h.send(CLIENT, p.Submit(1, None, [big]))
    view = p.Reply(2, h.reply(p.Ops(2, "inspect", {"uuid": big.uuid})).value).as_view()
    assert view is not None and view.trimmed == ["args"] and view.snapshot.envelope.payload == b""


def test_timer_reports_expire_unless_refreshed_and_stay_bounded():
    reports = ops.TimerReports()
    reports.report("app", "h:1", [["tick", "interval[0:00:05]", NOW + 5]], 30, now=100)
    reports.report("app", "h:2", [["tock", "cron", None]], 10, now=100)
    assert [j["task"] for j in reports.listing(105)] == ["tick", "tock"]  # a known next fire first
    assert [j["task"] for j in reports.listing(115)] == ["tick"]
    reports.report("app", "h:1", [], 0, now=116)  # a timer that stops says so
    assert reports.listing(116) == []
    for i in range(ops.MAX_TIMER_SOURCES + 5):
        reports.report("app", f"h:{i}", [["t", "x", None]], 30 + i, now=200)
    assert len(reports.listing(201)) == ops.MAX_TIMER_SOURCES


@pytest.mark.parametrize("body", [
    [1, "status", {"limit": 5000}],
    [1, "drop-tables", {}],
    [1, "inspect", {"uuid": b"short"}],
    [1, "tasks", {"name": "n" * 500}],
    [1, "timers", {"app": "a", "source": "s", "ttl": 5, "jobs": [["t", "x", None]] * 500}],
])
def test_ops_requests_out_of_bounds_are_refused_at_decode(body):
    import msgpack

    with pytest.raises(DecodeError):
        p.decode([p.HEADER, b"OPS", msgpack.packb(body, use_bin_type=True)])


# ---------------------------------------------------------------------------- storage listings


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, tmp_path):
    store = MemoryStorage() if request.param == "memory" else SQLiteStorage(tmp_path / "data")
    yield store
    store.close()


def test_storage_lists_the_newest_records_first_with_filters_and_a_limit(storage):
    now = time.time()
    records = [TaskRecord(envelope(name, queue=queue), now) for name, queue in
               [("a", "q1"), ("b", "q1"), ("a", "q2"), ("a", "q1"), ("b", "q2")]]
    storage.add_many(records)
    records[1].failed("Traceback\nValueError: x", now)
    storage.save(records[1])
    storage.commit()
    uuids = [r.uuid for r in records]
    assert [r.uuid for r in storage.records(limit=10)] == uuids[::-1]
    assert [r.uuid for r in storage.records(name="a", limit=2)] == [uuids[3], uuids[2]]
    assert [r.uuid for r in storage.records(app="q2", limit=10)] == [uuids[4], uuids[2]]
    assert [r.uuid for r in storage.records(status="error", limit=10)] == [uuids[1]]
    assert storage.records(limit=0) == []
    assert storage.dead_counts() == {"q1": 1}


# ---------------------------------------------------------------------------- the metrics collector


def sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        metric, _, value = line.rpartition(" ")
        if metric == (f"{name}{{{wanted}}}" if labels else name):
            return float(value)
    raise AssertionError(f"no sample {name} {labels} in:\n{text}")


def test_the_collector_exposes_counters_gauges_and_histograms():
    h = Harness()
    h.send(b"w", p.Ready("q", 4, 11, "host"))
    out = h.send(CLIENT, p.Submit(1, None, [envelope("ok") for _ in range(3)]))
    for delivery in h.deliveries(out):
        h.result(b"w", delivery, "success")
    h.send(CLIENT, p.Submit(2, None, [envelope("slow"), envelope("later", 7, queue="idle")]))
    registry = CollectorRegistry()
    registry.register(BrokerCollector(h.core))
    text = generate_latest(registry).decode()
    assert sample(text, "qtasks_tasks_total", task="ok", status="submitted") == 3
    assert sample(text, "qtasks_tasks_total", task="ok", status="succeeded") == 3
    assert sample(text, "qtasks_tasks_total", task="ok", status="failed") == 0
    assert sample(text, "qtasks_run_seconds_count", task="ok") == 3
    assert sample(text, "qtasks_run_seconds_bucket", task="ok", le="+Inf") == 3
    assert sample(text, "qtasks_queue_wait_seconds_count", task="ok") == 3
    assert sample(text, "qtasks_queue_wait_seconds_count", task="slow") == 0  # timed when its result comes
    assert sample(text, "qtasks_queue_depth", queue="idle", priority="7") == 1
    assert sample(text, "qtasks_in_flight_tasks") == 1
    assert sample(text, "qtasks_workers") == 1 and sample(text, "qtasks_worker_slots") == 4
