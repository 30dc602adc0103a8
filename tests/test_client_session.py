"""The client session without sockets: requests, pushed results, deadlines, restarts, limits."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from qtasks import protocol as p
from qtasks.client.session import PROBE_AFTER, UNPROBED_SIZE, ClientSession
from qtasks.deadlines import TimerHeap
from qtasks.exc import (
    BrokerReplyError,
    BrokerUnavailableError,
    DecodeError,
    MessageTooLargeError,
    NotABrokerError,
    SecurityMismatchError,
    StateError,
    TaskLostError,
)
from qtasks.urls import NOTHING, STRANGER, ZEROMQ

BOOT = b"boot-one"
HELLO = p.BrokerHello(BOOT, 1_000_000)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """Drives a ClientSession the way a driver does; plays the broker by hand."""

    def __init__(self, probe_finds: str = ZEROMQ, mechanism: str | None = "NULL", **options: Any) -> None:
        self.clock = Clock()
        self.probed: list[str] = []

        def probe(url: str) -> tuple[str, str]:
            self.probed.append(url)
            return probe_finds, "test"

        self.session = ClientSession("tcp://127.0.0.1:9", timers=TimerHeap(self.clock), probe=probe,
                                     mechanism=lambda url: mechanism, connect_timeout=5.0, ping_interval=1.0,
                                     **options)

    def sent(self) -> list[p.Message]:
        return [p.decode(frames) for _, frames in self.session.take_outgoing()]

    def reply(self, message: p.Message) -> None:
        self.session.receive(p.encode(message))

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        self.session.run_due()


def envelope(name: str = "t", payload: bytes | None = None) -> p.TaskEnvelope:
    return p.TaskEnvelope(os.urandom(16), name, "q", 0, time.time(),
                          payload if payload is not None else p.pack_arguments(name, [], {}), {})


def snapshot(env: p.TaskEnvelope, status: str = "success") -> p.TaskSnapshot:
    return p.TaskSnapshot(env, status, p.pack_value(1), None, 0.0, 1, {})


def test_a_submit_resolves_to_the_accepted_count_and_learns_the_brokers_limit():
    h = Harness()
    future = h.session.submit([envelope(), envelope()])
    [submit] = h.sent()
    assert isinstance(submit, p.Submit) and len(submit.envelopes) == 2 and submit.wait is None
    h.reply(p.Reply(submit.req_id, p.Reply.submit_value(2, HELLO)))
    assert future.result(0) == 2 and h.session.max_message_size == 1_000_000


def test_results_are_pushed_and_a_wait_resolves_only_after_the_broker_acknowledged_it():
    h = Harness()
    first, second = envelope(), envelope()
    future = h.session.submit([first, second], wait=10.0)
    [submit] = h.sent()
    # Given a result pushed before the SUBMIT's acknowledgement arrives
    h.reply(p.Notify([(first.uuid, snapshot(first)), (second.uuid, snapshot(second, "error"))]))
    assert not future.done()
    # When the acknowledgement comes, the wait resolves in the order asked
    h.reply(p.Reply(submit.req_id, p.Reply.submit_value(2, HELLO)))
    assert [s.status for s in future.result(0)] == ["success", "error"]


def test_a_wait_ends_at_its_deadline_with_none_for_what_did_not_finish():
    h = Harness()
    done, late = envelope(), envelope()
    future = h.session.wait([done.uuid, late.uuid], timeout=2.0)
    [wait] = h.sent()
    h.reply(p.Reply(wait.req_id, p.Reply.wait_value([], HELLO)))
    h.reply(p.Notify([(done.uuid, snapshot(done))]))
    h.advance(1.0)
    assert not future.done()
    h.advance(1.5)
    result = future.result(0)
    assert result[0].status == "success" and result[1] is None


def test_an_unanswered_request_fails_everything_and_asks_for_a_new_socket():
    h = Harness()
    stats = h.session.stats()
    waiting = h.session.wait([os.urandom(16)], timeout=60.0)
    h.sent()
    h.advance(PROBE_AFTER)  # the listener is a ZeroMQ peer: keep waiting
    assert h.probed and not stats.done()
    h.advance(5.0)
    with pytest.raises(BrokerUnavailableError, match="tcp://127.0.0.1:9 within 5 s"):
        stats.result(0)
    with pytest.raises(BrokerUnavailableError):
        waiting.result(0)
    assert h.session.needs_new_socket and h.session.outbox == []
    h.session.socket_replaced()
    assert not h.session.needs_new_socket


def test_a_listener_that_is_not_a_zeromq_peer_fails_the_first_request_at_once():
    h = Harness(probe_finds=STRANGER)
    future = h.session.ping()
    h.sent()
    h.advance(PROBE_AFTER)
    with pytest.raises(NotABrokerError, match="not a QTasks broker"):
        future.result(0)
    # nothing listening yet: the request keeps its full time (a broker may be starting)
    h = Harness(probe_finds=NOTHING)
    future = h.session.ping()
    h.sent()
    h.advance(PROBE_AFTER)
    assert not future.done()


def test_a_broker_whose_security_differs_fails_the_first_request_at_once_saying_what_to_do():
    # a CURVE broker, and a client without keys: ZeroMQ would retry the handshake forever
    h = Harness(mechanism="CURVE")
    future = h.session.ping()
    h.sent()
    h.advance(PROBE_AFTER)
    with pytest.raises(SecurityMismatchError, match="requires CURVE keys and this side has none"):
        future.result(0)
    assert h.session.needs_new_socket
    # a client with keys, and a broker without CURVE
    h = Harness(mechanism="NULL", curve=True)
    future = h.session.ping()
    h.sent()
    h.advance(PROBE_AFTER)
    with pytest.raises(SecurityMismatchError, match="does not use CURVE"):
        future.result(0)


def test_a_client_with_keys_that_gets_no_answer_is_told_the_broker_may_have_refused_them():
    h = Harness(mechanism="CURVE", curve=True)
    future = h.session.ping()
    h.sent()
    h.advance(PROBE_AFTER)
    assert not future.done()  # both sides speak CURVE: the keys themselves may be wrong, or the broker slow
    h.advance(5.0)
    with pytest.raises(BrokerUnavailableError, match="may have refused them.*--curve-clients"):
        future.result(0)


def test_a_large_message_waits_for_the_brokers_limit_and_one_over_it_is_refused_unsent():
    h = Harness()
    big = envelope(payload=b"x" * (UNPROBED_SIZE + 10))
    future = h.session.submit([big])
    [ping] = h.sent()
    assert isinstance(ping, p.Ping)
    h.reply(p.Reply(ping.req_id, p.BrokerHello(BOOT, UNPROBED_SIZE + 1000).to_wire()))
    [submit] = h.sent()
    assert isinstance(submit, p.Submit)
    h.reply(p.Reply(submit.req_id, p.Reply.submit_value(1, HELLO)))
    assert future.result(0) == 1
    # now the limit is known (1,000,000): a bigger message fails at once, nothing is sent
    huge = h.session.submit([envelope(payload=b"x" * 1_100_000)])
    assert h.sent() == []
    with pytest.raises(MessageTooLargeError, match=r"takes 11\d{5} bytes, over the 1000000-byte limit"):
        huge.result(0)


def test_a_restarted_broker_is_asked_again_and_lost_tasks_come_back_with_what_arrived():
    h = Harness()
    arrived, lost = envelope(), envelope()
    future = h.session.submit([arrived, lost], wait=30.0)
    [submit] = h.sent()
    h.reply(p.Reply(submit.req_id, p.Reply.submit_value(2, HELLO)))
    h.reply(p.Notify([(arrived.uuid, snapshot(arrived))]))
    # When the ping while waiting finds another boot id
    h.advance(1.0)
    [ping] = h.sent()
    h.reply(p.Reply(ping.req_id, p.BrokerHello(b"boot-two", 1_000_000).to_wire()))
    # Then the wait is registered again, and what the new broker does not know is lost
    [wait] = h.sent()
    assert isinstance(wait, p.Wait) and wait.uuids == [lost.uuid]
    h.reply(p.Reply(wait.req_id, p.Reply.wait_value([lost.uuid], p.BrokerHello(b"boot-two", 1_000_000))))
    with pytest.raises(TaskLostError) as caught:
        future.result(0)
    assert [str(u) for u in caught.value.uuids] == [str(__import__("uuid").UUID(bytes=lost.uuid))]
    assert caught.value.results[0].envelope.uuid == arrived.uuid and caught.value.results[1] is None


def test_a_stream_gets_each_step_once_in_order_then_its_end():
    h = Harness()
    env = envelope()
    items: list[tuple[Any, ...]] = []
    h.session.watch(env.uuid, 10.0, items.append)
    [watch] = h.sent()
    running = p.TaskSnapshot(env, "process", None, None, 0.0, 1, {}, [p.pack_value("a")])
    h.reply(p.Reply(watch.req_id, p.Reply.watch_value(running)))
    h.reply(p.Progress([(env.uuid, 0, p.pack_value("a")), (env.uuid, 1, p.pack_value("b"))]))
    h.reply(p.Notify([(env.uuid, snapshot(env))]))
    assert [(i[0], i[1]) for i in items[:2]] == [("step", 0), ("step", 1)]
    assert items[2][0] == "end" and items[2][1].status == "success" and items[2][2] is None


def test_error_replies_and_malformed_replies_fail_only_their_request():
    h = Harness()
    state = h.session.state(("app", "S", ""), "incr", p.pack_value(["k", "x"]))
    get = h.session.get([os.urandom(16)])
    stats = h.session.stats()
    first, second, third = h.sent()
    h.reply(p.Error(first.req_id, "state", "cannot incr 'k'"))
    h.reply(p.Reply(second.req_id, "not an array"))
    h.reply(p.Error(third.req_id, "internal", "see the log"))
    with pytest.raises(StateError, match="cannot incr"):
        state.result(0)
    with pytest.raises(DecodeError, match="malformed reply"):
        get.result(0)
    with pytest.raises(BrokerReplyError, match=r"\(internal\)"):
        stats.result(0)


def test_a_message_the_driver_could_not_send_fails_its_request():
    h = Harness()
    future = h.session.ping()
    [(req_id, _)] = h.session.take_outgoing()
    h.session.send_failed(req_id, BrokerUnavailableError("tcp://127.0.0.1:9", 0.0))
    with pytest.raises(BrokerUnavailableError):
        future.result(0)
