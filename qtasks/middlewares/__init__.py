"""Task middlewares: ``@app.task(middlewares_before=[...], middlewares_after=[...])`` and
``app.add_middleware(cls, position="before" | "after")``.

A middleware is built as ``cls(task_executor)`` and called (awaited when ``__call__`` is a
coroutine) once per execution; through ``task_executor`` it may read and change
``_args``, ``_kwargs`` (before) and ``_result`` (after)::

    class Double(TaskMiddleware):
        async def __call__(self):
            self.task_executor._result *= 2
"""

from qtasks.middlewares.base import BaseMiddleware
from qtasks.middlewares.task import TaskMiddleware

__all__ = ["BaseMiddleware", "TaskMiddleware"]
