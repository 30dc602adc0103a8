"""Who runs a client session's socket: an I/O thread, or the blocked caller's own thread.

ZeroMQ sockets must not be shared between threads, and an app object is shared by
web-server threads and asyncio tasks alike. Each :class:`Channel` owns one DEALER socket
and one :class:`~qtasks.client.session.ClientSession`, and only one thread ever touches
them:

- :class:`ThreadChannel` (async callers, streams): an I/O thread runs the socket; a
  caller's request is a closure appended to a deque, with a byte on a wake pipe. It
  answers through ``concurrent.futures.Future`` objects (the async face wraps them)::

      callers ──closure──▶ deque ─▶ I/O thread: session + DEALER ──▶ broker
         ▲                                  │
         └──── Future.set_result ◀──────────┘  REPLY / NOTIFY / PROGRESS

- :class:`BlockingChannel` (blocking callers, one per thread): the thread that waits
  runs the socket itself until its future is done (:meth:`BlockingChannel.drive`),
  saving two thread hand-offs per call.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable, Optional, cast

import zmq

from qtasks.client.session import ClientSession, Snapshots, StreamItem
from qtasks.exc import BrokerUnavailableError
from qtasks.protocol import TaskEnvelope
from qtasks.security import ClientKeys
from qtasks.transport import send_frames

log = logging.getLogger("qtasks.client")

HIGH_WATER_MARK = 100_000
_EVENTS, _POLLIN, _NOBLOCK = int(zmq.EVENTS), int(zmq.POLLIN), int(zmq.NOBLOCK)
SUBMIT_BATCH = 1000
"""Pipelined submits the I/O thread sends as one SUBMIT at most."""
QUEUED: Future[Any] = Future()
"""What a pipelined submit returns: resolved, shared (its outcome reaches the next call instead)."""
QUEUED.set_result(None)
Request = Callable[[ClientSession, Future[Any]], Any]


class SocketLoop:
    """One DEALER socket feeding one session; :meth:`turn` is one round of the loop."""

    def __init__(self, session: ClientSession, context: zmq.Context[Any], curve: Optional[ClientKeys] = None) -> None:
        self.session = session
        self.context = context
        self.curve = curve
        self.poller = zmq.Poller()
        self.socket: Optional[zmq.Socket[Any]] = None
        self._open()

    def _open(self) -> None:
        if self.socket is not None:
            self.poller.unregister(self.socket)
            self.socket.close(linger=0)
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, HIGH_WATER_MARK)
        sock.setsockopt(zmq.RCVHWM, HIGH_WATER_MARK)
        sock.setsockopt(zmq.IDENTITY, b"c-" + os.urandom(6).hex().encode())
        if self.curve is not None:
            self.curve.apply(sock, self.session.url)
        sock.connect(self.session.url)
        self.poller.register(sock, zmq.POLLIN)
        self.socket = sock
        self.session.socket_replaced()

    def turn(self, max_wait: Optional[float]) -> set[Any]:
        """Wait for the socket, a watched descriptor or the next timer (at most ``max_wait``), then act;
        returns the watched descriptors that are ready."""
        timeout = self.session.timeout()
        if max_wait is not None:
            timeout = max_wait if timeout is None else min(timeout, max_wait)
        events = dict(self.poller.poll(None if timeout is None else math.ceil(timeout * 1000)))
        if self.socket in events:
            self.receive()
        self.session.run_due()
        self.flush()
        return set(events)

    def receive(self) -> None:
        sock = self.socket
        assert sock is not None
        session = self.session
        recv, events = sock.recv_multipart, sock.getsockopt
        while cast(int, events(_EVENTS)) & _POLLIN:  # asked, not tried: a zmq.Again costs more than the read
            session.receive(recv(_NOBLOCK))

    def flush(self) -> None:
        """Send what the session queued; replace the socket when the session gave up on it."""
        session = self.session
        if session.needs_new_socket:
            self._open()
        sock = self.socket
        assert sock is not None
        for req_id, frames in session.take_outgoing():
            try:
                send_frames(sock, frames)
            except zmq.ZMQError as exc:
                session.send_failed(req_id, BrokerUnavailableError(session.url, 0.0, curve=session.curve)
                                    if exc.errno == zmq.EAGAIN else exc)

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None


class Channel:
    """The requests of a session, whichever thread runs it (see :meth:`_run`)."""

    session: ClientSession
    pid: int

    def submit(self, envelopes: list[TaskEnvelope], wait: Optional[float] = None) -> Future[Any]:
        return self._run(lambda s, f: s.submit(envelopes, wait, f))

    def wait(self, uuids: list[bytes], timeout: float) -> Future[Snapshots]:
        return self._run(lambda s, f: s.wait(uuids, timeout, f))

    def watch(self, uuid: bytes, timeout: float, on_item: Callable[[StreamItem], None]) -> None:
        self._run(lambda s, f: s.watch(uuid, timeout, on_item))

    def get(self, uuids: list[bytes]) -> Future[Snapshots]:
        return self._run(lambda s, f: s.get(uuids, f))

    def cancel(self, uuids: list[bytes], reason: str) -> Future[Snapshots]:
        return self._run(lambda s, f: s.cancel(uuids, reason, f))

    def stats(self) -> Future[dict[str, Any]]:
        return self._run(lambda s, f: s.stats(f))

    def ping(self) -> Future[bytes]:
        return self._run(lambda s, f: s.ping(f))

    def flush(self, app: str) -> Future[int]:
        return self._run(lambda s, f: s.flush(app, f))

    def dead(self, op: str, app: Optional[str], task_name: Optional[str], uuids: list[bytes],
             limit: Optional[int]) -> Future[Any]:
        return self._run(lambda s, f: s.dead(op, app, task_name, uuids, limit, f))

    def state(self, namespace: tuple[str, str, str], op: str, args: bytes) -> Future[bytes]:
        return self._run(lambda s, f: s.state(namespace, op, args, f))

    def ops(self, op: str, args: dict[str, Any]) -> Future[Any]:
        return self._run(lambda s, f: s.ops(op, args, f))

    @property
    def max_message_size(self) -> Optional[int]:
        """The broker's message limit, once it answered (one attribute: safe to read from any thread)."""
        return self.session.max_message_size

    def _run(self, request: Request) -> Future[Any]:
        raise NotImplementedError

    def raise_deferred(self) -> None:
        """An earlier pipelined submit failed: the caller's next request raises it (and is not sent)."""
        deferred = self.session.deferred
        if deferred:
            error = deferred.popleft()
            while deferred and deferred[0] is error:
                deferred.popleft()
            raise error


