"""A worker actor: one anyio event loop, one DEALER socket, K task slots.

::

    broker ──DISPATCH──▶ receive loop ──▶ inbox (≤ K deliveries: the broker never sends more)
                                            │
                              K slots ◀─────┘   each: TaskRunner.run() → TaskOutcome
                                            │
    broker ◀──RESULT (batched)── flush ◀────┘
    broker ◀─HEARTBEAT── heartbeat loop (every interval, from the loop itself: a blocked loop
                          stops them; ``on_tick`` tells whoever watches the loop that it runs)

Security: with CURVE keys (``curve=``) the socket is a CURVE client of the broker. A
handshake the broker refuses (an unknown key, keys on one side only) is not retried by
ZeroMQ, so a monitor on the socket reports why, and the actor connects again after a
growing pause (a key added to the broker's directory later lets it in). Until it has
registered once, the actor logs an error every ``UNREGISTERED_REPORT_EVERY`` seconds.

Stopping (:meth:`request_stop`): announce credit 0, hand back deliveries not yet started
(RETURN, no attempt counted), let running tasks finish within the grace period, then BYE.
``now=True`` or the end of the grace period hands back what still runs (exit code 1).

The actor knows nothing of processes: ``qtasks.worker.process`` runs it as a worker
process (signals, the parent watch, the thread pool, the exit), and tests run it in a
thread over ``inproc://`` next to the broker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from typing import Any, Callable, Optional, cast
from uuid import UUID

import anyio
import zmq
import zmq.asyncio
from anyio.abc import TaskGroup
from zmq.utils.monitor import parse_monitor_message

from qtasks.enums import TaskStatusEnum as Status
from qtasks.exc import DecodeError, MessageTooLargeError, ProtocolVersionError, SecurityMismatchError
from qtasks.plugins.base import maybe_await
from qtasks.plugins.triggers import all_plugins, fire, listened
from qtasks.protocol import (
    CHUNK,
    DEFAULT_MAX_MESSAGE_SIZE,
    Bye,
    Cancel,
    Delivery,
    Dispatch,
    Error,
    Heartbeat,
    Message,
    Ready,
    Result,
    Return,
    TaskOutcome,
    Welcome,
    Yield,
    decode,
    encode,
)
from qtasks.security import ClientKeys
from qtasks.worker.component import ServedApp
from qtasks.worker.lending import SlotLender
from qtasks.worker.running import RunningTask, TaskRunner

log = logging.getLogger("qtasks.worker")
_HEARTBEAT = Heartbeat()

DEFAULT_HEARTBEAT_INTERVAL = 1.0
DEFAULT_HEARTBEAT_LIVENESS = 3
LINGER_MS = 2000
"""How long a stopping worker keeps trying to deliver its last RESULT/RETURN/BYE."""
UNREGISTERED_REPORT_FIRST = 5.0
UNREGISTERED_REPORT_EVERY = 30.0
"""Seconds after starting, and then between reports, that an actor that never registered says so."""
RECONNECT_FIRST, RECONNECT_MAX = 1.0, 30.0
"""Pause before connecting again after the broker refused a handshake, doubling up to the maximum."""
FORBIDDEN_REPORT_EVERY = 30.0
_HANDSHAKE_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                     | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH)

Tick = Callable[[float], None]
"""Called at every heartbeat with the seconds of silence after which the loop counts as blocked."""


class WorkerActor:
    def __init__(
        self,
        served: ServedApp,
        *,
        url: str,
        concurrency: int,
        grace: float,
        replaces: Optional[int] = None,
        cause: Optional[str] = None,
        index: int = 0,
        context: Optional[zmq.asyncio.Context] = None,
        on_tick: Optional[Tick] = None,
        curve: Optional[ClientKeys] = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.served = served
        self.url = url
        self.concurrency = concurrency
        self.grace = grace
        self.index = index
        """This process's slot number under its supervisor (the ``number`` of worker events)."""
        self.pid = os.getpid()
        self.context = context
        """Sockets come from this context (the broker's, for ``inproc://``); None: the actor's own."""
        self.on_tick = on_tick
        self.curve = curve
        """The broker's public key and this worker's key pair (None: no CURVE)."""
        self.recycle = False
        """Set when a task's thread never came back: the process must end without joining it."""
        self.registered = threading.Event()
        """Set once a broker welcomed this actor (for whoever starts it in a thread)."""
        self.host = socket.gethostname()
        self.identity = f"{self.host}/{self.pid}/{os.urandom(3).hex()}".encode()
        self._replaces = replaces
        self._cause = cause
        self._interval = DEFAULT_HEARTBEAT_INTERVAL
        self._liveness = DEFAULT_HEARTBEAT_LIVENESS
        self._boot_id: Optional[bytes] = None
        self._max_message_size = DEFAULT_MAX_MESSAGE_SIZE
        """The broker's message limit (from WELCOME): no RESULT may be larger."""
        self._ever_registered = False
        self._started_at = time.monotonic()
        self._next_report = UNREGISTERED_REPORT_FIRST
        self._failed_handshakes = 0
        self._forbidden_reported_at = float("-inf")
        self._last_heard = time.monotonic()
        self._ready_sent_at = float("-inf")
        self._registered = False
        self._draining = False
        self._exit_code = 0
        self._running: dict[bytes, int] = {}
        self._socket: Optional[zmq.asyncio.Socket] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._inbox: asyncio.Queue[Delivery] = asyncio.Queue()
        """Deliveries not yet started. A plain asyncio queue: anyio memory streams cost ~10 µs an
        item here, and this loop always runs on anyio's asyncio backend."""
        self._outbox: list[TaskOutcome] = []
        self._results_seq = 0
        """The ``seq`` of the last RESULT sent."""
        self._results_acked = 0
        """The last ``seq`` the broker acknowledged (it stored everything up to it)."""
        self._unacked: dict[int, tuple[float, list[TaskOutcome]]] = {}
        """RESULTs sent and not acknowledged yet: (sent at, outcomes) by seq, sent again if lost."""
        self._steps: list[tuple[bytes, int, int, bytes]] = []
        self._handles: dict[bytes, RunningTask] = {}
        """The deliveries being run, for cancellation from outside."""
        self._stop_wanted: Optional[bool] = None
        """A stop asked for before the loop ran (the value: ``now``)."""
        self._tg: Optional[TaskGroup] = None
        self._lender: Optional[SlotLender] = None
        self._lent = 0
        """Slots lent by tasks waiting for other tasks (extra credit)."""
        self._retiring = 0
        self._flush_at = max(1, concurrency // 4)
        self._stop_requested: Optional[anyio.Event] = None
        self._idle: Optional[anyio.Event] = None
        self._grace_scope: Optional[anyio.CancelScope] = None
        self._heartbeat_wait: Optional[anyio.CancelScope] = None

    # ------------------------------------------------------------------ lifecycle

    async def serve(self) -> int:
        """Serve until stopped; returns the exit code (0: every task finished or was handed back
        unstarted). Runs on the event loop of the calling thread."""
        own_context = self.context is None
        context = zmq.asyncio.Context() if own_context else self.context
        assert context is not None
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, self.identity)
        sock.setsockopt(zmq.LINGER, LINGER_MS)
        sock.setsockopt(zmq.SNDHWM, 100_000)
        sock.setsockopt(zmq.RCVHWM, 100_000)
        sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5000)
        if self.curve is not None:
            self.curve.apply(sock, self.url)
        monitor = None
        if not self.url.startswith("inproc://"):  # no handshake there
            monitor = sock.get_monitor_socket(_HANDSHAKE_EVENTS, f"inproc://qtasks-worker-{os.urandom(6).hex()}")
        sock.connect(self.url)
        self._socket = sock
        self._started_at = self._last_heard = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._lender = SlotLender(self._loop, self._lend_slot, self._reclaim_slot)
        self._cpu_turn = anyio.Lock()
        self._stop_requested = anyio.Event()
        if self._stop_wanted is not None:
            self.request_stop(self._stop_wanted)
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._receive_loop)
                tg.start_soon(self._heartbeat_loop)
                if monitor is not None:
                    tg.start_soon(self._watch_handshakes, monitor)
                for _ in range(self.concurrency):
                    tg.start_soon(self._slot)
                self._send_ready()
                log.info("worker process %d serving %r for %s with %d slots",
                         self.pid, self.served.name, self.url, self.concurrency)
                await self._start_plugins()
                await maybe_await(self.served.worker.start(self.index))
                await self.served.events.fire_async("worker_running", worker=self.served.worker,
                                                    number=self.index)
                await self._stop_requested.wait()
                await self._drain()
                await self.served.events.fire_async("worker_stopping", worker=self.served.worker,
                                                    number=self.index)
                await maybe_await(self.served.worker.stop())
                tg.cancel_scope.cancel()
        finally:
            if monitor is not None:
                sock.disable_monitor()
                monitor.close(linger=0)
            sock.close()
            if own_context:
                context.term()
        log.info("worker process %d stopped (exit code %d)%s", self.pid, self._exit_code,
                 " to be replaced" if self.recycle else "")
        return self._exit_code

    def request_stop(self, now: bool = False) -> None:
        """Begin a graceful stop (idempotent); ``now`` cuts the grace period short. Call it on the
        actor's loop (``request_stop_threadsafe`` from elsewhere)."""
        if self._stop_requested is None:  # the loop has not started: remember it
            self._stop_wanted = bool(self._stop_wanted) or now
            return
        if now:
            self._exit_code = 1
            if self._grace_scope is not None:
                self._grace_scope.cancel()
        self._stop_requested.set()

    def _on_loop(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` in this turn of the loop, after what is already scheduled."""
        assert self._loop is not None
        self._loop.call_soon(callback)

    def request_stop_threadsafe(self, now: bool = False) -> None:
        """:meth:`request_stop` from another thread or a signal handler."""
        loop = self._loop
        if loop is None:
            self.request_stop(now)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self.request_stop, now)

    async def _drain(self) -> None:
        self._draining = True
        self._send_ready()  # credit 0: the broker sends nothing more
        queued = []
        while not self._inbox.empty():
            queued.append(self._inbox.get_nowait())
        self._hand_back([(d.envelope.uuid, d.attempt) for d in queued])
        if self._running and self._exit_code == 0:
            log.info("worker process %d stopping: waiting up to %g s for %d running task(s)",
                     self.pid, self.grace, len(self._running))
            self._idle = anyio.Event()
            with anyio.move_on_after(self.grace) as self._grace_scope:
                await self._idle.wait()
            if self._grace_scope.cancelled_caught:
                self._exit_code = 1
        if self._running:
            log.warning("worker process %d: %d task(s) did not finish in time; handing them back",
                        self.pid, len(self._running))
            self._hand_back(list(self._running.items()))
            self._exit_code = 1
        else:
            await self._stop_plugins()  # nothing runs that could still use what they hold
        self._flush()
        self._send(Bye())

    async def _listening(self) -> None:
        broker = self.served.broker
        await fire(broker.plugins, "broker_listen_start", broker=broker, worker=self.served.worker)

    async def _start_plugins(self) -> None:
        for plugin in all_plugins(self.served.plugins):
            try:
                await maybe_await(plugin.start())
            except Exception:
                log.exception("worker process %d: plugin %s failed to start", self.pid, plugin.name)

    async def _stop_plugins(self) -> None:
        for plugin in reversed(all_plugins(self.served.plugins)):
            try:
                await maybe_await(plugin.stop())
            except Exception:
                log.exception("worker process %d: plugin %s failed to stop", self.pid, plugin.name)

    def _hand_back(self, items: list[tuple[bytes, int]]) -> None:
        if items:
            for uuid, _ in items:
                self._running.pop(uuid, None)
            self._send(Return(items))

    # ------------------------------------------------------------------ the socket

    def _send(self, message: Message) -> None:
        """Queue ``message`` on the socket without waiting; ZeroMQ keeps the order.

        Always through the asyncio socket: a send straight on the underlying socket can
        consume the readiness edge of its file descriptor, and the receive loop would then
        never hear of messages already waiting.
        """
        assert self._socket is not None
        sent = cast("asyncio.Future[Any]", self._socket.send_multipart(encode(message)))
        if not sent.done() or sent.exception() is not None:
            sent.add_done_callback(_report_send_failure)

    def _send_ready(self) -> None:
        self._ready_sent_at = time.monotonic()
        self._send(Ready(
            queue=self.served.name,
            concurrency=0 if self._draining else self.concurrency + self._lent,
            pid=self.pid,
            host=self.host,
            replaces=self._replaces,
            cause=self._cause,
            running=list(self._running.items()),
            tasks=self.served.task_names(),
            results_acked=self._results_acked,
        ))

    async def _receive_loop(self) -> None:
        sock = self._socket
        assert sock is not None
        while True:
            frames = await sock.recv_multipart()
            self._last_heard = time.monotonic()
            self._on_frames(frames)
            while True:  # take everything already waiting before yielding to the slots
                try:
                    frames = await sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._on_frames(frames)

    def _on_frames(self, frames: list[bytes]) -> None:
        try:
            message = decode(frames)
        except (DecodeError, ProtocolVersionError) as exc:
            log.error("dropped a message from the broker at %s: %s", self.url, exc)
            return
        if isinstance(message, Dispatch):
            self._on_dispatch(message)
        elif isinstance(message, Cancel):
            self._on_cancel(message)
        elif isinstance(message, Welcome):
            if not self._registered or message.boot_id != self._boot_id:
                if self._ever_registered:
                    log.warning("worker process %d rejoined the broker at %s (boot %s)%s", self.pid, self.url,
                                message.boot_id.hex(), " which restarted" if message.boot_id != self._boot_id else "")
                else:
                    log.info("registered with broker %s (boot %s)", self.url, message.boot_id.hex())
                    if listened(self.served.broker.plugins, "broker_listen_start") and self._tg is not None:
                        self._tg.start_soon(self._listening)
            rejoined = not self._registered or message.boot_id != self._boot_id
            self._registered = self._ever_registered = True
            self.registered.set()
            self._boot_id = message.boot_id
            if rejoined:
                self._send_unacked(float("inf"))  # results the broker may not have stored
            self._max_message_size = message.max_message_size
            if message.heartbeat_interval != self._interval:
                self._interval = message.heartbeat_interval
                if self._heartbeat_wait is not None:
                    self._heartbeat_wait.cancel()
            self._liveness = message.heartbeat_liveness
            self._replaces = self._cause = None
        elif isinstance(message, Error):
            if message.code == "not-ready":
                self._register_again()
            elif message.code == "forbidden":
                now = time.monotonic()
                if now - self._forbidden_reported_at >= FORBIDDEN_REPORT_EVERY:
                    self._forbidden_reported_at = now
                    log.error("worker process %d: the broker at %s does not let this worker serve tasks: %s",
                              self.pid, self.url, message.message)
            else:
                log.warning("the broker at %s reported: %s (%s)", self.url, message.message, message.code)
        elif isinstance(message, Heartbeat):
            if message.acked is not None:
                self._on_acked(message.acked)
        else:
            log.warning("ignored an unexpected %s from the broker", message.COMMAND.decode())

    def _on_dispatch(self, message: Dispatch) -> None:
        if self._draining:
            self._hand_back([(d.envelope.uuid, d.attempt) for d in message.deliveries])
            return
        for delivery in message.deliveries:
            self._running[delivery.envelope.uuid] = delivery.attempt
            self._inbox.put_nowait(delivery)

    def _on_cancel(self, message: Cancel) -> None:
        """Stop tasks the broker cancelled: a running one at its next await, a waiting one now."""
        for uuid in message.uuids:
            handle = self._handles.get(uuid)
            if handle is not None:
                handle.cancel(message.reason)  # its runner turns that into "cancel"
            elif uuid in self._running:  # not started: it never will be
                attempt = self._running.pop(uuid)
                self._finish(TaskOutcome(uuid, attempt, Status.CANCEL, None, None, time.time(),
                                         {"cancel_reason": message.reason}))

    def _lend_slot(self) -> None:
        """A task waits for other tasks: take one more at once, in an extra slot."""
        self._lent += 1
        assert self._tg is not None
        self._tg.start_soon(self._slot)
        if not self._draining:
            self._send_ready()

    def _reclaim_slot(self) -> None:
        self._lent -= 1
        self._retiring += 1
        if not self._draining:
            self._send_ready()

    def _report_step(self, delivery: Delivery, index: int, value: bytes) -> None:
        self._steps.append((delivery.envelope.uuid, delivery.attempt, index, value))
        if len(self._steps) == 1 and not self._outbox:
            self._on_loop(self._flush)

    def _watch_thread(self, name: str, uuid: UUID, done: threading.Event) -> None:
        """A task's thread outlived its task (time limit, cancel): recycle this process if it
        does not come back within the grace period, so it cannot hold a slot forever."""
        grace = self.served.config.thread_stop_grace

        async def watch() -> None:
            await anyio.sleep(grace)  # the grace period itself; the thread cannot signal a loop
            if not done.is_set():
                log.error("task %s %s: its thread is still running %g s after the task ended; "
                          "recycling worker process %d", name, uuid, grace, self.pid)
                self.recycle = True
                self.request_stop()

        assert self._tg is not None
        self._tg.start_soon(watch)

    def _register_again(self) -> None:
        """The broker does not know this process (it restarted, or declared us lost): READY again."""
        if time.monotonic() - self._ready_sent_at < self._interval:
            return  # a READY is on its way already
        if self._registered:
            log.warning("the broker at %s does not know this worker any more; registering again "
                        "with %d running task(s)", self.url, len(self._running))
        self._registered = False
        self._send_ready()

    async def _watch_handshakes(self, monitor: zmq.asyncio.Socket) -> None:
        """Report handshakes the broker refused, and connect again after them: ZeroMQ gives up on a
        connection whose handshake was refused (and retries only those that failed on the way)."""
        pause = RECONNECT_FIRST
        while True:
            event = parse_monitor_message(await monitor.recv_multipart())
            kind = event["event"]
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                pause = RECONNECT_FIRST
                continue
            self._failed_handshakes += 1
            if kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                continue  # ZeroMQ tries again by itself; the periodic report says it
            log.error("worker process %d: %s; connecting again in %g s", self.pid,
                      self._refusal(kind, event["value"]), pause)
            await anyio.sleep(pause)  # a back-off: the broker said no, asking again at once is pointless
            pause = min(pause * 2, RECONNECT_MAX)
            self._reconnect()

    def _refusal(self, kind: int, value: int) -> str:
        """Why the broker refused a handshake, and what to do about it."""
        if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            key = self.curve.public_text if self.curve is not None else "(none)"
            return (f"the broker at {self.url} refused this worker's CURVE key {key} (status {value}): put its "
                    "public key file in the directory the broker reads with --curve-workers")
        if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            ours = "CURVE" if self.curve is not None else "NULL"
            return str(SecurityMismatchError(self.url, "NULL" if self.curve is not None else "CURVE", ours))
        return (f"the handshake with the broker at {self.url} failed (ZMTP protocol error {value:#x}): "
                "check that both sides use matching CURVE keys")

    def _reconnect(self) -> None:
        """A fresh connection to the broker (the refused one is gone for good), then READY on it."""
        sock = self._socket
        assert sock is not None
        try:
            sock.disconnect(self.url)
        except zmq.ZMQError:  # ZeroMQ dropped the endpoint with the refused connection
            pass
        sock.connect(self.url)
        self._registered = False
        self._send_ready()

    def _report_unregistered(self) -> None:
        """Never registered: say so now and then, with what may be wrong, rather than wait in silence."""
        waited = time.monotonic() - self._started_at
        if self._ever_registered or waited < self._next_report:
            return
        self._next_report = waited + UNREGISTERED_REPORT_EVERY
        if self.curve is not None:
            failed = f" ({self._failed_handshakes} CURVE handshake(s) failed)" if self._failed_handshakes else ""
            log.error("worker process %d has not been able to register with the broker at %s for %.0f s%s: "
                      "check that its curve_server_key is the broker's public key and that its public key %s "
                      "is in the directory the broker reads with --curve-workers", self.pid, self.url, waited,
                      failed, self.curve.public_text)
        else:
            log.error("worker process %d has not been able to register with the broker at %s for %.0f s: "
                      "is a broker running there? Start one with `qtasks-broker --bind %s`", self.pid,
                      self.url, waited, self.url)

    async def _heartbeat_loop(self) -> None:
        while True:
            if self.on_tick is not None:
                # a little less than the broker's bound: a blocked process is gone before its tasks move
                self.on_tick(self._interval * self._liveness - self._interval / 2)
            with anyio.CancelScope() as self._heartbeat_wait:  # a new interval cancels the wait
                await anyio.sleep(self._interval)  # the heartbeat period itself, not a wait for work
            self._report_unregistered()
            silent = time.monotonic() - self._last_heard
            if silent > self._interval * self._liveness:
                if self._registered:
                    log.warning("worker process %d: the broker at %s is gone (no word from it for %.1f s); "
                                "waiting for one to come back there, with %d task(s) running", self.pid,
                                self.url, silent, len(self._running))
                self._registered = False
                self._register_again()
            else:
                self._send(_HEARTBEAT)

    def _finish(self, outcome: TaskOutcome) -> None:
        """Queue an outcome; everything finished in this turn of the loop goes out in one RESULT."""
        outbox = self._outbox
        outbox.append(outcome)
        if len(outbox) == 1:
            self._on_loop(self._flush)
        elif len(outbox) >= self._flush_at:
            self._flush()  # free slots early, so the broker refills them while the rest run

    def _flush(self) -> None:
        if self._steps:  # steps first: a RESULT ends the task's stream
            steps, self._steps = self._steps, []
            self._send(Yield(steps))
        if self._outbox:
            outbox, self._outbox = self._outbox, []
            now = time.monotonic()
            for batch in batches_within(outbox, self._max_message_size):
                self._results_seq += 1
                self._unacked[self._results_seq] = (now, batch)
                self._send(Result(batch, self._results_seq))

    def _on_acked(self, acked: int) -> None:
        """The broker stored every RESULT up to ``acked``. One sent before an acknowledged one
        long enough ago that it should have been acknowledged too was lost (a connection that broke
        and came back): it goes again."""
        self._results_acked = max(self._results_acked, acked)
        unacked = self._unacked
        for seq in [s for s in unacked if s <= acked]:
            del unacked[seq]
        if unacked:
            self._send_unacked(time.monotonic() - 2 * self._interval)

    def _send_unacked(self, sent_before: float) -> None:
        """Send again, in order, the unacknowledged RESULTs sent before ``sent_before``."""
        now = time.monotonic()
        for seq, (sent_at, batch) in sorted(self._unacked.items()):
            if sent_at < sent_before:
                self._unacked[seq] = (now, batch)
                self._send(Result(batch, seq))

    # ------------------------------------------------------------------ running tasks

    async def _slot(self) -> None:
        inbox = self._inbox
        running = self._running
        runner = TaskRunner(self.served, report_step=self._report_step, watch_thread=self._watch_thread,
                            lender=self._lender, message_limit=lambda: self._max_message_size,
                            cpu_turn=self._cpu_turn)
        while True:
            if self._retiring:  # a lent slot taken back: one extra slot bows out
                self._retiring -= 1
                return
            delivery = await inbox.get()
            uuid = delivery.envelope.uuid
            if uuid not in running:  # handed back or cancelled while it waited in the inbox
                continue
            handle = self._handles[uuid] = RunningTask()
            try:
                run = runner.run_chunk if CHUNK in delivery.envelope.metadata else runner.run
                outcome = await run(delivery, handle)
            finally:
                del self._handles[uuid]
            if running.pop(uuid, None) is not None:
                self._finish(outcome)
            if not running:
                self._flush()  # nothing else will finish this turn: don't wait for it
                if self._idle is not None:
                    self._idle.set()


RESULT_OVERHEAD = 1024
"""Bytes of a RESULT frame besides the outcomes' results and tracebacks (a generous bound)."""


def _outcome_size(outcome: TaskOutcome) -> int:
    size = 64 + len(outcome.returning or b"")
    if outcome.traceback:
        size += len(outcome.traceback.encode())
    if outcome.extra:
        size += len(repr(outcome.extra))
    return size


def batches_within(outcomes: list[TaskOutcome], limit: int) -> list[list[TaskOutcome]]:
    """``outcomes`` in RESULT-sized batches under the broker's ``limit``; an outcome that could
    never fit becomes an error saying so (the broker would drop the connection instead)."""
    batches: list[list[TaskOutcome]] = [[]]
    room = limit - RESULT_OVERHEAD
    used = 0
    for outcome in outcomes:
        size = _outcome_size(outcome)
        if size > room:
            error = MessageTooLargeError(f"the outcome of task {UUID(bytes=outcome.uuid)} ({outcome.status})",
                                         size, limit)
            log.error("%s", error)
            outcome = TaskOutcome(outcome.uuid, outcome.attempt, Status.ERROR, None,
                                  f"{type(error).__name__}: {error}", outcome.finished_at, {})
            size = _outcome_size(outcome)
        if used + size > room and batches[-1]:
            batches.append([])
            used = 0
        batches[-1].append(outcome)
        used += size
    return batches


def _report_send_failure(sent: "asyncio.Future[Any]") -> None:
    if not sent.cancelled() and sent.exception() is not None:
        log.error("could not send to the broker: %s", sent.exception())
