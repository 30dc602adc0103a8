"""Closing what one execution opened, whatever its outcome.

An executor keeps a stack of teardowns (a plugin pushes one when it opens something for
the task, such as a task-scoped dependency); they run newest first when the execution
ends, shielded from cancellation, after success, error, cancellation and time-out alike.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import anyio

log = logging.getLogger("qtasks.worker")

Teardown = Callable[[], Awaitable[Any]]


async def close(teardowns: list[Teardown], owner: str) -> BaseException | None:
    """Run ``teardowns`` newest first, shielded from cancellation; returns the first failure."""
    if not teardowns:
        return None
    first: BaseException | None = None
    with anyio.CancelScope(shield=True):
        while teardowns:
            teardown = teardowns.pop()
            try:
                await teardown()
            except Exception as exc:
                log.error("closing a dependency of %s failed: %s: %s", owner, type(exc).__name__, exc,
                          exc_info=True)
                first = first or exc
    return first
