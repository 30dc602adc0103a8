"""The wire format: every message round-trips, and nothing malformed escapes as another exception."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qtasks import protocol as p
from qtasks.exc import DecodeError, MessageTooLargeError, ProtocolVersionError, UnserializableArgumentError


def envelope(name: str = "echo", priority: int = 0) -> p.TaskEnvelope:
    return p.TaskEnvelope(os.urandom(16), name, "queue", priority, time.time(),
                          p.pack_arguments(name, [1, "two"], {"three": 3.0}), {"k": "v"})


def outcome() -> p.TaskOutcome:
    return p.TaskOutcome(os.urandom(16), 2, "success", p.pack_value([1]), None, time.time(), {"x": 1})


MESSAGES = [
    p.Submit(1, None, [envelope(), envelope("other", 5)]),
    p.Submit(2, 1.5, []),
    p.Wait(3, [os.urandom(16)], 2.0),
    p.Get(4, [os.urandom(16), os.urandom(16)]),
    p.Stats(5),
    p.Ping(6),
    p.Reply(7, {"any": ["value"]}),
    p.Notify([(os.urandom(16), p.TaskSnapshot(envelope(), "error", None, "Traceback...", time.time(), 3, {},
                                              [p.pack_value(1)]))]),
    p.Progress([(os.urandom(16), 0, p.pack_value("step"))]),
    p.Cancel(9, [os.urandom(16)], "why"),
    p.Cancel(None, [os.urandom(16)], ""),
    p.Watch(10, os.urandom(16), 5.0),
    p.Yield([(os.urandom(16), 1, 0, p.pack_value({"s": 1}))]),
    p.StateOp(11, ("app", "Cls", ""), "get", p.pack_value([])),
    p.Error(None, "malformed", "why"),
    p.Error(8, "internal", "why"),
    p.Ready("queue", 10, 123, "host", 99, "signal 9, SIGKILL", [(os.urandom(16), 1)]),
    p.Welcome(os.urandom(8), 0.5, 3),
    p.Heartbeat(),
    p.Dispatch([p.Delivery(envelope(), 1)]),
    p.Result([outcome()]),
    p.Return([(os.urandom(16), 1)]),
    p.Bye(),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message):
    frames = p.encode(message)
    assert frames[0] == p.HEADER and frames[1] == message.COMMAND
    assert p.decode(frames) == message


def test_reply_values_have_their_own_decoders():
    hello = p.BrokerHello(os.urandom(8), 1_000_000)
    assert p.Reply(1, p.Reply.submit_value(3, hello)).as_submit_ack() == (3, hello)
    unknown = [os.urandom(16)]
    assert p.Reply(1, p.Reply.wait_value(unknown, hello)).as_wait_ack() == (unknown, hello)
    assert p.decode(p.encode(p.Reply(2, hello.to_wire()))).as_hello() == hello
    snapshot = p.TaskSnapshot(envelope(), "new", None, None, 1.0, 0, {})
    decoded = p.decode(p.encode(p.Reply(1, p.Reply.get_value([snapshot, None]))))
    assert decoded.as_snapshots() == [snapshot, None]


def test_version_mismatch_names_both_versions():
    with pytest.raises(ProtocolVersionError, match=r"'QTASKS/9'.*version 2"):
        p.decode([b"QTASKS/9", b"PING", msgpack.packb([1])])


@pytest.mark.parametrize("frames, needle", [
    ([b"x"], "expected 3 frames"),
    ([p.HEADER, b"PING", b"\x91\x01", b""], "expected 3 frames"),
    ([b"nope", b"PING", b"\x91\x01"], "not a QTasks message"),
    ([p.HEADER, b"NOPE", b"\x91\x01"], "unknown command"),
    ([p.HEADER, b"PING", b"\x92"], "not valid msgpack"),
    ([p.HEADER, b"PING", msgpack.packb(["1"])], "req_id must be an integer"),
    ([p.HEADER, b"SUBMIT", msgpack.packb([1, None, [[b"x" * 16, "", "q", 0, 0.0, b"", {}]]])],
     "non-empty string"),
    ([p.HEADER, b"READY", msgpack.packb({"queue": "q", "concurrency": -1, "pid": 1, "host": "h"})],
     "must not be negative"),
    ([p.HEADER, b"GET", msgpack.packb({"a": 2})], "wrong shape"),
    ([p.HEADER, b"GET", msgpack.packb({1: 2})], "map key"),
])
def test_malformed_frames_raise_decode_error_saying_why(frames, needle):
    with pytest.raises(DecodeError, match=needle):
        p.decode(frames)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=5),
       st.sampled_from(sorted(p._BY_COMMAND)))
def test_decode_raises_nothing_but_protocol_errors(frames, command):
    for candidate in (frames, [p.HEADER, command, *frames[:1]]):
        try:
            p.decode(candidate)
        except (DecodeError, ProtocolVersionError):
            pass


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.text() | st.binary(),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(), kids, max_size=3),
                    max_leaves=10))
def test_decode_of_any_msgpack_body_raises_only_decode_error(body):
    for command in p._BY_COMMAND:
        try:
            p.decode([p.HEADER, command, msgpack.packb(body)])
        except DecodeError:
            pass


def test_arguments_round_trip_and_aware_datetimes_travel():
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    args, kwargs = p.unpack_arguments(p.pack_arguments("t", (1, (2, 3)), {"at": moment}))
    assert args == [1, [2, 3]] and kwargs == {"at": moment}


@pytest.mark.parametrize("args, kwargs, needle", [
    ((object(),), {}, "argument #0 of type object"),
    ((1,), {"s": {1}}, "argument 's' of type set"),
    ((datetime(2026, 1, 1),), {}, "argument #0 of type datetime"),
    ((2**70,), {}, "argument #0 of type int"),
])
def test_unserializable_arguments_name_the_argument_and_type(args, kwargs, needle):
    with pytest.raises(UnserializableArgumentError, match=needle) as caught:
        p.pack_arguments("t", args, kwargs)
    assert isinstance(caught.value, TypeError) and "task 't'" in str(caught.value)


def test_arguments_over_the_size_limit_are_refused_with_the_culprit():
    with pytest.raises(MessageTooLargeError, match=r"argument 'blob', a bytes\).* 5012 bytes, over the 1000-byte"):
        p.pack_arguments("t", [1], {"blob": b"x" * 5000}, max_size=1000)


def test_bad_payload_is_a_decode_error():
    with pytest.raises(DecodeError):
        p.unpack_arguments(b"\xc1")
    with pytest.raises(DecodeError):
        p.unpack_arguments(msgpack.packb({"not": "a pair"}))
