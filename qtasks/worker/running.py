"""``TaskRunner``: one delivery in, one outcome out.

It finds the task, builds its executor, fires the task events, and turns whatever
happened into the outcome the worker reports::

    returned                      → success (the result packed; decode= output that msgpack
                                    cannot carry is stored as its text)
    raised TaskCancelError,
      or cancelled from outside   → cancel, with cancel_reason
    raised Retry, or an exception
      retry_on_exc matches         → retry (while runs are left), the broker makes the next one
    raised anything else          → error, with the traceback
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import threading
import time
import traceback
from dataclasses import replace
from typing import Any, Callable, Optional
from uuid import UUID

import anyio

from qtasks.client.lending import current_lender
from qtasks.enums import TaskStatusEnum as Status
from qtasks.exc import (
    DecodeError,
    MessageTooLargeError,
    TaskCancelError,
    TaskExitError,
    TaskPluginTriggerError,
    UnknownTaskError,
    UnserializableResultError,
)
from qtasks.executors.threads import run_in_thread
from qtasks.plugins.base import maybe_await
from qtasks.plugins.triggers import fire, listened
from qtasks.protocol import (
    CHUNK,
    DEFAULT_MAX_MESSAGE_SIZE,
    Delivery,
    TaskOutcome,
    pack_chunk_results,
    pack_result,
    pack_value,
    unpack_arguments,
    unpack_chunk,
    unpack_value,
)
from qtasks.schemas.task_status import (
    TaskStatusCancelSchema,
    TaskStatusErrorSchema,
    TaskStatusProcessSchema,
    TaskStatusSuccessSchema,
    extra_fields,
)
from qtasks.tasks.spec import TaskExecSchema, TaskPrioritySchema
from qtasks.worker.component import ServedApp
from qtasks.worker.direct import callable_directly
from qtasks.worker.lending import SlotLender

log = logging.getLogger("qtasks.worker")

TASK_EVENTS = ("task_running", "task_success", "task_error", "task_cancel", "task_stopping")

INLINE_BELOW = 0.002
"""Seconds under which the calls of a chunk to a plain ``def`` task run on the loop (no thread hop)."""
CPU_BOUND = 0.15
"""Share of its thread's wall time a chunk's plain calls spend on the CPU from which they count as
CPU-bound: low, because two such chunks at once in a process get about half each, and more worker
processes than cores divide it again (calls that wait, on I/O or a sleep, stay near zero)."""
_CPU_SHARE: dict[str, float] = {}
"""Per task name: a moving average of that share, from the chunks this process ran."""
_NO_TURN = contextlib.nullcontext()
TURN_EVERY = 0.005
"""Seconds of a chunk's calls after which the loop gets a turn (heartbeats, the other slots)."""
_NO_EXTRA: dict[str, Any] = {}
_CALL_SECONDS: dict[str, float] = {}
"""A moving average of how long one call of each task takes, from the chunks this process ran."""

RESULT_ROOM = 2048
"""Bytes of a RESULT frame a result must leave for the rest of its outcome."""

StepSink = Callable[[Delivery, int, bytes], None]
_OUTCOME_EVENTS: dict[str, str] = {Status.SUCCESS: "task_success", Status.CANCEL: "task_cancel"}
ThreadWatch = Callable[[str, UUID, threading.Event], None]


class RunningTask:
    """A delivery being run, as the worker sees it: stopping it from outside is cancelling its scope
    (for a chunk: the call running now, and the ones after it never start)."""

    __slots__ = ("scope", "reason", "current", "cpu_seconds")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.reason: Optional[str] = None
        self.cpu_seconds = 0.0
        """CPU time a chunk's plain calls took in their thread (tells CPU-bound calls from waiting ones)."""
        self.current: Optional[RunningTask] = None
        """The call of a chunk running now."""

    def cancel(self, reason: str) -> None:
        """Stop the task at its next await (a plain ``def`` task's thread runs on; its result is dropped)."""
        self.reason = reason
        self.scope.cancel()
        if self.current is not None:
            self.current.cancel(reason)


