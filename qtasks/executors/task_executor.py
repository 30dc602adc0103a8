"""The default executor: ``async def`` tasks on the worker's event loop, plain ``def``
tasks in a worker thread (so a blocking function never stalls the loop), and generator
tasks driven step by step.

A generator task's every yielded value goes through ``generate_handler`` (sync or async);
what the handler returns is sent back into the generator as the value of its ``yield``,
and reported to the broker as a step. The task's result is what the generator returns,
or, when it returns nothing, the list of handled values (upstream's behaviour).

``max_time`` bounds the whole call. An async task is cancelled when it runs out; a plain
``def`` task's thread cannot be stopped, so the task fails on time and the worker is told
(``TaskTimeLimitError.thread_done``) to recycle itself if the thread never comes back.
"""

from __future__ import annotations

import inspect
import os
import threading
import time
from typing import Any, Awaitable, Callable, Optional

import anyio

from qtasks.exc import TaskTimeLimitError
from qtasks.executors.base import BaseTaskExecutor
from qtasks.executors.threads import leave_if_forked, run_in_thread

Step = Callable[[Any], Awaitable[tuple[bool, Any]]]


class AsyncTaskExecutor(BaseTaskExecutor):
    _thread_done: Optional[threading.Event] = None

    async def run_task(self) -> Any:
        max_time = self.task_func.max_time
        if max_time is None:
            return await self._call()
        with anyio.move_on_after(max_time):
            return await self._call()
        raise TaskTimeLimitError(self.task_func.name, max_time, self._thread_done)

    async def _call(self) -> Any:
        pid = os.getpid()
        try:
            return await self._call_function()
        finally:
            leave_if_forked(pid)

    async def _call_function(self) -> Any:
        func, args, kwargs = self.task_func.func, self._args, self._kwargs
        generating = self.task_func.generating
        if generating == "async":
            generator = func(*args, **kwargs)
            try:
                return await self._drive(lambda sent: _advance_async(generator, sent))
            finally:
                with anyio.CancelScope(shield=True):
                    await generator.aclose()
        if generating == "sync":
            generator = func(*args, **kwargs)
            try:
                return await self._drive(lambda sent: self._in_thread(_advance, generator, sent))
            finally:
                generator.close()
        if self.task_func.awaiting:
            return await func(*args, **kwargs)
        return await self._in_thread(func, *args, **kwargs)

    async def _drive(self, step: Step) -> Any:
        handler = self.task_func.generate_handler
        handled_values: list[Any] = []
        sent: Any = None
        while True:
            finished, value = await step(sent)
            if finished:
                return handled_values if value is None else value
            sent = handler(value) if handler is not None else value
            if inspect.isawaitable(sent):
                sent = await sent
            if self.step_reporter is not None:
                self.step_reporter(len(handled_values), sent)
            handled_values.append(sent)

    async def _in_thread(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.inline:
            return func(*args, **kwargs)
        done = self._thread_done = threading.Event()

        def call() -> Any:
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.call_seconds = time.perf_counter() - started
                done.set()

        return await run_in_thread(call)


def _advance(generator: Any, sent: Any) -> tuple[bool, Any]:
    """One step of a sync generator, as a value: StopIteration cannot cross a Future."""
    try:
        return False, generator.send(sent)
    except StopIteration as stop:
        return True, stop.value


async def _advance_async(generator: Any, sent: Any) -> tuple[bool, Any]:
    try:
        return False, await generator.asend(sent)
    except StopAsyncIteration:
        return True, None
