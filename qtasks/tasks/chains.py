"""Chains: run deferred task calls one after another, each given the previous result.

``chain(add(2, 2), add(4), add(8))``: every call waits for its task (its own ``timeout``,
else the chain's); from the second on, the previous task's ``returning`` is appended
as the last positional argument. An unbound call (no task object) yields None.
"""

from __future__ import annotations

from typing import Any, Optional

from qtasks.tasks.objects import AsyncTaskCls, BaseTaskCls, SyncTaskCls
from qtasks.tasks.record import Task

_FIRST = object()


def _next_call(call: BaseTaskCls[Any], previous: Any,
               timeout: float) -> Optional[tuple[Any, tuple[Any, ...], dict[str, Any]]]:
    """(task object, args, keyword arguments) of ``call``'s turn; None when it is unbound."""
    if call._task_deco is None:
        return None
    args = tuple(call.args) if previous is _FIRST else (*call.args, previous)
    kwargs = dict(call.kwargs, task_name=call.task_name, priority=call.priority,
                  timeout=call.timeout if call.timeout is not None else timeout)
    return call._task_deco, args, kwargs


def _returning(task: Optional[Task[Any]]) -> Any:
    return None if task is None else task.returning


class AsyncChain:
    def __init__(self, *calls: AsyncTaskCls[Any]) -> None:
        self.calls = calls

    async def get(self, timeout: float = 50.0) -> list[Optional[Task[Any]]]:
        results: list[Optional[Task[Any]]] = []
        previous: Any = _FIRST
        for call in self.calls:
            turn = _next_call(call, previous, timeout)
            task = None
            if turn is not None:
                deco, args, kwargs = turn
                task = await deco.add_task(*args, **kwargs)
            results.append(task)
            previous = _returning(task)
        return results


class SyncChain:
    def __init__(self, *calls: SyncTaskCls[Any]) -> None:
        self.calls = calls

    def get(self, timeout: float = 50.0) -> list[Optional[Task[Any]]]:
        results: list[Optional[Task[Any]]] = []
        previous: Any = _FIRST
        for call in self.calls:
            turn = _next_call(call, previous, timeout)
            task = None
            if turn is not None:
                deco, args, kwargs = turn
                task = deco.add_task(*args, **kwargs)
            results.append(task)
            previous = _returning(task)
        return results


class AsyncTaskUtils:
    @staticmethod
    def chain(*task_cls: AsyncTaskCls[Any]) -> AsyncChain:
        """``await AsyncTaskUtils.chain(add(2, 2), add(4), add(8)).get()`` → results 4, 8, 16."""
        return AsyncChain(*task_cls)


class SyncTaskUtils:
    @staticmethod
    def chain(*task_cls: SyncTaskCls[Any]) -> SyncChain:
        """``SyncTaskUtils.chain(add(2, 2), add(4), add(8)).get()`` → results 4, 8, 16."""
        return SyncChain(*task_cls)