class TaskRunner:
    def __init__(self, served: ServedApp, *, report_step: StepSink, watch_thread: ThreadWatch,
                 lender: Optional[SlotLender] = None,
                 message_limit: Callable[[], int] = lambda: DEFAULT_MAX_MESSAGE_SIZE,
                 cpu_turn: Optional[anyio.Lock] = None) -> None:
        self.served = served
        self.message_limit = message_limit
        """The broker's message limit: a result must fit in a RESULT frame."""
        self.report_step = report_step
        self.watch_thread = watch_thread
        self.lender = lender
        self._plugins = served.plugins
        """The worker's plugins (worker_* triggers fire here, in the worker process)."""
        events = served.events
        self._events = {e for e in TASK_EVENTS if events is not None and events.has_handlers(e)}
        """Task events with handlers (registered when the app module was imported)."""
        self.cpu_turn = cpu_turn
        """Taken by a chunk of CPU-bound plain calls while it runs (shared by the process's slots)."""
        self._direct: dict[str, bool] = {}
        """Per task name: whether a chunk's calls may skip the executor (``qtasks.worker.direct``)."""
        self._inline = False
        """Run the next plain ``def`` call on the loop (short calls of a chunk, see ``run_chunk``)."""

    async def run(self, delivery: Delivery, handle: RunningTask) -> TaskOutcome:
        """Run ``delivery``; ``handle.cancel(reason)`` stops it from outside (the broker's CANCEL)."""
        envelope = delivery.envelope
        name = envelope.task_name
        schema = self.served.lookup(name)
        if schema is not None and self._callable_directly(schema) and (schema.awaiting or _short(name)):
            direct = await self._run_directly(schema, delivery, handle)
            if direct is not None:
                return direct
        uuid = UUID(bytes=envelope.uuid)
        task_broker: Optional[TaskPrioritySchema] = None
        executor: Any = None
        extra: dict[str, Any] = {}
        try:
            if schema is None:
                known = self.served.task_names()
                raise UnknownTaskError(name, known, difflib.get_close_matches(name, known, n=3))
            args, kwargs = unpack_arguments(envelope.payload)
            task_broker = TaskPrioritySchema(envelope.priority, uuid, name, args, kwargs, envelope.created_at,
                                             time.time(), delivery.attempt, envelope.metadata.get("retry"))
            schema, task_broker, extra = await self._before(schema, task_broker)
            executor = (schema.executor or self.served.executor_class)(
                task_func=schema, task_broker=task_broker, log=log, plugins=self.served.plugins)
            executor.runtime = self.served.runtime
            executor.inline = self._inline and schema.max_time is None
            if schema.generating:
                executor.step_reporter = lambda index, value: self.report_step(delivery, index, _pack_step(value))
            if "task_running" in self._events:
                await self._fire("task_running", schema, task_broker)
            log.debug("task %s %s started (attempt %d)", name, uuid, delivery.attempt)
            lending = current_lender.set(self.lender)
            started = time.perf_counter()
            try:
                with handle.scope:
                    result = await executor.execute()
            finally:
                current_lender.reset(lending)
            if not schema.awaiting and not schema.generating:
                took = getattr(executor, "call_seconds", None)
                _note_call(name, took if isinstance(took, float) else time.perf_counter() - started)
            if handle.scope.cancelled_caught:
                outcome = self._cancelled(delivery, handle.reason or f"{name}.cancel")
            else:
                outcome = TaskOutcome(envelope.uuid, delivery.attempt, Status.SUCCESS,
                                      self._pack(schema, result), None, time.time(), {})
        except TaskCancelError as exc:
            outcome = self._cancelled(delivery, str(exc) or f"{name}.cancel")
        except Exception as exc:
            outcome = await self._failed(delivery, schema, task_broker, exc)
        except (SystemExit, KeyboardInterrupt) as exc:  # raised by the task's code: it ends, not the process
            try:
                raise TaskExitError(name, exc) from exc
            except TaskExitError as exit_error:
                outcome = await self._failed(delivery, None, None, exit_error)
        self._watch_abandoned_thread(name, uuid, executor)
        if schema is not None and task_broker is not None:
            extra.update(await self._after(schema, task_broker, outcome))
            if extra:
                outcome = TaskOutcome(outcome.uuid, outcome.attempt, outcome.status, outcome.returning,
                                      outcome.traceback, outcome.finished_at, {**outcome.extra, **extra})
            if self._events:
                event = _OUTCOME_EVENTS.get(outcome.status, "task_error")
                await self._fire(event, schema, task_broker, model=outcome)
                await self._fire("task_stopping", schema, task_broker, model=outcome)
        return outcome

    async def run_chunk(self, delivery: Delivery, handle: RunningTask) -> TaskOutcome:
        """Run the calls of a chunk (``task.map``) one after another, each as a task of its own:
        plugins, Depends, State, middlewares and retries apply to every call, a retry runs again
        here. A task nothing of that touches is called directly (``qtasks.worker.direct``): a plain
        ``def`` task's calls in one thread hop for the chunk, an ``async def`` task's on the loop,
        which gets a turn every ``TURN_EVERY`` seconds of calls."""
        envelope = delivery.envelope
        try:
            calls = unpack_chunk(envelope.payload)
        except DecodeError as exc:
            return TaskOutcome(envelope.uuid, delivery.attempt, Status.ERROR, None, f"{type(exc).__name__}: {exc}",
                               time.time(), {})
        name = envelope.task_name
        schema = self.served.lookup(name)
        direct = schema is not None and self._callable_directly(schema)
        results: list[tuple[str, Optional[bytes], Optional[str]]] = []
        busy = since_turn = 0.0
        with handle.scope:  # a cancel stops the call running now; the ones after it never start
            while len(results) < len(calls) and handle.reason is None:
                started = time.perf_counter()
                if direct and schema is not None and not schema.awaiting:
                    # plain calls in one thread hop, up to the first failure (planned here, on the loop);
                    # CPU-bound ones one chunk at a time per process: the next waits its turn, ready, while
                    # the last one's results travel (chunks sharing one interpreter lock would end together)
                    turn = self.cpu_turn if _CPU_SHARE.get(name, 0.0) >= CPU_BOUND else None
                    async with turn if turn is not None else _NO_TURN:
                        done, failure = await run_in_thread(self._call_many, schema, calls, len(results), handle)
                    results += done
                    busy += time.perf_counter() - started
                    if failure is None:
                        continue
                    args, kwargs = calls[len(results)]
                    failed = await self._direct_failure(schema, delivery, args, kwargs, failure)
                    outcome: Optional[TaskOutcome] = failed
                    if failed.status == Status.RETRY:
                        outcome = await self._run_retrying(self._item(delivery, args, kwargs), handle, failed)
                else:
                    args, kwargs = calls[len(results)]
                    short = _short(name)
                    outcome = None
                    if direct and schema is not None:
                        outcome = await self._call_directly(schema, delivery, args, kwargs)
                    if outcome is None or outcome.status == Status.RETRY:
                        self._inline = short
                        try:
                            outcome = await self._run_retrying(self._item(delivery, args, kwargs), handle, outcome)
                        finally:
                            self._inline = False
                assert outcome is not None
                took = time.perf_counter() - started
                _note_call(name, took)
                results.append((outcome.status, outcome.returning, outcome.traceback))
                busy += took
                since_turn += took
                if since_turn >= TURN_EVERY:
                    since_turn = 0.0
                    await anyio.sleep(0)  # heartbeats and the other slots get a turn
        results.extend([(Status.CANCEL.value, None, None)] * (len(calls) - len(results)))
        status = Status.CANCEL if handle.reason is not None else Status.SUCCESS
        return TaskOutcome(envelope.uuid, delivery.attempt, status, pack_chunk_results(results), None, time.time(),
                           {"cancel_reason": handle.reason} if handle.reason is not None
                           else {"chunk_seconds": busy, "chunk_cpu_seconds": handle.cpu_seconds})

    async def _run_directly(self, schema: TaskExecSchema, delivery: Delivery,
                            handle: RunningTask) -> Optional[TaskOutcome]:
        """A task nothing touches, called in the loop turn that received it (None: its arguments do not
        decode; the full path reports that)."""
        try:
            args, kwargs = unpack_arguments(delivery.envelope.payload)
        except DecodeError:
            return None
        started = time.perf_counter()
        with handle.scope:
            outcome = await self._call_directly(schema, delivery, args, kwargs)
        if handle.scope.cancelled_caught:
            return self._cancelled(delivery, handle.reason or f"{schema.name}.cancel")
        if not schema.awaiting:
            _note_call(schema.name, time.perf_counter() - started)
        return outcome

    def _callable_directly(self, schema: TaskExecSchema) -> bool:
        known = self._direct.get(schema.name)
        if known is None:
            known = self._direct[schema.name] = callable_directly(self.served, schema, self._events)
        return known

    async def _call_directly(self, schema: TaskExecSchema, chunk: Delivery, args: list[Any],
                             kwargs: dict[str, Any]) -> TaskOutcome:
        """One call without an executor (inside the caller's cancel scope), of a chunk or a task of its
        own (``chunk`` is then its delivery); a failure is planned (retry or error) as in :meth:`run`."""
        try:
            value = schema.func(*args, **kwargs)
            if schema.awaiting:
                value = await value
            return TaskOutcome(chunk.envelope.uuid, chunk.attempt, Status.SUCCESS, self._pack(schema, value), None,
                               time.time(), _NO_EXTRA)
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            return await self._direct_failure(schema, chunk, args, kwargs, exc)

    def _call_many(self, schema: TaskExecSchema, calls: list[tuple[list[Any], dict[str, Any]]], start: int,
                   handle: RunningTask) -> tuple[list[tuple[str, Optional[bytes], Optional[str]]],
                                                 Optional[BaseException]]:
        """In a thread: calls of a chunk from ``start`` on, until one fails (returned with its error) or
        the chunk is cancelled."""
        done: list[tuple[str, Optional[bytes], Optional[str]]] = []
        success, func = Status.SUCCESS.value, schema.func
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            for args, kwargs in calls[start:]:
                if handle.reason is not None:
                    break
                try:
                    done.append((success, self._pack(schema, func(*args, **kwargs)), None))
                except (Exception, SystemExit, KeyboardInterrupt) as exc:
                    return done, exc
            return done, None
        finally:
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            handle.cpu_seconds += cpu
            if wall > 0.002:  # long enough to tell
                known = _CPU_SHARE.get(schema.name)
                share = cpu / wall
                _CPU_SHARE[schema.name] = share if known is None else 0.7 * known + 0.3 * share

    async def _direct_failure(self, schema: TaskExecSchema, chunk: Delivery, args: list[Any], kwargs: dict[str, Any],
                              exc: BaseException) -> TaskOutcome:
        """The outcome of a direct call that raised ``exc``: cancelled, or planned as :meth:`run` plans it."""
        if isinstance(exc, TaskCancelError):
            return self._cancelled(self._item(chunk, args, kwargs), str(exc) or f"{schema.name}.cancel")
        if isinstance(exc, Exception):
            call = self._item(chunk, args, kwargs)
            envelope = call.envelope
            task_broker = TaskPrioritySchema(envelope.priority, UUID(bytes=envelope.uuid), schema.name, args, kwargs,
                                             envelope.created_at, time.time(), call.attempt,
                                             envelope.metadata.get("retry"))
            return await self._failed(call, schema, task_broker, exc)
        try:  # SystemExit or KeyboardInterrupt raised by the task's code: it ends, not the process
            raise TaskExitError(schema.name, exc) from exc
        except TaskExitError as exit_error:
            return await self._failed(self._item(chunk, args, kwargs), None, None, exit_error)

    @staticmethod
    def _item(chunk: Delivery, args: list[Any], kwargs: dict[str, Any]) -> Delivery:
        """One call of a chunk as a delivery of its own (the chunk's uuid, without the chunk mark)."""
        envelope = chunk.envelope
        payload = pack_value([args, kwargs])
        metadata = {k: v for k, v in envelope.metadata.items() if k != CHUNK}
        return Delivery(replace(envelope, payload=payload, metadata=metadata), chunk.attempt)

    async def _run_retrying(self, delivery: Delivery, handle: RunningTask,
                            outcome: Optional[TaskOutcome] = None) -> TaskOutcome:
        """One call of a chunk (``outcome``: of its first run, if it ran), run again here while it asks
        to be retried."""
        while True:
            if outcome is None:
                item = handle.current = RunningTask()
                try:
                    outcome = await self.run(delivery, item)
                finally:
                    handle.current = None
            remaining = outcome.extra.get("retry")
            if outcome.status != Status.RETRY or not isinstance(remaining, int) or handle.reason is not None:
                return outcome
            await anyio.sleep(float(outcome.extra.get("retry_delay") or 0.0))
            envelope = delivery.envelope
            delivery = Delivery(replace(envelope, metadata={**envelope.metadata, "retry": remaining - 1}),
                                delivery.attempt)
            outcome = None

    async def _before(self, schema: TaskExecSchema, task_broker: TaskPrioritySchema
                      ) -> tuple[TaskExecSchema, TaskPrioritySchema, dict[str, Any]]:
        """The worker triggers before a run: plugins may change the task, its delivery (arguments
        included) and add fields to its record. A failing plugin fails the task."""
        served, worker, plugins = self.served, self.served.worker, self._plugins
        answer: dict[str, Any] = {}
        if listened(served.broker.plugins, "broker_add_worker"):
            answer = await fire(served.broker.plugins, "broker_add_worker", strict=True, broker=served.broker,
                                worker=worker, task_name=task_broker.name, uuid=task_broker.uuid,
                                priority=task_broker.priority, args=task_broker.args, kw=task_broker.kwargs,
                                created_at=task_broker.created_at)
        answer.update(await maybe_await(worker.add(task_broker.name, task_broker.uuid, task_broker.priority,
                                                   task_broker.created_at, answer.get("args", task_broker.args),
                                                   answer.get("kw", task_broker.kwargs))) or {})
        if "args" in answer or "kw" in answer or "priority" in answer:
            task_broker = replace(task_broker, args=list(answer.get("args", task_broker.args)),
                                  kwargs=dict(answer.get("kw", task_broker.kwargs)),
                                  priority=answer.get("priority", task_broker.priority))
        if listened(plugins, "worker_run_task_before"):
            answer = await fire(plugins, "worker_run_task_before", strict=True, worker=worker,
                                task_func=schema, task_broker=task_broker)
            schema, task_broker = answer.get("task_func", schema), answer.get("task_broker", task_broker)
        if not listened(plugins, "worker_execute_before"):
            return schema, task_broker, {}
        process = TaskStatusProcessSchema(task_name=schema.name, priority=task_broker.priority,
                                          args=task_broker.args, kwargs=task_broker.kwargs,
                                          created_at=task_broker.created_at)
        answer = await fire(plugins, "worker_execute_before", strict=True, worker=worker,
                            task_broker=task_broker, task_func=schema, model=process)
        return schema, task_broker, extra_fields(answer.get("model", process), type(process))

    async def _after(self, schema: TaskExecSchema, task_broker: TaskPrioritySchema,
                     outcome: TaskOutcome) -> dict[str, Any]:
        """The worker triggers after a run: plugins may add fields to the record (errors are logged)."""
        plugins, broker = self._plugins, self.served.broker
        if not (listened(plugins, "worker_remove_finished_task") or listened(plugins, "worker_execute_after")
                or listened(broker.plugins, "broker_remove_finished_task")):
            return {}
        model = _record_model(schema, task_broker, outcome)
        answer = await fire(plugins, "worker_remove_finished_task", worker=self.served.worker,
                            broker=broker, task_func=schema, task_broker=task_broker, model=model)
        final = answer.get("model", model)
        if listened(broker.plugins, "broker_remove_finished_task"):
            answer = await fire(broker.plugins, "broker_remove_finished_task", broker=broker,
                                storage=broker.storage, model=final)
            final = answer.get("model", final)
        await fire(plugins, "worker_execute_after", task_func=schema, task_broker=task_broker, model=final)
        return extra_fields(final, type(model))

    def _pack(self, schema: TaskExecSchema, result: Any) -> bytes:
        if schema.decode is not None and isinstance(result, str):
            result = _json_or_text(result)
        try:
            packed = pack_result(schema.name, result)
        except UnserializableResultError:
            if schema.decode is None:
                raise
            # decode= made something msgpack cannot carry: keep it readable, as its text
            log.warning("task %s: decode= returned a %s; storing its text", schema.name, type(result).__name__)
            packed = pack_value(str(result))
        limit = self.message_limit()
        if len(packed) > limit - RESULT_ROOM:
            raise MessageTooLargeError(f"the result of task {schema.name!r}", len(packed), limit)
        return packed

    def _cancelled(self, delivery: Delivery, reason: str) -> TaskOutcome:
        log.info("task %s %s cancelled: %s", delivery.envelope.task_name,
                 UUID(bytes=delivery.envelope.uuid), reason)
        return TaskOutcome(delivery.envelope.uuid, delivery.attempt, Status.CANCEL, None, None, time.time(),
                           {"cancel_reason": reason})

    async def _failed(self, delivery: Delivery, schema: Optional[TaskExecSchema],
                      task_broker: Optional[TaskPrioritySchema], exc: Exception) -> TaskOutcome:
        envelope = delivery.envelope
        name, uuid = envelope.task_name, UUID(bytes=envelope.uuid)
        text = "".join(traceback.format_exception_only(exc) if isinstance(exc, UnknownTaskError)
                       else traceback.format_exception(exc))
        extra: dict[str, Any] = {}
        if schema is not None and task_broker is not None and not isinstance(exc, TaskPluginTriggerError):
            plan = await fire(self._plugins, "worker_task_error_retry", broker=self.served.broker,
                              task_func=schema, task_broker=task_broker, trace=text, exc=exc)
            remaining, delay = plan.get("retry"), float(plan.get("delay") or 0.0)
            if isinstance(remaining, int) and not isinstance(remaining, bool):
                if remaining > 0:
                    log.warning("task %s %s failed (%s: %s); retrying, %d run(s) left%s", name, uuid,
                                type(exc).__name__, exc, remaining, f" in {delay:g} s" if delay else "")
                    return TaskOutcome(envelope.uuid, delivery.attempt, Status.RETRY, None, text, time.time(),
                                       {"retry": remaining, "retry_delay": delay})
                extra["retry"] = 0
        log.error("task %s %s failed: %s: %s", name, uuid, type(exc).__name__, exc)
        return TaskOutcome(envelope.uuid, delivery.attempt, Status.ERROR, None, text, time.time(), extra)

    def _watch_abandoned_thread(self, name: str, uuid: UUID, executor: Any) -> None:
        """A plain ``def`` task that timed out or was cancelled may still run in its thread."""
        done = getattr(executor, "_thread_done", None)
        if done is not None and not done.is_set():
            self.watch_thread(name, uuid, done)

    async def _fire(self, event: str, schema: TaskExecSchema, task_broker: TaskPrioritySchema,
                    **extra: Any) -> None:
        if event in self._events:
            await self.served.events.fire_async(event, worker=self.served.worker, task_func=schema,
                                                task_broker=task_broker, **extra)


