"""The client side of the protocol, without a socket (sans-IO, like the broker's core).

A :class:`ClientSession` turns API requests into messages and the broker's answers into
resolved ``concurrent.futures.Future`` objects. Its driver (an I/O thread, or a blocking
caller's own thread; see ``qtasks.client.drivers``) feeds it what arrives
(:meth:`receive`), the passing of time (:meth:`run_due`), and sends what it queued
(:meth:`take_outgoing`). Only the driver's thread touches it, so nothing is locked::

    requests ──▶ outbox ──▶ (driver sends) ──▶ broker
    pending  {req_id: request}         resolved by REPLY / ERROR, failed on timeout
    waits    {uuid: [BatchWait]}       resolved by NOTIFY (results are pushed), or their deadline
    streams  {uuid: [Stream]}          fed by PROGRESS (generator steps)
    timers   request deadlines, wait deadlines, pings while waiting, the listener probe

Every wait is bounded: a request the broker does not answer within ``connect_timeout``
fails with :class:`~qtasks.exc.BrokerUnavailableError` and the driver replaces the
socket (``needs_new_socket``), so nothing queued for a broker that may appear later is
sent behind the caller's back; a result wait ends at its deadline with None for the
tasks that did not finish; while results are awaited the session pings the broker, so a
broker that died or restarted is noticed instead of waited on. A first request left
unanswered for ``PROBE_AFTER`` seconds gets the listener at the URL checked: something
that is not a ZeroMQ peer fails every request at once (``NotABrokerError``), and so does a
broker whose security differs from this side's (CURVE keys on one side only:
``SecurityMismatchError``), since ZeroMQ would retry that handshake silently forever.
"""

from __future__ import annotations

import logging
import uuid as uuid_module
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable, Collection, Optional