class ThreadChannel(Channel):
    """An I/O thread owns the socket; any thread or event loop may call in."""

    def __init__(self, url: str, *, connect_timeout: float = 5.0, ping_interval: float = 1.0,
                 curve: Optional[ClientKeys] = None) -> None:
        self.session = ClientSession(url, connect_timeout=connect_timeout, ping_interval=ping_interval,
                                     curve=curve is not None)
        self.curve = curve
        self.pid = os.getpid()
        self._calls: deque[Callable[[], None]] = deque()
        self._submits: deque[list[TaskEnvelope]] = deque()
        self._queued: set[bytes] = set()
        """The uuids of pipelined submits the I/O thread has not taken yet."""
        self._submits_scheduled = False
        self._idle = True
        """The I/O thread is about to wait, or waits, on its sockets (a write to the wake pipe needed)."""
        self._closing = False
        self._closed = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._serve, name="qtasks-client-io", daemon=True)
        self._thread.start()
        _OPEN_CHANNELS.add(self)

    @property
    def closed(self) -> bool:
        return self._closing

    def close(self, timeout: float = 2.0) -> None:
        """Stop using the socket; whatever still waits fails. Idempotent."""
        if self._closed.is_set() or os.getpid() != self.pid:
            return
        if self.unsettled and not self.settle(self.session.connect_timeout):
            log.error("%d submit(s) to the broker at %s were not acknowledged before the connection was "
                      "closed; those tasks may not have been queued", self.session.unacked, self.session.url)
        self._closing = True
        self._wake()
        self._closed.wait(timeout)

    def submit_pipelined(self, envelopes: list[TaskEnvelope]) -> Future[Any]:
        """Queue ``envelopes`` for the I/O thread, which sends every submit queued meanwhile as one
        SUBMIT (a loop of ``add_task`` costs the broker one message per batch, not per task)."""
        if self._closing:
            raise RuntimeError("this broker connection is closed")
        self.raise_deferred()
        self._queued.update(e.uuid for e in envelopes)
        self._submits.append(envelopes)
        if not self._submits_scheduled:
            self._submits_scheduled = True
            self._calls.append(self._send_submits)
            self._wake()
        return QUEUED

    def _send_submits(self) -> None:
        self._submits_scheduled = False
        submits = self._submits
        while submits:
            batch: list[TaskEnvelope] = []
            while submits and len(batch) < SUBMIT_BATCH:
                batch += submits.popleft()
            self.session.submit_pipelined(batch)  # its failure is deferred to the next call
            self._queued.difference_update(e.uuid for e in batch)

    def knows(self, uuids: list[bytes]) -> bool:
        """Whether the results of ``uuids`` are pushed to this connection (read from any thread)."""
        return self.session.expects(uuids, also=self._queued)

    def wait(self, uuids: list[bytes], timeout: float) -> Future[Snapshots]:
        found = self.session.finished_now(uuids)  # from the caller's thread: no hand-off when all are in
        if found is not None:
            future: Future[Snapshots] = Future()
            future.set_result(found)
            return future
        return super().wait(uuids, timeout)

    @property
    def unsettled(self) -> bool:
        """Pipelined submits are queued or not acknowledged yet."""
        return bool(self._submits) or self.session.unacked > 0

    def settle(self, timeout: float) -> bool:
        """Wait (at most ``timeout``) until every pipelined submit is acknowledged; False if some are not."""
        if self._closing or (self.session.unacked <= 0 and not self._submits):
            return True
        try:
            self._run(lambda s, f: s.when_settled(f)).result(timeout)
        except Exception:
            return False
        return True

    def _run(self, request: Request) -> Future[Any]:
        if self._closing:
            raise RuntimeError("this broker connection is closed")
        future: Future[Any] = Future()
        future.elsewhere = True  # type: ignore[attr-defined]  # resolved by the I/O thread: not driven
        self._calls.append(lambda: request(self.session, future))
        self._wake()
        return future

    def _wake(self) -> None:
        if not self._idle and not self._closing:
            return  # the I/O thread is between polls: it runs the queued closures before it waits again
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:  # the pipe is full of wake-ups already
            pass

    def _serve(self) -> None:
        context: zmq.Context[Any] = zmq.Context.instance()  # shared: inproc:// reaches a broker in this process
        loop: Optional[SocketLoop] = None
        try:
            loop = SocketLoop(self.session, context, self.curve)
            loop.poller.register(self._wake_r, zmq.POLLIN)
            while not self._closing:
                self._idle = True  # from here on, a caller's closure needs a wake-up (see _wake)
                if self._wake_r in loop.turn(0.0 if self._calls else None):
                    os.read(self._wake_r, 65536)
                self._idle = False
                self._run_calls(loop)
        except Exception:
            log.exception("the client I/O thread for %s failed", self.session.url)
        finally:
            closed = RuntimeError("the broker connection was closed")
            self.session.close(closed)
            while self._calls:  # closures queued after the loop ended: run them so they fail cleanly
                _guarded(self._calls.popleft())
                self.session.close(closed)
            if loop is not None:
                loop.close()
            self._closed.set()

    def _run_calls(self, loop: SocketLoop) -> None:
        calls = self._calls
        if calls:
            while calls:
                _guarded(calls.popleft())
            loop.flush()

    def __del__(self) -> None:
        if os.getpid() != self.pid:
            return
        # The wake pipe outlives the thread so a late caller never writes to a recycled fd.
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


