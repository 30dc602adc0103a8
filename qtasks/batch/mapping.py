"""``task.map`` and its kin: many calls of one task, as ``multiprocessing.Pool.map`` makes them.

One :class:`MapRun` holds a map's state; :func:`iterate` (blocking) and :func:`iterate_async`
drive it. The input is consumed lazily: at most ``window`` chunks are in flight (submitted
and not yet taken by the caller), so a generator of ten million items runs in flat memory
on the client and the broker. Several calls travel and run as one envelope (a *chunk*, see
``qtasks.protocol.CHUNK``); without ``chunksize`` its size adapts to how long a call takes,
from the chunks that came back::

    size = TARGET_CHUNK_SECONDS / seconds per call      (1 .. MAX_CHUNK)

so tiny calls are batched by the thousand and long ones go one by one to every process;
with the input's length known, a chunk never takes more than its share of what is left.
The first failure raises :class:`~qtasks.exc.MapItemError` (its index, the remote traceback,
the uuid) and cancels the rest; ``return_exceptions=True`` puts the errors in the items'
places instead. Leaving early (an exception, Ctrl+C, a closed iterator) cancels what is queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid as uuid_module
from concurrent import futures
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable, Iterator, Optional

from qtasks.enums import TaskStatusEnum as Status
from qtasks.exc import MapItemError
from qtasks.ids import new_uuid_bytes
from qtasks.progress import Progress, progress_reporter
from qtasks.protocol import (
    CHUNK,
    DEFAULT_MAX_MESSAGE_SIZE,
    Call,
    TaskEnvelope,
    TaskSnapshot,
    pack_chunk,
    unpack_chunk_results,
)

log = logging.getLogger("qtasks.batch")

TARGET_CHUNK_SECONDS = 0.02
CPU_BOUND_CHUNK_SECONDS = 0.1
"""CPU-bound calls travel in longer chunks: a worker's event loop waits for the interpreter lock
(up to 5 ms a time) to hand a chunk's results on and start the next, so fewer hand-offs keep both
busier; the last chunks still split what is left between the processes."""
MAX_CHUNK = 1000
NO_TIMEOUT = 7 * 86_400.0
"""How long a chunk is waited for when the map has no timeout."""



@dataclass
class Chunk:
    start: int
    count: int
    uuid: bytes


class MapRun:
    def __init__(self, app: Any, task_name: str, calls: Iterable[Call], *, priority: Optional[int] = None,
                 chunksize: Optional[int] = None, window: Optional[int] = None, timeout: Optional[float] = None,
                 return_exceptions: bool = False, progress: Progress = False, total: Optional[int] = None,
                 processes: int = 1, slots: int = 1) -> None:
        if chunksize is not None and chunksize < 1:
            raise ValueError(f"chunksize must be at least 1, got {chunksize}")
        if window is not None and window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.app = app
        self.task_name = task_name
        self.calls = iter(calls)
        self.priority = priority
        self.chunksize = chunksize
        self.spread = max(1, processes)
        self.slots = max(1, slots)
        self.fixed_window = window is not None
        self.default_window = max(2, slots + processes)
        self.window = window or 2 * self.spread
        """Chunks in flight at most: every slot busy, and one more for each process ready to go; for
        calls that keep a CPU busy, two per process: one running, one ready (see :meth:`_learn`).
        Two per process too until the first chunk came back: nothing is known yet."""
        self.total = total
        self.return_exceptions = return_exceptions
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        self.in_flight: dict[futures.Future[Any], Chunk] = {}
        self.results: dict[int, Any] = {}
        """Results in hand, by input index, not yet given to the caller."""
        self.next_index = 0
        self.next_out = 0
        self.exhausted = False
        self.per_call: Optional[float] = None
        self.cpu_bound = False
        self.done = 0
        self._progress = progress_reporter(progress, total)
        self._limit = (app.broker.max_message_size or DEFAULT_MAX_MESSAGE_SIZE) // 2

    # ------------------------------------------------------------------ submitting

    def chunk_size(self) -> int:
        if self.chunksize is not None:
            return self.chunksize
        if self.per_call is None:
            return 1  # until a chunk came back, nothing is known of how long a call takes
        target = CPU_BOUND_CHUNK_SECONDS if self.cpu_bound else TARGET_CHUNK_SECONDS
        size = int(target / max(self.per_call, 1e-7))
        if self.total is not None:  # leave every process a share of what is left
            size = min(size, -(-(self.total - self.next_index) // (2 * self.spread)))
        return max(1, min(MAX_CHUNK, size))

    def fill(self) -> list[futures.Future[Any]]:
        """Submit chunks until the window is full or the input ends; the new chunks' futures."""
        submitted = []
        while not self.exhausted and len(self.in_flight) + self._held() < self.window:
            calls = self._take(self.chunk_size())
            if not calls:
                self.exhausted = True
                break
            chunk = Chunk(self.next_index, len(calls), new_uuid_bytes())
            payload = pack_chunk(self.task_name, calls, self.next_index, self._limit)
            self.next_index += len(calls)
            envelope = TaskEnvelope(chunk.uuid, self.task_name, self.app.name, self._priority(), time.time(),
                                    payload, {CHUNK: len(calls)})
            future = self.app.broker.submit([envelope], wait=self._remaining() or NO_TIMEOUT)
            self.in_flight[future] = chunk
            submitted.append(future)
        return submitted

    def _take(self, size: int) -> list[Call]:
        calls: list[Call] = []
        for call in self.calls:
            calls.append(call)
            if len(calls) >= size:
                break
        return calls

    def _priority(self) -> int:
        if self.priority is None:
            schema = self.app._lookup(self.task_name)
            self.priority = schema.priority if schema is not None and schema.priority is not None else 0
        return self.priority

    def _held(self) -> int:
        """Chunks' worth of results waiting for the caller (they count against the window)."""
        return -(-len(self.results) // max(1, self.chunk_size()))

    def _remaining(self) -> Optional[float]:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    # ------------------------------------------------------------------ results

    def finish(self, future: futures.Future[Any]) -> None:
        """A chunk ended: file its calls' results (raising the first failure, unless errors are returned)."""
        chunk = self.in_flight.pop(future)
        found: list[Optional[TaskSnapshot]] = future.result()
        snapshot = found[0] if found else None
        if snapshot is None:
            raise self.timed_out()
        uuid = uuid_module.UUID(bytes=chunk.uuid)
        if snapshot.status == Status.SUCCESS and snapshot.returning is not None:
            self._learn(chunk.count, snapshot.extra.get("chunk_seconds"), snapshot.extra.get("chunk_cpu_seconds"))
            items = unpack_chunk_results(snapshot.returning, chunk.count)
        else:  # the whole chunk ended badly (its worker lost too often, cancelled, unknown task ...)
            items = [(snapshot.status, None, snapshot.traceback)] * chunk.count
        results, success = self.results, Status.SUCCESS.value
        for offset, (status, returning, traceback) in enumerate(items):
            index = chunk.start + offset
            if status == success:
                results[index] = returning
                continue
            error = MapItemError(self.task_name, index, uuid, status, traceback)
            if not self.return_exceptions:
                raise error
            self.results[index] = error
        self.done += chunk.count
        if self._progress is not None:
            self._progress(self.done)

    def _learn(self, count: int, seconds: Any, cpu: Any) -> None:
        """What a chunk's timing says of the calls: how long one takes, and whether they keep a CPU busy.

        Plain calls of one process share its interpreter lock, so with several chunks running in a
        process each takes several times its own CPU time: CPU time times the chunks a process runs
        at once, near the wall time, means CPU-bound calls. Those are sized by their CPU time, and
        only two chunks per process are in flight (more would only make a busy process hold chunks
        an idle one could run)."""
        if not isinstance(seconds, (int, float)) or seconds <= 0:
            return
        per_call = seconds / count
        if isinstance(cpu, (int, float)) and seconds > 0.005:
            at_once = max(1.0, min(self.window, self.slots) / self.spread)
            share = cpu * at_once / seconds
            # low thresholds (more worker processes than cores divide the share too), with a margin
            self.cpu_bound = share >= (0.12 if self.cpu_bound else 0.25)
            if self.cpu_bound:
                per_call = cpu / count
        elif not isinstance(cpu, (int, float)):
            self.cpu_bound = False  # calls on the loop (async def): they wait, they do not compute
        if not self.fixed_window:
            self.window = 2 * self.spread if self.cpu_bound else self.default_window
        self.per_call = per_call if self.per_call is None else 0.7 * self.per_call + 0.3 * per_call

    def ready(self, ordered: bool) -> Iterator[Any]:
        """The results the caller may have now: in input order, or as they came."""
        results = self.results
        if ordered:
            while self.next_out in results:
                yield results.pop(self.next_out)
                self.next_out += 1
        else:
            while results:
                yield results.pop(next(iter(results)))

    def close(self) -> None:
        """Stop: cancel the chunks still queued or running (the caller left, or one call failed)."""
        if self.in_flight:
            uuids = [chunk.uuid for chunk in self.in_flight.values()]
            self.in_flight.clear()
            broker = self.app.broker
            cancelled = broker.cancel(uuids, f"{self.task_name}.map stopped")
            try:  # taken before this returns: the program may be on its way out (Ctrl+C)
                cancelled.result(broker.connect_timeout)
            except Exception as exc:
                log.warning("%s.map: %d queued chunk(s) may not have been cancelled: %s", self.task_name,
                            len(uuids), exc)
        self.exhausted = True
        if self._progress is not None:
            self._progress.close()

    def timed_out(self) -> TimeoutError:
        return TimeoutError(f"{self.task_name}.map did not finish within {self.timeout} s; the rest of it was "
                            "cancelled")


def iterate(run: MapRun, ordered: bool = True) -> Iterator[Any]:
    """Drive ``run`` blocking: its results, in input order or as they come."""
    try:
        run.fill()
        while run.in_flight:
            done, _ = futures.wait(run.in_flight, timeout=run._remaining(), return_when=futures.FIRST_COMPLETED)
            if not done:
                raise run.timed_out()
            for future in done:
                run.finish(future)
            yield from run.ready(ordered)
            run.fill()
        yield from run.ready(ordered)
    finally:
        run.close()


async def iterate_async(run: MapRun, ordered: bool = True) -> AsyncIterator[Any]:
    """Drive ``run`` on the running event loop: its results, in input order or as they come."""
    waiting: dict[asyncio.Future[Any], futures.Future[Any]] = {}
    try:
        for future in run.fill():
            waiting[asyncio.wrap_future(future)] = future
        while waiting:
            done, _ = await asyncio.wait(waiting, timeout=run._remaining(), return_when=asyncio.FIRST_COMPLETED)
            if not done:
                raise run.timed_out()
            for wrapped in done:
                run.finish(waiting.pop(wrapped))
            for result in run.ready(ordered):
                yield result
            for future in run.fill():
                waiting[asyncio.wrap_future(future)] = future
        for result in run.ready(ordered):
            yield result
    finally:
        run.close()


def calls_of(iterable: Iterable[Any], star: bool) -> Iterator[Call]:
    """Each item as one positional argument, or (``star``) as the arguments."""
    if star:
        return ((tuple(item), {}) for item in iterable)
    return (((item,), {}) for item in iterable)


def length_of(iterable: Iterable[Any]) -> Optional[int]:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None
