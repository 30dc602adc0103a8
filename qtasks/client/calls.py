"""``PendingCall``: a request described once, and the one place both API faces wait on it.

``start(broker)`` sends the request and returns a ``concurrent.futures.Future`` of its
wire-level answer; ``convert`` turns that into what the API returns, on the caller's
thread. The sync face calls :meth:`result`: the request goes out on the calling
thread's own connection, which that thread drives while it waits. The async face
awaits :meth:`wait_async`: the request goes through the shared I/O thread.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

from qtasks.client.lending import current_lender
from qtasks.exc import BrokerUnavailableError, TaskLostError

if TYPE_CHECKING:
    from qtasks.brokers.base import BaseBroker, Requests

T = TypeVar("T")

_SAFETY_MARGIN = 5.0
"""The connection bounds every wait itself; this only guards against it failing to."""


class PendingCall(Generic[T]):
    __slots__ = ("broker", "start", "convert", "limit", "waits_for_tasks", "convert_lost")

    def __init__(self, broker: BaseBroker, start: Callable[[Requests], Future[Any]],
                 convert: Callable[[Any], T], limit: float, *, waits_for_tasks: bool = False,
                 convert_lost: Callable[[list[Any]], list[Any]] | None = None) -> None:
        self.broker = broker
        self.start = start
        self.convert = convert
        self.limit = limit + _SAFETY_MARGIN
        self.waits_for_tasks = waits_for_tasks
        """Waiting for other tasks to run: inside a task, its slot is lent meanwhile."""
        self.convert_lost = convert_lost
        """Turns the records a TaskLostError carries into what the API returns (Task objects)."""

    def _lost(self, error: TaskLostError) -> TaskLostError:
        if self.convert_lost is not None and error.results:
            error.results = self.convert_lost(error.results)
        return error

    def _lending(self) -> Any:
        lender = current_lender.get() if self.waits_for_tasks else None
        return lender.lent() if lender is not None else nullcontext()

    def result(self) -> T:
        channel = self.broker.blocking()
        future = self.start(channel)
        drive = getattr(channel, "drive", None)
        try:
            with self._lending():
                if drive is not None:
                    drive(future, self.limit)
                value = future.result(0 if drive is not None else self.limit)
        except FutureTimeout:
            raise BrokerUnavailableError(self.broker.url, self.limit) from None
        except TaskLostError as error:
            raise self._lost(error) from None
        return self.convert(value)

    async def wait_async(self) -> T:
        future = self.start(self.broker)
        try:
            with self._lending():
                value = await asyncio.wait_for(asyncio.wrap_future(future), self.limit)
        except asyncio.TimeoutError:
            raise BrokerUnavailableError(self.broker.url, self.limit) from None
        except TaskLostError as error:
            raise self._lost(error) from None
        return self.convert(value)