class BlockingChannel(Channel):
    """Belongs to the thread that made it, which runs the socket itself while it waits."""

    def __init__(self, url: str, *, connect_timeout: float = 5.0, ping_interval: float = 1.0,
                 curve: Optional[ClientKeys] = None) -> None:
        self.session = ClientSession(url, connect_timeout=connect_timeout, ping_interval=ping_interval,
                                     curve=curve is not None)
        self.curve = curve
        self.pid = os.getpid()
        self._owner = threading.get_ident()
        self._loop: Optional[SocketLoop] = SocketLoop(self.session, zmq.Context.instance(), curve)

    @property
    def closed(self) -> bool:
        return self._loop is None

    def drive(self, future: Future[Any], timeout: float) -> bool:
        """Run the socket on this thread until ``future`` is done (False: timed out)."""
        if threading.get_ident() != self._owner:
            raise RuntimeError("a blocking broker connection is used only by the thread that made it")
        deadline = time.monotonic() + timeout
        while not future.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._loop is None:
                return future.done()
            self._loop.turn(remaining)
        return True

    def close(self) -> None:
        """Close the socket (from its own thread; others close it when they are collected)."""
        loop = self._loop
        if loop is None or os.getpid() != self.pid or threading.get_ident() != self._owner:
            return
        self._loop = None
        self.session.close(RuntimeError("the broker connection was closed"))
        loop.close()

    def _run(self, request: Request) -> Future[Any]:
        loop = self._loop
        if loop is None:
            raise RuntimeError("this broker connection is closed")
        future: Future[Any] = Future()
        request(self.session, future)
        loop.flush()
        return future

    def __del__(self) -> None:
        loop = self._loop
        if loop is not None and os.getpid() == self.pid:  # its thread is gone (thread-locals die with it)
            loop.close()


SETTLE_AT_EXIT = 5.0
"""Seconds the interpreter's exit waits for the broker to acknowledge tasks submitted just before."""
_OPEN_CHANNELS: "weakref.WeakSet[ThreadChannel]" = weakref.WeakSet()


@atexit.register
def _settle_at_exit() -> None:
    """A program that exits right after ``add_task`` still delivers it: wait for the acknowledgements."""
    for channel in list(_OPEN_CHANNELS):
        if channel.pid != os.getpid():
            continue
        if not channel.settle(min(SETTLE_AT_EXIT, channel.session.connect_timeout)):
            log.error("%d submit(s) to the broker at %s were not acknowledged before this process exited; "
                      "those tasks may not have been queued", channel.session.unacked, channel.session.url)


def _guarded(call: Callable[[], None]) -> None:
    """Run a caller's closure on the I/O thread; a bug in one must not stop the thread."""
    try:
        call()
    except Exception:
        log.exception("a request failed inside the client I/O thread")