def _record_model(schema: TaskExecSchema, task_broker: TaskPrioritySchema, outcome: TaskOutcome) -> Any:
    """The finished task as upstream's plugins see a record."""
    common: dict[str, Any] = dict(task_name=schema.name, priority=task_broker.priority, args=task_broker.args,
                                  kwargs=task_broker.kwargs, created_at=task_broker.created_at,
                                  updated_at=outcome.finished_at)
    if outcome.status == Status.SUCCESS:
        returning = "" if outcome.returning is None else json.dumps(unpack_value(outcome.returning), default=str)
        return TaskStatusSuccessSchema(**common, returning=returning)
    if outcome.status == Status.CANCEL:
        return TaskStatusCancelSchema(**common, cancel_reason=str(outcome.extra.get("cancel_reason", "")))
    return TaskStatusErrorSchema(**common, traceback=outcome.traceback or "")


def _pack_step(value: Any) -> bytes:
    try:
        return pack_value(value)
    except Exception:
        return pack_value(repr(value))


def _json_or_text(text: str) -> Any:
    """What a ``decode=`` that returned text stored: the value JSON text encodes (upstream reads
    it back with ``json.loads``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _short(name: str) -> bool:
    """Whether calls of plain ``def`` task ``name`` are known to take well under ``INLINE_BELOW``
    seconds (they then run on the loop: a thread hop would cost more than the call)."""
    return _CALL_SECONDS.get(name, INLINE_BELOW) < INLINE_BELOW


def _note_call(name: str, took: float) -> None:
    known = _CALL_SECONDS.get(name)
    # clipped: a call preempted on a busy machine must not make a tiny task look long for long
    _CALL_SECONDS[name] = took if known is None else 0.9 * known + 0.1 * min(took, 2 * INLINE_BELOW)
