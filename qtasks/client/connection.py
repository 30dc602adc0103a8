"""A client's link to the broker: one DEALER socket, driven by exactly one thread.

ZeroMQ sockets must not be shared between threads, and an app object is shared by
web-server threads and asyncio tasks alike. Two ways to keep that rule, one class:

- **threaded** (async callers, streams): an I/O thread owns the socket. Public methods
  only append a closure to a deque and wake the thread through a pipe; it alone touches
  the socket and the bookkeeping below, and answers through ``concurrent.futures.Future``
  objects (the async face wraps them). No locks::

      callers ──closure──▶ deque ─▶ I/O thread ──SUBMIT/WAIT/GET──▶ broker
         ▲                              │ pending {req_id: request}
         └──── Future.set_result ◀──────┤ waits   {uuid: [BatchWait]}  ◀── REPLY / NOTIFY
                                        │ timers  (request and wait deadlines, pings)

- **not threaded** (blocking callers): each thread has a connection of its own and
  runs the very same loop itself while it waits (:meth:`BrokerConnection.drive`),
  saving the two thread hand-offs per call.

Every wait is bounded: a request the broker does not answer within
``connect_timeout`` fails with :class:`BrokerUnavailableError` (and the socket is
replaced, so nothing queued for a broker that may appear later is sent behind
the caller's back); a result wait ends at its deadline with ``None`` for the tasks
that did not finish; while results are awaited the connection pings the broker, so a
broker that died or restarted is noticed instead of waited on.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid as uuid_module
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable, Optional

import zmq

from qtasks.deadlines import Timer, TimerHeap
from qtasks.enums import FINAL_STATUSES
from qtasks.exc import (
    BrokerUnavailableError,
    DecodeError,
    MessageTooLargeError,
    NotABrokerError,
    TaskLostError,
    reply_error,
)
from qtasks.protocol import (
    BrokerHello,
    Cancel,
    Error,
    Get,
    Message,
    Notify,
    Ping,
    Progress,
    Reply,
    StateOp,
    Stats,
    Submit,
    TaskEnvelope,
    TaskSnapshot,
    Wait,
    Watch,
    decode,
    encode,
)
from qtasks.transport import send_frames
from qtasks.urls import STRANGER, probe

log = logging.getLogger("qtasks.client")

HIGH_WATER_MARK = 100_000
UNPROBED_SIZE = 64 * 1024
"""Messages up to this size go out before the broker's limit is known; a larger one waits for a PING."""
PROBE_AFTER = 0.3
"""Seconds a first request may go unanswered before the listener at the URL is checked."""

StreamItem = tuple[Any, ...]
"""("step", index, msgpack value) for each step, then ("end", final snapshot or None, error or None)."""


class _Request:
    __slots__ = ("on_reply", "on_fail", "timer")

    def __init__(self, on_reply: Callable[[Reply], None], on_fail: Callable[[BaseException], None],
                 timer: Timer) -> None:
        self.on_reply = on_reply
        self.on_fail = on_fail
        self.timer = timer


