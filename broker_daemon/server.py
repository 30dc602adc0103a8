"""The broker's socket loop: one ROUTER socket, one thread, no locks.

Each turn of the loop blocks in ``poll`` until a message arrives, the wake pipe
is written (``stop``), or the next timer is due; then it takes every message
waiting (up to a bound, so replies are never starved), lets the core dispatch,
and sends everything the core queued — one DISPATCH or NOTIFY frame per peer
per turn, which is where batching comes from.

With CURVE (``curve=``, see :mod:`broker_daemon.auth`) the loop also answers the ZAP
requests of handshakes, and checks each message's role before the core sees it; without
it, nothing of that runs.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import sys
import time
from typing import Any

import zmq

from broker_daemon.auth import CurveAuth, Guard, ZapHandler
from broker_daemon.connections import EVENTS as MONITOR_EVENTS
from broker_daemon.connections import ConnectionLog
from broker_daemon.core import DEFAULT_RESULT_TTL, BrokerCore
from broker_daemon.limits import QueueLimits
from broker_daemon.storage import Storage
from qtasks.deadlines import TimerHeap
from qtasks.exc import DecodeError, ProtocolVersionError
from qtasks.progress import ProgressReporter, progress_reporter
from qtasks.protocol import DEFAULT_MAX_MESSAGE_SIZE, Message, decode, encode
from qtasks.transport import send_frames
from qtasks.urls import DEFAULT_BROKER_URL, bindable

log = logging.getLogger("qtasks.broker")

MAX_MESSAGES_PER_TURN = 4096
FORBIDDEN_REPORT_EVERY = 60.0
"""Seconds between two log lines about the same peer sending what its key's role may not."""


def hard_limit(max_message_size: int) -> int:
    """The frame size past which ZeroMQ drops the peer unread. Between ``max_message_size`` and this
    the broker reads a message only to refuse it, so it can say whom it refused."""
    return max_message_size + max(max_message_size, 1 << 20)
HIGH_WATER_MARK = 100_000
_NOBLOCK = int(zmq.NOBLOCK)
_RCVMORE = int(zmq.RCVMORE)
"""Plain integers: pyzmq's enum members cost an attribute lookup and a conversion on every use."""
RESTORE_BAR_MIN = 50_000
"""Unfinished tasks in a data directory from which start-up draws a progress bar on a terminal
(about 0.7 s of restoring at 75,000 tasks a second)."""


def _restore_bar(storage: Storage, progress: bool | None) -> ProgressReporter | None:
    """The bar ``progress`` asks for while ``storage``'s unfinished tasks are taken up. Deciding costs
    nothing for a small data directory: its record count is known without a query."""
    if progress is False:
        return None
    if progress is None and (len(storage) < RESTORE_BAR_MIN or not sys.stderr.isatty()):
        return None
    total = storage.live_count()
    if progress is None and (total is None or total < RESTORE_BAR_MIN):
        return None
    return progress_reporter(True, total, unit="task", description="restoring unfinished tasks")


