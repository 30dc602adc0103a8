"""Running blocking code off the worker's event loop."""

from __future__ import annotations

import asyncio
import contextvars
from functools import partial
from typing import Any, Callable


async def run_in_thread(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``func(*args, **kwargs)`` in the worker process's task thread pool, context variables included.

    The pool is the loop's default executor: the worker actor installs one thread per slot.
    """
    call = partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(None, call)