class _BatchWait:
    """Waiting for the final snapshots of ``uuids``; resolves ``future`` once, in uuid order."""

    __slots__ = ("uuids", "missing", "found", "future", "deadline", "timer", "acked")

    def __init__(self, uuids: list[bytes], deadline: float) -> None:
        self.uuids = uuids
        self.missing = set(uuids)
        self.found: dict[bytes, TaskSnapshot] = {}
        self.future: Future[list[TaskSnapshot | None]] = Future()
        self.deadline = deadline
        self.timer: Timer | None = None
        self.acked = False
        """The broker confirmed it has the request (before that, a deadline cannot end the wait)."""

    def resolve(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.future.done():
            found = self.found
            self.future.set_result([found.get(u) for u in self.uuids])

    def fail(self, error: BaseException) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.future.done():
            self.future.set_exception(error)


class _Stream:
    """One follower of a task's steps: each step index is delivered once, in order of arrival."""

    __slots__ = ("on_item", "next_index")

    def __init__(self, on_item: Callable[[StreamItem], None]) -> None:
        self.on_item = on_item
        self.next_index = 0

    def deliver(self, index: int, value: bytes) -> None:
        if index >= self.next_index:
            self.next_index = index + 1
            _guarded(lambda: self.on_item(("step", index, value)))


class BrokerConnection:
    """The client side of the protocol, over one DEALER socket.

    ``threaded`` (the default): an I/O thread owns the socket; any thread or event loop
    may call in, and gets ``Future`` objects resolved by that thread.
    Not threaded: the connection belongs to the thread that made it, which drives the
    socket itself while it waits (:meth:`drive`): no hand-off to another thread, which
    is what a blocking caller wants (each thread gets its own, see ``ZmqBroker.blocking``).
    """

    def __init__(self, url: str, *, connect_timeout: float = 5.0, ping_interval: float = 1.0,
                 threaded: bool = True) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.threaded = threaded
        self.pid = os.getpid()
        self._calls: deque[Callable[[], None]] = deque()
        self._closing = False
        self._closed = threading.Event()
        # Everything below belongs to the thread that runs the socket.
        self._context: zmq.Context[Any] | None = None
        self._socket: zmq.Socket[Any] | None = None
        self._poller = zmq.Poller()
        self._timers = TimerHeap()
        self._next_id = 0
        self._pending: dict[int, _Request] = {}
        self._waits: dict[bytes, list[_BatchWait]] = {}
        self._streams: dict[bytes, list[_Stream]] = {}
        self._boot_id: bytes | None = None
        self._max_message_size: int | None = None
        """The broker's message limit, once it told us (every PING, SUBMIT and WAIT reply does)."""
        self._heard = False
        """Something answered on this socket (a broker, then: no need to probe the listener)."""
        self._probe_timer: Timer | None = None
        self._pinging = False
        if threaded:
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_w, False)
            self._poller.register(self._wake_r, zmq.POLLIN)
            self._thread = threading.Thread(target=self._run, name="qtasks-client-io", daemon=True)
            self._thread.start()
        else:
            self._owner = threading.get_ident()
            self._context = zmq.Context.instance()  # shared by this process's per-thread sockets
            self._open_socket()

    # ------------------------------------------------------------------ thread-safe API

    def submit(self, envelopes: list[TaskEnvelope], wait: float | None = None) -> Future[Any]:
        """Send ``envelopes``. Resolves to the accepted count, or with ``wait`` to their final snapshots."""
        if wait is None:
            return self._simple(lambda req_id: Submit(req_id, None, envelopes),
                                lambda reply: self._note_hello(*reply.as_submit_ack()))
        batch = _BatchWait([e.uuid for e in envelopes], self._timers.clock() + wait)

        def on_reply(reply: Reply) -> None:
            self._note_hello(*reply.as_submit_ack())
            self._acked(batch)

        def run() -> None:
            self._register_wait(batch)
            self._request(lambda req_id: Submit(req_id, wait, envelopes), on_reply,
                          lambda error: self._drop_wait(batch, error))

        self._call(run)
        return batch.future

    def wait(self, uuids: list[bytes], timeout: float) -> Future[list[TaskSnapshot | None]]:
        """Resolves to the final snapshots of ``uuids`` (None for those unfinished after ``timeout``)."""
        batch = _BatchWait(uuids, self._timers.clock() + timeout)

        def run() -> None:
            self._register_wait(batch)
            self._send_wait(batch, after_restart=False)

        self._call(run)
        return batch.future

    def watch(self, uuid: bytes, timeout: float, on_item: Callable[[StreamItem], None]) -> None:
        """Follow a task's steps: ``on_item`` is called on the I/O thread for each step, then once
        with the end (the final snapshot; None when unknown or not finished within ``timeout``)."""
        stream = _Stream(on_item)
        batch = _BatchWait([uuid], self._timers.clock() + timeout)

        def ended(done: Future[list[TaskSnapshot | None]]) -> None:
            streams = self._streams.get(uuid, [])
            if stream in streams:
                streams.remove(stream)
                if not streams:
                    del self._streams[uuid]
            error = done.exception()
            _guarded(lambda: on_item(("end", None if error else done.result()[0], error)))

        def on_reply(reply: Reply) -> None:
            snapshot = reply.as_watch()
            if snapshot is None:  # unknown task: the stream ends at once
                self._drop_wait(batch, None)
                return
            for index, value in enumerate(snapshot.steps):
                stream.deliver(index, value)
            if snapshot.status in FINAL_STATUSES:
                batch.found[uuid] = snapshot
                self._drop_wait(batch, None)
            else:
                self._acked(batch)

        def run() -> None:
            batch.future.add_done_callback(ended)
            self._register_wait(batch)
            self._streams.setdefault(uuid, []).append(stream)
            self._request(lambda req_id: Watch(req_id, uuid, timeout), on_reply,
                          lambda error: self._drop_wait(batch, error))

        self._call(run)

    def cancel(self, uuids: list[bytes], reason: str) -> Future[list[TaskSnapshot | None]]:
        """Resolves to the tasks' records after the cancel (None for unknown uuids)."""
        return self._simple(lambda req_id: Cancel(req_id, uuids, reason), Reply.as_snapshots)

    def get(self, uuids: list[bytes]) -> Future[list[TaskSnapshot | None]]:
        return self._simple(lambda req_id: Get(req_id, uuids), Reply.as_snapshots)

    def stats(self) -> Future[dict[str, Any]]:
        return self._simple(lambda req_id: Stats(req_id), lambda reply: reply.value)

    def ping(self) -> Future[bytes]:
        """Resolves to the broker's boot id."""
        return self._simple(lambda req_id: Ping(req_id), self._on_pong)

    def state(self, namespace: tuple[str, str, str], op: str, args: bytes) -> Future[bytes]:
        """Resolves to the packed result of a state operation."""
        return self._simple(lambda req_id: StateOp(req_id, namespace, op, args), Reply.as_packed)

    def close(self, timeout: float = 2.0) -> None:
        """Stop using the socket; whatever still waits fails. Idempotent."""
        if self._closed.is_set() or os.getpid() != self.pid:
            return
        self._closing = True
        if self.threaded:
            self._wake()
            self._closed.wait(timeout)
        elif threading.get_ident() == self._owner:
            self._shutdown()

    def drive(self, future: Future[Any], timeout: float) -> bool:
        """Not threaded: run the socket on this thread until ``future`` is done (False: timed out)."""
        if threading.get_ident() != self._owner:
            raise RuntimeError("a blocking broker connection is used only by the thread that made it")
        deadline = time.monotonic() + timeout
        while not future.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing:
                return future.done()
            self._turn(remaining)
        return True

    @property
    def closed(self) -> bool:
        return self._closing

    @property
    def max_message_size(self) -> int | None:
        """The broker's message limit, once it answered (read from any thread: one attribute)."""
        return self._max_message_size

    # ------------------------------------------------------------------ caller side helpers

    def _simple(self, make: Callable[[int], Message], convert: Callable[[Reply], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._call(lambda: self._request(make, lambda reply: future.set_result(convert(reply)),
                                         lambda error: _fail(future, error)))
        return future

    def _call(self, fn: Callable[[], None]) -> None:
        if self._closing:
            raise RuntimeError("this broker connection is closed")
        if not self.threaded:
            fn()  # the owning thread itself runs the socket
            return
        self._calls.append(fn)
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:  # the pipe is full of wake-ups already
            pass

    # ------------------------------------------------------------------ I/O thread

    def _run(self) -> None:
        try:
            self._context = zmq.Context()
            self._open_socket()
            while not self._closing:
                self._turn(None)
        except Exception:
            log.exception("the client I/O thread for %s failed", self.url)
        finally:
            self._shutdown()

    def _open_socket(self) -> None:
        assert self._context is not None
        if self._socket is not None:
            self._poller.unregister(self._socket)
            self._socket.close(linger=0)
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, HIGH_WATER_MARK)
        sock.setsockopt(zmq.RCVHWM, HIGH_WATER_MARK)
        sock.setsockopt(zmq.IDENTITY, b"c-" + os.urandom(6).hex().encode())
        sock.connect(self.url)
        self._poller.register(sock, zmq.POLLIN)
        self._socket = sock
        self._heard = False

    def _turn(self, max_wait: Optional[float]) -> None:
        """One turn: wait for the socket, a caller or the next timer (at most ``max_wait``), then act."""
        timeout = self._timers.timeout()
        if max_wait is not None:
            timeout = max_wait if timeout is None else min(timeout, max_wait)
        events = dict(self._poller.poll(None if timeout is None else math.ceil(timeout * 1000)))
        if self.threaded and self._wake_r in events:
            os.read(self._wake_r, 65536)
        calls = self._calls
        while calls:
            _guarded(calls.popleft())
        if self._socket in events:
            self._receive()
        self._timers.run_due()

    def _shutdown(self) -> None:
        closed = RuntimeError("the broker connection was closed")
        self._fail_everything(closed)
        while self._calls:  # closures queued after the loop ended: run them so they fail cleanly
            _guarded(self._calls.popleft())
            self._fail_everything(closed)
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self.threaded and self._context is not None:
            self._context.term()
        self._closed.set()

    def __del__(self) -> None:
        if os.getpid() != self.pid:
            return
        if self.threaded:
            # The wake pipe outlives the thread so a late caller never writes to a recycled fd.
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
        elif self._socket is not None:  # its thread is gone (thread-locals die with it)
            self._socket.close(linger=0)

    def _receive(self) -> None:
        sock = self._socket
        assert sock is not None
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._heard = True
            try:
                message = decode(frames)
            except DecodeError as exc:
                log.warning("ignored a malformed message from the broker at %s: %s", self.url, exc)
                continue
            if isinstance(message, Notify):
                self._on_notify(message)
            elif isinstance(message, Progress):
                for uuid, index, value in message.steps:
                    for stream in self._streams.get(uuid, ()):
                        stream.deliver(index, value)
            elif isinstance(message, Reply):
                request = self._pending.pop(message.req_id, None)
                if request is not None:
                    request.timer.cancel()
                    try:
                        request.on_reply(message)
                    except Exception as exc:  # a reply of the wrong shape fails its request only
                        request.on_fail(DecodeError(f"malformed reply from the broker: {exc}",
                                                    message.value, exc))
            elif isinstance(message, Error):
                self._on_error(message)

    def _on_error(self, error: Error) -> None:
        request = self._pending.pop(error.req_id, None) if error.req_id is not None else None
        if request is None:
            log.warning("the broker at %s reported: %s (%s)", self.url, error.message, error.code)
            return
        request.timer.cancel()
        request.on_fail(reply_error(error.code, error.message))

    def _request(self, make: Callable[[int], Message], on_reply: Callable[[Reply], None],
                 on_fail: Callable[[BaseException], None]) -> None:
        self._next_id += 1
        req_id = self._next_id
        message = make(req_id)
        frames = encode(message)
        size = len(frames[2])
        limit = self._max_message_size
        if limit is None and size > UNPROBED_SIZE:
            # Learn the broker's limit first: a message over it would cost us the connection.
            def then_send(pong: Reply) -> None:
                self._on_pong(pong)
                self._send_request(req_id, message, frames, on_reply, on_fail)

            self._request(lambda ping_id: Ping(ping_id), then_send, on_fail)
            return
        self._send_request(req_id, message, frames, on_reply, on_fail)

    def _send_request(self, req_id: int, message: Message, frames: list[bytes],
                      on_reply: Callable[[Reply], None], on_fail: Callable[[BaseException], None]) -> None:
        limit = self._max_message_size
        if limit is not None and len(frames[2]) > limit:
            on_fail(MessageTooLargeError(_describe(message), len(frames[2]), limit))
            return
        timer = self._timers.call_later(self.connect_timeout, self._unanswered, req_id)
        self._pending[req_id] = _Request(on_reply, on_fail, timer)
        if not self._heard and self._probe_timer is None:
            self._probe_timer = self._timers.call_later(min(PROBE_AFTER, self.connect_timeout),
                                                        self._check_listener)
        assert self._socket is not None
        try:
            send_frames(self._socket, frames)
        except zmq.ZMQError as exc:
            del self._pending[req_id]
            timer.cancel()
            on_fail(BrokerUnavailableError(self.url, 0.0) if exc.errno == zmq.EAGAIN else exc)

    def _check_listener(self) -> None:
        """A first request is unanswered: is a broker listening there at all, or something else?"""
        self._probe_timer = None
        if self._heard or not self._pending:
            return
        found, detail = probe(self.url)
        if found == STRANGER and not self._heard:
            self._give_up(NotABrokerError(self.url, detail))

    def _unanswered(self, req_id: int) -> None:
        """A request got no answer in time: the broker is down or unreachable."""
        if req_id in self._pending:
            self._give_up(BrokerUnavailableError(self.url, self.connect_timeout))

    def _give_up(self, error: BaseException) -> None:
        log.debug("failing every request to %s: %s", self.url, error)
        self._fail_everything(error)
        # Replace the socket: messages queued for a broker that is not there must not
        # reach one that starts later, after the caller was told they failed.
        self._open_socket()
        self._boot_id = None
        self._max_message_size = None

    def _fail_everything(self, error: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for request in pending.values():
            request.timer.cancel()
            request.on_fail(error)
        waits, self._waits = self._waits, {}
        for batches in waits.values():
            for batch in batches:
                batch.fail(error)

    # ------------------------------------------------------------------ result waits

    def _on_pong(self, reply: Reply) -> bytes:
        hello = reply.as_hello()
        self._note_hello(None, hello)
        return hello.boot_id

    def _note_hello(self, result: Any, hello: BrokerHello) -> Any:
        self._boot_id = hello.boot_id
        self._max_message_size = hello.max_message_size
        return result

    def _register_wait(self, batch: _BatchWait) -> None:
        for uuid in batch.missing:
            self._waits.setdefault(uuid, []).append(batch)
        batch.timer = self._timers.call_at(batch.deadline, self._wait_expired, batch)
        if not self._pinging:
            self._pinging = True
            self._timers.call_later(self.ping_interval, self._ping_while_waiting)

    def _send_wait(self, batch: _BatchWait, after_restart: bool) -> None:
        timeout = max(0.0, batch.deadline - self._timers.clock())

        def on_reply(reply: Reply) -> None:
            unknown, hello = reply.as_wait_ack()
            self._note_hello(None, hello)
            if unknown and after_restart:
                lost = TaskLostError([uuid_module.UUID(bytes=u) for u in unknown],
                                     [batch.found.get(u) for u in batch.uuids])
                self._drop_wait(batch, lost)
                return
            self._forget(batch, unknown)  # never submitted: they come back as None
            self._acked(batch)

        self._request(lambda req_id: Wait(req_id, sorted(batch.missing), timeout), on_reply,
                      lambda error: self._drop_wait(batch, error))

    def _acked(self, batch: _BatchWait) -> None:
        batch.acked = True
        if not batch.missing or self._timers.clock() >= batch.deadline:
            self._drop_wait(batch, None)

    def _wait_expired(self, batch: _BatchWait) -> None:
        # A wait whose request is not answered yet ends when the answer (or its timeout) comes.
        if batch.acked:
            self._drop_wait(batch, None)

    def _forget(self, batch: _BatchWait, uuids: list[bytes]) -> None:
        for uuid in uuids:
            batch.missing.discard(uuid)
            batches = self._waits.get(uuid)
            if batches is not None and batch in batches:
                batches.remove(batch)
                if not batches:
                    del self._waits[uuid]

    def _drop_wait(self, batch: _BatchWait, error: BaseException | None) -> None:
        """Stop waiting for the batch: resolve it with what was found, or fail it."""
        self._forget(batch, list(batch.missing))
        if error is not None:
            batch.fail(error)
        else:
            batch.resolve()

    def _on_notify(self, notify: Notify) -> None:
        for uuid, snapshot in notify.items:
            for batch in self._waits.pop(uuid, ()):
                batch.found[uuid] = snapshot
                batch.missing.discard(uuid)
                if not batch.missing and batch.acked:
                    batch.resolve()

    def _ping_while_waiting(self) -> None:
        """While results are awaited, check the broker is alive and has not restarted."""
        if not self._waits:
            self._pinging = False
            return

        def on_reply(reply: Reply) -> None:
            hello = reply.as_hello()
            if self._boot_id is not None and hello.boot_id != self._boot_id:
                log.warning("the broker at %s restarted; asking it again for %d awaited task(s)",
                            self.url, len(self._waits))
                self._rewait()
            self._note_hello(None, hello)

        self._request(lambda req_id: Ping(req_id), on_reply, lambda error: None)
        self._timers.call_later(self.ping_interval, self._ping_while_waiting)

    def _rewait(self) -> None:
        """Register every open wait again with a broker that restarted."""
        batches = {id(b): b for bs in self._waits.values() for b in bs}
        for batch in batches.values():
            self._send_wait(batch, after_restart=True)


def _describe(message: Message) -> str:
    if isinstance(message, Submit):
        names = sorted({e.task_name for e in message.envelopes})
        return f"a SUBMIT of {len(message.envelopes)} task(s) ({', '.join(names[:5])})"
    return f"a {message.COMMAND.decode()} request"


def _guarded(call: Callable[[], None]) -> None:
    """Run a caller's closure on the I/O thread; a bug in one must not stop the thread."""
    try:
        call()
    except Exception:
        log.exception("a request failed inside the client I/O thread")


def _fail(future: Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
