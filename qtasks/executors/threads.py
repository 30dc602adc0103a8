"""Running blocking code off the worker's event loop, and keeping forked copies of a worker inert."""

from __future__ import annotations

import asyncio
import contextvars
import os
from typing import Any, Callable


def leave_if_forked(pid: int) -> None:
    """Task code that called ``os.fork()`` returns into worker code in both processes: the child,
    a copy of the worker holding its sockets and threads' state, must not carry on as one."""
    if os.getpid() != pid:
        os._exit(0)


async def run_in_thread(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``func(*args, **kwargs)`` in the worker process's task thread pool, context variables included.

    The pool is the loop's default executor: the worker actor installs one thread per slot.
    """
    context = contextvars.copy_context()
    pid = os.getpid()

    def call() -> Any:
        try:
            return context.run(func, *args, **kwargs)
        finally:
            leave_if_forked(pid)

    return await asyncio.get_running_loop().run_in_executor(None, call)
