"""``PendingCall``: a request in flight, and the one place both API faces wait on it.

The I/O thread resolves a ``concurrent.futures.Future`` with wire-level values;
``convert`` turns them into what the API returns, on the caller's thread, so
unpacking results never slows the I/O thread. The sync face calls
:meth:`result`, the async face awaits :meth:`wait_async`.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from contextlib import nullcontext
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable, Generic, TypeVar

from qtasks.exc import BrokerUnavailableError
from qtasks.worker.lending import current_lender

T = TypeVar("T")

_SAFETY_MARGIN = 5.0
"""The connection bounds every wait itself; this only guards against its I/O thread dying."""


class PendingCall(Generic[T]):
    __slots__ = ("future", "convert", "limit", "url", "waits_for_tasks")

    def __init__(self, future: Future[Any], convert: Callable[[Any], T], limit: float, url: str,
                 *, waits_for_tasks: bool = False) -> None:
        self.future = future
        self.convert = convert
        self.limit = limit + _SAFETY_MARGIN
        self.url = url
        self.waits_for_tasks = waits_for_tasks
        """Waiting for other tasks to run: inside a task, its slot is lent meanwhile."""

    def _lending(self) -> Any:
        lender = current_lender.get() if self.waits_for_tasks else None
        return lender.lent() if lender is not None else nullcontext()

    def result(self) -> T:
        try:
            with self._lending():
                value = self.future.result(self.limit)
        except FutureTimeout:
            raise BrokerUnavailableError(self.url, self.limit) from None
        return self.convert(value)

    async def wait_async(self) -> T:
        try:
            with self._lending():
                value = await asyncio.wait_for(asyncio.wrap_future(self.future), self.limit)
        except asyncio.TimeoutError:
            raise BrokerUnavailableError(self.url, self.limit) from None
        return self.convert(value)