from qtasks.deadlines import Timer, TimerHeap
from qtasks.enums import FINAL_STATUSES
from qtasks.exc import (
    BrokerUnavailableError,
    DecodeError,
    MessageTooLargeError,
    NotABrokerError,
    SecurityMismatchError,
    TaskLostError,
    reply_error,
)
from qtasks.protocol import (
    BrokerHello,
    Cancel,
    Dead,
    Error,
    Flush,
    Frames,
    Get,
    Message,
    Notify,
    Ops,
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
from qtasks.urls import STRANGER, ZEROMQ, security_mechanism
from qtasks.urls import probe as probe_url

log = logging.getLogger("qtasks.client")

UNPROBED_SIZE = 64 * 1024
"""Messages up to this size go out before the broker's limit is known; a larger one waits for a PING."""
PROBE_AFTER = 0.3
"""Seconds a first request may go unanswered before the listener at the URL is checked."""

PUSH_SECONDS = 3600.0
"""How long the broker keeps pushing the result of a task this session submitted without waiting."""
MAX_PUSHED = 100_000
"""Submitted tasks whose pushed results are awaited at most (past it, a submit asks for no push)."""
MAX_FINISHED = 20_000
"""Pushed results kept for a later wait at most (the oldest go first; a wait then asks the broker)."""

StreamItem = tuple[Any, ...]
"""("step", index, msgpack value) for each step, then ("end", final snapshot or None, error or None)."""
Snapshots = list[Optional[TaskSnapshot]]


class _Request:
    __slots__ = ("on_reply", "on_fail", "timer", "patient")

    def __init__(self, on_reply: Callable[[Reply], None], on_fail: Callable[[BaseException], None],
                 timer: Timer, patient: bool = False) -> None:
        self.on_reply = on_reply
        self.on_fail = on_fail
        self.timer = timer
        self.patient = patient
        """Unanswered, it fails nothing: the keep-alive of open waits, which may outlast a restart."""


class BatchWait:
    """Waiting for the final snapshots of ``uuids``; resolves ``future`` once, in uuid order."""

    __slots__ = ("uuids", "missing", "found", "future", "deadline", "timer", "acked")

    def __init__(self, uuids: list[bytes], deadline: float, future: Optional[Future[Snapshots]] = None) -> None:
        self.uuids = uuids
        self.missing = set(uuids)
        self.found: dict[bytes, TaskSnapshot] = {}
        self.future: Future[Snapshots] = future if future is not None else Future()
        self.deadline = deadline
        self.timer: Optional[Timer] = None
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


class ClientSession:
    def __init__(self, url: str, *, connect_timeout: float = 5.0, ping_interval: float = 1.0,
                 timers: Optional[TimerHeap] = None,
                 probe: Callable[[str], tuple[str, str]] = probe_url,
                 mechanism: Callable[[str], Optional[str]] = security_mechanism, curve: bool = False) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.timers = timers if timers is not None else TimerHeap()
        self.probe = probe
        self.mechanism = mechanism
        self.curve = curve
        """This side uses CURVE keys (errors then say the broker may have refused them)."""
        self.outbox: list[tuple[Optional[int], Frames]] = []
        """Messages for the driver to send, in order, with the request each belongs to."""
        self.needs_new_socket = False
        """Set when the session gave up on the broker: the driver replaces the socket."""
        self.max_message_size: Optional[int] = None
        """The broker's message limit, once it told us (every PING, SUBMIT and WAIT reply does)."""
        self._next_id = 0
        self._pending: dict[int, _Request] = {}
        self._waits: dict[bytes, list[BatchWait]] = {}
        self._streams: dict[bytes, list[_Stream]] = {}
        self._boot_id: Optional[bytes] = None
        self._heard = False
        self._silent_since: Optional[float] = None
        """When the broker stopped answering the keep-alive of open waits (None: it answers)."""
        """Something answered on this socket (a broker, then: no need to probe the listener)."""
        self._probe_timer: Optional[Timer] = None
        self._pinging = False
        self._pushed: dict[bytes, float] = {}
        """Tasks submitted without waiting whose results the broker pushes here: uuid → when submitted."""
        self._finished: dict[bytes, TaskSnapshot] = {}
        """Pushed results, for a later wait (read from callers' threads too; bounded by ``MAX_FINISHED``)."""
        self._finished_order: deque[bytes] = deque()
        self._refused: dict[bytes, BaseException] = {}
        """Pipelined submits the broker refused (or never acknowledged): uuid → the error, for a wait."""
        self.deferred: deque[BaseException] = deque()
        """Errors of pipelined submits, raised by the caller's next request (read from any thread)."""
        self.unacked = 0
        """Pipelined submits the broker has not acknowledged yet."""
        self._settled: list[Future[Any]] = []

    # ------------------------------------------------------------------ requests

    def submit(self, envelopes: list[TaskEnvelope], wait: Optional[float] = None,
               future: Optional[Future[Any]] = None) -> Future[Any]:
        """Send ``envelopes``. Resolves to the accepted count, or with ``wait`` to their final snapshots."""
        if wait is None:
            return self._simple(lambda req_id: Submit(req_id, None, envelopes),
                                lambda reply: self._note_hello(*reply.as_submit_ack()), future)
        batch = BatchWait([e.uuid for e in envelopes], self.timers.clock() + wait, future)

        def on_reply(reply: Reply) -> None:
            self._note_hello(*reply.as_submit_ack())
            self._acked(batch)

        self._register_wait(batch)
        self._request(lambda req_id: Submit(req_id, wait, envelopes), on_reply,
                      lambda error: self._drop_wait(batch, error))
        return batch.future

    def submit_pipelined(self, envelopes: list[TaskEnvelope], future: Optional[Future[Any]] = None) -> Future[Any]:
        """Send ``envelopes`` without waiting for the broker's acknowledgement; it resolves ``future``
        (the accepted count) later. The broker pushes the tasks' results here, so a later :meth:`wait`
        costs no round trip. A refusal after this returns is kept in :attr:`deferred` (for the next
        request) and fails a wait for these tasks; one known at once (a message over the limit) fails
        ``future`` before this returns."""
        result: Future[Any] = future if future is not None else Future()
        uuids = [e.uuid for e in envelopes]
        push = len(self._pushed) + len(uuids) <= MAX_PUSHED
        sent = False

        def on_reply(reply: Reply) -> None:
            self._note_hello(*reply.as_submit_ack())
            self._settle_one()
            _resolve(result, lambda r: r.as_submit_ack()[0], reply)

        def on_fail(error: BaseException) -> None:
            for uuid in uuids:
                self._pushed.pop(uuid, None)
            if sent:
                self._settle_one()
                for uuid in uuids:
                    self._refused[uuid] = error
                if len(self._refused) > MAX_PUSHED:
                    self._refused.pop(next(iter(self._refused)))
                self.deferred.append(_earlier_submit(error, envelopes))
            _fail(result, error)

        if push:
            now = self.timers.clock()
            for uuid in uuids:
                self._pushed[uuid] = now
        self.unacked += 1
        self._request(lambda req_id: Submit(req_id, PUSH_SECONDS if push else None, envelopes), on_reply, on_fail)
        if result.done():  # refused before it was sent: the caller raises it now
            self.unacked -= 1
        sent = True
        return result

    def expects(self, uuids: list[bytes], also: Collection[bytes] = ()) -> bool:
        """Whether every one of ``uuids`` has its result pushed here, or had, or was refused, or is in
        ``also`` (submits about to be made here); safe from any thread."""
        pushed, finished, refused = self._pushed, self._finished, self._refused
        return all(u in finished or u in pushed or u in refused or u in also for u in uuids)

    def finished_now(self, uuids: list[bytes]) -> Optional[Snapshots]:
        """The pushed results of ``uuids`` if all are in (None otherwise); safe from any thread."""
        finished = self._finished
        found = [finished.get(u) for u in uuids]
        return None if any(s is None for s in found) else found

    def when_settled(self, future: Future[Any]) -> Future[Any]:
        """Resolves ``future`` once every pipelined submit is acknowledged or failed."""
        if self.unacked <= 0:
            future.set_result(None)
        else:
            self._settled.append(future)
        return future

    def _settle_one(self) -> None:
        self.unacked -= 1
        if self.unacked <= 0:
            self._settle_all()

    def _settle_all(self) -> None:
        self.unacked = 0
        settled, self._settled = self._settled, []
        for future in settled:
            if not future.done():
                future.set_result(None)

    def wait(self, uuids: list[bytes], timeout: float,
             future: Optional[Future[Snapshots]] = None) -> Future[Snapshots]:
        """Resolves to the final snapshots of ``uuids`` (None for those unfinished after ``timeout``).
        Results pushed here already, or on their way, are not asked for again."""
        batch = BatchWait(uuids, self.timers.clock() + timeout, future)
        refused = next((self._refused[u] for u in uuids if u in self._refused), None)
        if refused is not None:
            batch.fail(refused)
            return batch.future
        finished = self._finished
        for uuid in uuids:
            snapshot = finished.get(uuid)
            if snapshot is not None:
                batch.found[uuid] = snapshot
                batch.missing.discard(uuid)
        if not batch.missing:
            batch.resolve()
            return batch.future
        self._register_wait(batch)
        trusted = self.timers.clock() - PUSH_SECONDS + self.connect_timeout
        if all(self._pushed.get(uuid, trusted) > trusted for uuid in batch.missing):
            batch.acked = True  # their results are pushed here anyway: nothing to ask
        else:
            self._send_wait(batch, after_restart=False)
        return batch.future

    def watch(self, uuid: bytes, timeout: float, on_item: Callable[[StreamItem], None]) -> None:
        """Follow a task's steps: ``on_item`` gets each step, then once the end (the final snapshot;
        None when unknown or not finished within ``timeout``)."""
        stream = _Stream(on_item)
        batch = BatchWait([uuid], self.timers.clock() + timeout)

        def ended(done: Future[Snapshots]) -> None:
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

        batch.future.add_done_callback(ended)
        self._register_wait(batch)
        self._streams.setdefault(uuid, []).append(stream)
        self._request(lambda req_id: Watch(req_id, uuid, timeout), on_reply,
                      lambda error: self._drop_wait(batch, error))

    def cancel(self, uuids: list[bytes], reason: str, future: Optional[Future[Any]] = None) -> Future[Any]:
        """Resolves to the tasks' records after the cancel (None for unknown uuids)."""
        return self._simple(lambda req_id: Cancel(req_id, uuids, reason), Reply.as_snapshots, future)

    def get(self, uuids: list[bytes], future: Optional[Future[Any]] = None) -> Future[Any]:
        return self._simple(lambda req_id: Get(req_id, uuids), Reply.as_snapshots, future)

    def stats(self, future: Optional[Future[Any]] = None) -> Future[Any]:
        return self._simple(lambda req_id: Stats(req_id), lambda reply: reply.value, future)

    def ping(self, future: Optional[Future[Any]] = None) -> Future[Any]:
        """Resolves to the broker's boot id."""
        return self._simple(lambda req_id: Ping(req_id), self._on_pong, future)

    def dead(self, op: str, app: Optional[str], task_name: Optional[str], uuids: list[bytes],
             limit: Optional[int], future: Optional[Future[Any]] = None) -> Future[Any]:
        """Dead letters: ``list`` resolves to (count, snapshots), ``retry`` to the new tasks' snapshots
        (None where a uuid was not a dead letter), ``purge`` to how many were deleted."""
        convert: Callable[[Reply], Any] = {"list": Reply.as_dead_list, "retry": Reply.as_snapshots}.get(
            op, lambda reply: reply.value)
        return self._simple(lambda req_id: Dead(req_id, op, app, task_name, uuids, limit), convert, future)

    def ops(self, op: str, args: dict[str, Any], future: Optional[Future[Any]] = None) -> Future[Any]:
        """An operator's request (see ``Ops``): ``tasks`` resolves to views, ``inspect`` to a view or None,
        ``retry`` to the new task's uuid, the others to the reply's value."""
        convert: Callable[[Reply], Any] = {"tasks": Reply.as_views, "inspect": Reply.as_view,
                                           "retry": Reply.as_uuid}.get(op, lambda reply: reply.value)
        return self._simple(lambda req_id: Ops(req_id, op, args), convert, future)

    def flush(self, app: str, future: Optional[Future[Any]] = None) -> Future[Any]:
        """Resolves to how many ended task records of ``app`` the broker deleted."""
        return self._simple(lambda req_id: Flush(req_id, app), lambda reply: reply.value, future)

    def state(self, namespace: tuple[str, str, str], op: str, args: bytes,
              future: Optional[Future[Any]] = None) -> Future[Any]:
        """Resolves to the packed result of a state operation."""
        return self._simple(lambda req_id: StateOp(req_id, namespace, op, args), Reply.as_packed, future)

    # ------------------------------------------------------------------ the driver's side

    def receive(self, frames: list[bytes]) -> None:
        """One message from the broker."""
        self._heard = True
        try:
            message = decode(frames)
        except DecodeError as exc:
            log.warning("ignored a malformed message from the broker at %s: %s", self.url, exc)
            return
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
                    request.on_fail(DecodeError(f"malformed reply from the broker: {exc}", message.value, exc))
        elif isinstance(message, Error):
            self._on_error(message)

    def take_outgoing(self) -> list[tuple[Optional[int], Frames]]:
        outgoing, self.outbox = self.outbox, []
        return outgoing

    def send_failed(self, req_id: Optional[int], error: BaseException) -> None:
        """The driver could not put a message on the socket (its queue is full)."""
        request = self._pending.pop(req_id, None) if req_id is not None else None
        if request is not None:
            request.timer.cancel()
            request.on_fail(error)

    def timeout(self) -> Optional[float]:
        return self.timers.timeout()

    def run_due(self) -> None:
        self.timers.run_due()

    def socket_replaced(self) -> None:
        self.needs_new_socket = False
        self._heard = False

    def close(self, error: BaseException) -> None:
        """Fail everything still waiting; the session is not used afterwards."""
        self.outbox.clear()
        self._fail_everything(error)

    # ------------------------------------------------------------------ requests inside

    def _simple(self, make: Callable[[int], Message], convert: Callable[[Reply], Any],
                future: Optional[Future[Any]]) -> Future[Any]:
        result: Future[Any] = future if future is not None else Future()
        self._request(make, lambda reply: _resolve(result, convert, reply), lambda error: _fail(result, error))
        return result

    def _request(self, make: Callable[[int], Message], on_reply: Callable[[Reply], None],
                 on_fail: Callable[[BaseException], None], patient: bool = False) -> None:
        self._next_id += 1
        req_id = self._next_id
        message = make(req_id)
        frames = encode(message)
        if self.max_message_size is None and len(frames[2]) > UNPROBED_SIZE:
            # Learn the broker's limit first: a message over it would cost us the connection.
            def then_send(pong: Reply) -> None:
                self._on_pong(pong)
                self._send_request(req_id, message, frames, on_reply, on_fail)

            self._request(lambda ping_id: Ping(ping_id), then_send, on_fail)
            return
        self._send_request(req_id, message, frames, on_reply, on_fail, patient)

    def _send_request(self, req_id: int, message: Message, frames: Frames, on_reply: Callable[[Reply], None],
                      on_fail: Callable[[BaseException], None], patient: bool = False) -> None:
        limit = self.max_message_size
        if limit is not None and len(frames[2]) > limit:
            on_fail(MessageTooLargeError(_describe(message), len(frames[2]), limit))
            return
        timer = self.timers.call_later(self.connect_timeout, self._unanswered, req_id)
        self._pending[req_id] = _Request(on_reply, on_fail, timer, patient)
        if not self._heard and self._probe_timer is None:
            self._probe_timer = self.timers.call_later(min(PROBE_AFTER, self.connect_timeout),
                                                       self._check_listener)
        self.outbox.append((req_id, frames))

    def _check_listener(self) -> None:
        """A first request is unanswered: is a broker listening there at all, or something else?"""
        self._probe_timer = None
        if self._heard or not self._pending:
            return
        found, detail = self.probe(self.url)
        if found == STRANGER and not self._heard:
            self._give_up(NotABrokerError(self.url, detail))
        elif found == ZEROMQ and not self._heard:
            theirs, ours = self.mechanism(self.url), "CURVE" if self.curve else "NULL"
            if theirs is not None and theirs != ours and not self._heard:
                self._give_up(SecurityMismatchError(self.url, theirs, ours))

    def _unanswered(self, req_id: int) -> None:
        """A request got no answer in time: the broker is down or unreachable."""
        request = self._pending.get(req_id)
        if request is None:
            return
        if request.patient:  # open waits go on: the broker may be restarting (with its data directory)
            del self._pending[req_id]
            if self._silent_since is None:
                self._silent_since = self.timers.clock() - self.connect_timeout
                log.warning("the broker at %s does not answer; still waiting for %d task(s) until their "
                            "timeouts, in case it comes back", self.url, len(self._waits))
            return
        self._give_up(BrokerUnavailableError(self.url, self.connect_timeout, curve=self.curve))

    def _give_up(self, error: BaseException) -> None:
        log.debug("failing every request to %s: %s", self.url, error)
        self.outbox.clear()
        self._fail_everything(error)
        self.needs_new_socket = True
        self._boot_id = None
        self.max_message_size = None
        self._pushed.clear()

    def _on_error(self, error: Error) -> None:
        request = self._pending.pop(error.req_id, None) if error.req_id is not None else None
        if request is None:
            log.warning("the broker at %s reported: %s (%s)", self.url, error.message, error.code)
            return
        request.timer.cancel()
        request.on_fail(reply_error(error.code, error.message))

    def _fail_everything(self, error: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for request in pending.values():
            request.timer.cancel()
            request.on_fail(error)
        self._settle_all()
        waits, self._waits = self._waits, {}
        for batches in waits.values():
            for batch in batches:
                batch.fail(error)

    def _on_pong(self, reply: Reply) -> bytes:
        hello = reply.as_hello()
        self._note_hello(None, hello)
        return hello.boot_id

    def _note_hello(self, result: Any, hello: BrokerHello) -> Any:
        if self._boot_id is not None and hello.boot_id != self._boot_id:
            self._pushed.clear()  # a restarted broker pushes nothing it was asked to before
        self._boot_id = hello.boot_id
        self.max_message_size = hello.max_message_size
        return result

    # ------------------------------------------------------------------ result waits

    def _register_wait(self, batch: BatchWait) -> None:
        for uuid in batch.missing:
            self._waits.setdefault(uuid, []).append(batch)
        batch.timer = self.timers.call_at(batch.deadline, self._wait_expired, batch)
        if not self._pinging:
            self._pinging = True
            self.timers.call_later(self.ping_interval, self._ping_while_waiting)

    def _send_wait(self, batch: BatchWait, after_restart: bool) -> None:
        timeout = max(0.0, batch.deadline - self.timers.clock())

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

    def _acked(self, batch: BatchWait) -> None:
        batch.acked = True
        if not batch.missing or self.timers.clock() >= batch.deadline:
            self._drop_wait(batch, None)

    def _wait_expired(self, batch: BatchWait) -> None:
        # A wait whose request is not answered yet ends when the answer (or its timeout) comes.
        if batch.acked:
            silent = self._silent_since
            self._drop_wait(batch, None if silent is None else
                            BrokerUnavailableError(self.url, self.timers.clock() - silent))

    def _forget(self, batch: BatchWait, uuids: list[bytes]) -> None:
        for uuid in uuids:
            batch.missing.discard(uuid)
            batches = self._waits.get(uuid)
            if batches is not None and batch in batches:
                batches.remove(batch)
                if not batches:
                    del self._waits[uuid]

    def _drop_wait(self, batch: BatchWait, error: Optional[BaseException]) -> None:
        """Stop waiting for the batch: resolve it with what was found, or fail it."""
        self._forget(batch, list(batch.missing))
        if error is not None:
            batch.fail(error)
        else:
            batch.resolve()

    def _on_notify(self, notify: Notify) -> None:
        for uuid, snapshot in notify.items:
            if uuid in self._pushed:
                self._finished[uuid] = snapshot  # before it leaves _pushed: a reader sees it in one or the other
                del self._pushed[uuid]
                self._finished_order.append(uuid)
                if len(self._finished_order) > MAX_FINISHED:
                    self._finished.pop(self._finished_order.popleft(), None)
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
            if self._silent_since is not None:
                log.info("the broker at %s answers again", self.url)
                self._silent_since = None
            if self._boot_id is not None and hello.boot_id != self._boot_id:
                log.warning("the broker at %s restarted; asking it again for %d awaited task(s)",
                            self.url, len(self._waits))
                self._rewait()
            self._note_hello(None, hello)

        self._request(lambda req_id: Ping(req_id), on_reply, lambda error: None, patient=True)
        self.timers.call_later(self.ping_interval, self._ping_while_waiting)

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


def _earlier_submit(error: BaseException, envelopes: list[TaskEnvelope]) -> BaseException:
    """``error`` of a pipelined submit, told apart from the call it is raised by."""
    shown = ", ".join(f"{e.task_name} {uuid_module.UUID(bytes=e.uuid)}" for e in envelopes[:3])
    note = (f"(this error is of an earlier add_task: {shown}{' ...' if len(envelopes) > 3 else ''}, "
            "which the broker did not take; the call that raised it was not sent)")
    notes = getattr(error, "__notes__", None)
    if notes is None:
        notes = []
        try:  # what add_note does on Python 3.11+ (its tracebacks show them)
            error.__dict__["__notes__"] = notes
        except AttributeError:
            return error
    if not any(n.startswith("(this error is of an earlier add_task") for n in notes):
        notes.append(note)
    return error


def _resolve(future: Future[Any], convert: Callable[[Reply], Any], reply: Reply) -> None:
    value = convert(reply)  # a reply of the wrong shape raises: the session fails the request
    if not future.done():
        future.set_result(value)


def _fail(future: Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _guarded(call: Callable[[], None]) -> None:
    """Run a caller's callback; a bug in one must not stop the driver."""
    try:
        call()
    except Exception:
        log.exception("a callback failed inside the client session")