class Broker:
    """A broker serving one endpoint; run it in a daemon (``qtasks-broker``), a child process or a thread."""

    def __init__(
        self,
        bind: str = DEFAULT_BROKER_URL,
        *,
        storage: Storage | None = None,
        max_attempts: int = 3,
        heartbeat_interval: float = 1.0,
        heartbeat_liveness: int = 3,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        result_ttl: float = DEFAULT_RESULT_TTL,
        limits: QueueLimits | None = None,
        context: zmq.Context[Any] | None = None,
        curve: CurveAuth | None = None,
        progress: bool | None = False,
    ) -> None:
        """``curve``: serve CURVE only, letting in the keys it holds, each with its role.
        ``progress``: a bar on stderr while a data directory's unfinished tasks are taken up at start:
        always (True), never (False), or None: when stderr is a terminal and there are many."""
        self.url = bind
        self.progress = progress
        self.core = BrokerCore(storage, max_attempts=max_attempts,
                               heartbeat_interval=heartbeat_interval,
                               heartbeat_liveness=heartbeat_liveness,
                               max_message_size=max_message_size, result_ttl=result_ttl, limits=limits)
        self.max_message_size = max_message_size
        self.connections = ConnectionLog(max_message_size, self._describe_lost_peer, self._connection_closed)
        self._monitor: zmq.Socket[Any] | None = None
        self.endpoint: str | None = None
        self._context = context
        self._own_context = context is None
        self._socket: zmq.Socket[Any] | None = None
        self.curve = curve
        self._zap: ZapHandler | None = None
        self._guard: Guard | None = Guard() if curve is not None else None
        self._forbidden_reported: dict[bytes, float] = {}
        self._timers = TimerHeap()
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    # ------------------------------------------------------------------ lifecycle

    def bind(self) -> str:
        """Open the socket and bind it; returns the endpoint actually bound (port 0 → a free port)."""
        if self._context is None:
            self._context = zmq.Context()
        sock = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, hard_limit(self.max_message_size))
        sock.setsockopt(zmq.SNDHWM, HIGH_WATER_MARK)
        sock.setsockopt(zmq.RCVHWM, HIGH_WATER_MARK)
        try:
            if self.curve is not None:
                # the handler first: no handshake may happen before someone judges it
                self._zap = ZapHandler(self._context, self.curve.keyring, self.core.totals)
                self.curve.key.apply(sock)
            sock.bind(bindable(self.url))
        except zmq.ZMQError:
            sock.close()
            if self._zap is not None:
                self._zap.close()
                self._zap = None
            raise
        self._socket = sock
        self._monitor = sock.get_monitor_socket(MONITOR_EVENTS)
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        return self.endpoint

    def serve_forever(self) -> None:
        """Bind if needed, then serve until :meth:`stop`."""
        if self._socket is None:
            self.bind()
        log.info("broker serving %s (max attempts %d, heartbeat %.3g s x %d)", self.endpoint,
                 self.core.max_attempts, self.core.heartbeat_interval, self.core.heartbeat_liveness)
        if self.curve is not None:
            log.info("CURVE authentication on (broker public key %s): %s",
                     self.curve.key.public_key.decode("ascii"), self.curve.keyring.describe())
        storage = self.core.storage
        storage.start()
        if storage.durable:
            started = time.monotonic()
            bar = _restore_bar(storage, self.progress)
            try:
                restored = self.core.restore(bar)
            finally:
                if bar is not None:
                    bar.close()
            log.info("storing tasks, results and State in %s; %d unfinished task(s) taken up again in %.2f s",
                     getattr(storage, "directory", storage.name), restored, time.monotonic() - started)
        else:
            log.info("keeping tasks, results and State in memory (no --data-dir): a restart loses them")
        try:
            self._loop()
        finally:
            self.core.storage.stop()
            self._close()

    def stop(self) -> None:
        """Ask the loop to end. Safe from other threads and from signal handlers."""
        self._stopping = True
        try:
            os.write(self._wake_w, b"\0")
        except OSError:  # pipe full or closed: the loop is waking or gone anyway
            pass

    def _close(self) -> None:
        if self._monitor is not None:
            assert self._socket is not None
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._zap is not None:
            self._zap.close()
            self._zap = None
        if self._own_context and self._context is not None:
            self._context.term()
            self._context = None
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.core.storage.close()

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        sock = self._socket
        assert sock is not None
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        monitor = self._monitor
        assert monitor is not None
        poller.register(monitor, zmq.POLLIN)
        zap = self._zap
        if zap is not None:
            poller.register(zap.socket, zmq.POLLIN)
        self._timers.call_later(self.core.heartbeat_interval, self._tick)
        while not self._stopping:
            timeout = min((t for t in (self._timers.timeout(), self.core.next_wakeup()) if t is not None),
                          default=None)
            events = dict(poller.poll(None if timeout is None else math.ceil(timeout * 1000)))
            if self._wake_r in events:
                os.read(self._wake_r, 4096)
            if sock in events:
                self._receive(sock)
            if monitor in events:
                self._watch_connections(monitor)
            if zap is not None and zap.socket in events:
                zap.handle_waiting()
            self._timers.run_due()
            self.core.release_delayed()
            self._send(sock)

    def _tick(self) -> None:
        # Hear everything already waiting before judging who fell silent: under load the
        # socket may hold heartbeats this loop has not read yet.
        assert self._socket is not None
        self._receive(self._socket, until_empty=True)
        self.core.tick()
        self._timers.call_later(self.core.heartbeat_interval, self._tick)

    def _receive(self, sock: zmq.Socket[Any], until_empty: bool = False) -> None:
        connections = self.connections
        guard = self._guard
        recv, getsockopt = sock.recv, sock.getsockopt
        for _ in iter(int, 1) if until_empty else range(MAX_MESSAGES_PER_TURN):
            try:
                first = recv(_NOBLOCK, copy=False)  # a Frame: it knows the connection it came on
            except zmq.Again:
                return
            peer = first.bytes
            if not connections.knows(peer):
                connections.note(peer, first)
            frames = []
            more = first.more
            while more:
                frames.append(recv(_NOBLOCK))
                more = bool(getsockopt(_RCVMORE))
            size = sum(map(len, frames))
            if size > self.max_message_size:
                self._refuse_oversized(peer, first, size)
                continue
            try:
                message = decode(frames)
            except ProtocolVersionError as exc:
                self._reject(peer, "version", str(exc))
                continue
            except DecodeError as exc:
                self._reject(peer, "malformed", str(exc))
                continue
            if guard is not None:
                refusal = guard.refusal(first, message)
                if refusal is not None:
                    self._forbid(peer, first, message, refusal)
                    continue
            try:
                self.core.handle(peer, message)
            except Exception:
                log.exception("failed to handle %s from %r; the broker carries on",
                              message.COMMAND.decode(), peer)
                self.core.reply_error(peer, getattr(message, "req_id", None), "internal",
                                      "the broker failed on this request; see its log")

    def _forbid(self, peer: bytes, first: Any, message: Message, reason: str) -> None:
        """A message its key's role may not send: answered, counted, logged; the core never sees it."""
        self.core.totals["forbidden"] += 1
        now = time.monotonic()
        reported = self._forbidden_reported
        if now - reported.get(peer, float("-inf")) >= FORBIDDEN_REPORT_EVERY:
            if len(reported) >= 1024:
                reported.clear()
            reported[peer] = now
            log.warning("refused %s from %r at %s (%d refused in all; this peer's next refusals are logged "
                        "once a minute): %s", message.COMMAND.decode(), peer, self.connections.address(peer, first),
                        self.core.totals["forbidden"], reason)
        self.core.reply_error(peer, getattr(message, "req_id", None), "forbidden", reason)

    def _refuse_oversized(self, peer: bytes, first: Any, size: int) -> None:
        """A message over ``--max-message-size`` (but under the hard cap ZeroMQ enforces): refused,
        answered, and logged with the peer, whose connection is still there to name."""
        self.core.totals["oversized"] += 1
        log.warning("refused a %d-byte message from %r at %s: over the %d-byte limit "
                    "(qtasks-broker --max-message-size)", size, peer, self.connections.address(peer, first),
                    self.max_message_size)
        self.core.reply_error(peer, None, "too-large",
                              f"a {size}-byte message is over the broker's {self.max_message_size}-byte "
                              "limit (qtasks-broker --max-message-size); it was dropped")

    def _watch_connections(self, monitor: zmq.Socket[Any]) -> None:
        while True:
            try:
                frames = monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.connections.on_event(frames)

    def _connection_closed(self, identity: bytes) -> None:
        self.core.forget_peer(identity)
        if self.curve is not None:  # with keys, a worker whose connection closed is suspended: its
            self.core.connection_closed(identity)  # routing id is free for anyone to take

    def _describe_lost_peer(self, identity: bytes) -> str | None:
        worker = self.core.workers.get(identity)
        if worker is None:
            return None
        return f"worker {identity.decode('utf-8', 'replace')} (pid {worker.pid})"

    def _reject(self, peer: bytes, code: str, reason: str) -> None:
        totals = self.core.totals
        totals["malformed"] += 1
        count = totals["malformed"]
        if count <= 20 or count % 1000 == 0:
            log.warning("dropped a message from %r (%s, %d so far): %s", peer, code, count, reason)
        self.core.reply_error(peer, None, code, reason)

    def _send(self, sock: zmq.Socket[Any]) -> None:
        outgoing = self.core.flush()
        self.core.persist()  # what an answer acknowledges is stored before the answer goes out
        while outgoing:
            for peer, message in outgoing:
                self._send_one(sock, peer, message)
            outgoing = self.core.flush()
            self.core.persist()

    def _send_one(self, sock: zmq.Socket[Any], peer: bytes, message: Message) -> None:
        try:
            send_frames(sock, [peer, *encode(message)])
        except zmq.ZMQError as exc:
            if exc.errno == errno.EHOSTUNREACH:
                self.core.undeliverable(peer, message, "it disconnected (unreachable)")
            elif exc.errno == errno.EAGAIN:
                self.core.undeliverable(peer, message, "its queue is full (not reading)")
            else:
                log.error("could not send %s to %r: %s", message.COMMAND.decode(), peer, exc)
                self.core.undeliverable(peer, message, f"send failed: {exc.strerror}")
