"""Providing ``Depends`` values, and the process-wide scopes that keep them.

A provider is entered once per scope instance; what it needs to close goes on a
teardown stack, run newest first, shielded from cancellation, after success, error,
cancellation and time-out alike. Teardowns resume providers *without* an exception,
so the code after ``yield`` always runs (a provider can never swallow the task's
error either). Sync providers run in the task thread pool, async ones on the loop.

Scopes are per worker process: ``task`` lives for one execution (its own stack, so
concurrent tasks never close each other's values); ``worker``, ``broker``, ``storage``
and ``global_config`` values are created once per process, on first use, and closed
when the process stops gracefully.
"""

from __future__ import annotations

import asyncio
import inspect
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Callable

import anyio

from qtasks.executors.teardown import Teardown, close
from qtasks.executors.threads import run_in_thread
from qtasks.plugins.depends.class_depends import Depends
from qtasks.plugins.depends.enums.scope import ScopeEnum

PROCESS_SCOPES_CLOSE_ORDER = (ScopeEnum.BROKER.value, ScopeEnum.WORKER.value,
                              ScopeEnum.STORAGE.value, ScopeEnum.GLOBAL_CONFIG.value)
"""The order the components stop in, so the order their scopes close in."""


async def provide(provider: Callable[..., Any], teardowns: list[Teardown]) -> Any:
    """Call ``provider``, enter what it returns, and push what closes it onto ``teardowns``."""
    if inspect.isasyncgenfunction(provider):
        return await _enter_async(asynccontextmanager(provider)(), teardowns)
    if inspect.isgeneratorfunction(provider):
        return await _enter_sync(contextmanager(provider)(), teardowns)
    if inspect.iscoroutinefunction(provider):
        return await provider()
    target = inspect.unwrap(provider)
    builds_only = (inspect.isasyncgenfunction(target) or inspect.isgeneratorfunction(target)
                   or inspect.iscoroutinefunction(target))  # e.g. @asynccontextmanager: calling is cheap
    result = provider() if builds_only else await run_in_thread(provider)
    if hasattr(result, "__aenter__") and hasattr(result, "__aexit__"):
        return await _enter_async(result, teardowns)
    if hasattr(result, "__enter__") and hasattr(result, "__exit__"):
        return await _enter_sync(result, teardowns)
    if inspect.isawaitable(result):
        return await result
    return result


async def _enter_async(manager: Any, teardowns: list[Teardown]) -> Any:
    value = await manager.__aenter__()
    teardowns.append(lambda: manager.__aexit__(None, None, None))
    return value


async def _enter_sync(manager: Any, teardowns: list[Teardown]) -> Any:
    value = await run_in_thread(manager.__enter__)
    teardowns.append(lambda: run_in_thread(manager.__exit__, None, None, None))
    return value


class DependencyScopes:
    """The values of the process-wide scopes of one worker process: one per (scope, provider)."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, Callable[..., Any]], asyncio.Future[Any]] = {}
        self._teardowns: dict[str, list[Teardown]] = {}

    async def resolve(self, depends: Depends, task_teardowns: list[Teardown]) -> Any:
        if depends.scope == ScopeEnum.TASK.value:
            return await provide(depends.func, task_teardowns)
        key = (depends.scope, depends.func)
        pending = self._values.get(key)
        if pending is not None:  # made already, or being made by a concurrent task: share it
            return await asyncio.shield(pending)
        pending = self._values[key] = asyncio.get_running_loop().create_future()
        try:
            with anyio.CancelScope(shield=True):  # made once for everyone: not undone by one cancel
                value = await provide(depends.func, self._teardowns.setdefault(depends.scope, []))
        except Exception as exc:
            del self._values[key]  # a later task tries again
            pending.set_exception(exc)
            pending.exception()  # consumed here; tasks waiting on it get it too
            raise
        pending.set_result(value)
        return value

    async def close(self) -> None:
        """Close every process-wide scope, in the order the components stop."""
        for scope in PROCESS_SCOPES_CLOSE_ORDER:
            await close(self._teardowns.pop(scope, []), f"the {scope} scope")
        self._values.clear()
