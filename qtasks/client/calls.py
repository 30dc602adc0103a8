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
from typing import TYPE_CHECKING, Any, Callable, Generic, Sequence, TypeVar

from qtasks.client.lending import current_lender
from qtasks.exc import BrokerUnavailableError, TaskLostError
from qtasks.plugins.triggers import Plugins, fire, fire_sync

if TYPE_CHECKING:
    from qtasks.brokers.base import BaseBroker

T = TypeVar("T")

_SAFETY_MARGIN = 5.0
"""The connection bounds every wait itself; this only guards against it failing to."""


class Hook:
    """A plugin trigger fired around a call, the face's way (``fire_sync`` blocking, ``fire`` awaited):
    before the call is sent (``apply`` may change the call), or on its result (``apply`` returns the
    result to give instead)."""

    __slots__ = ("plugins", "name", "arguments", "apply")

    def __init__(self, plugins: Plugins, name: str, arguments: Callable[[Any], dict[str, Any]],
                 apply: Callable[[dict[str, Any], Any], Any]) -> None:
        self.plugins = plugins
        self.name = name
        self.arguments = arguments
        self.apply = apply

    def sync(self, value: Any) -> Any:
        return self.apply(fire_sync(self.plugins, self.name, **self.arguments(value)), value)

    async def async_(self, value: Any) -> Any:
        return self.apply(await fire(self.plugins, self.name, **self.arguments(value)), value)


class PendingCall(Generic[T]):
    __slots__ = ("broker", "start", "convert", "limit", "waits_for_tasks", "convert_lost", "before", "after",
                 "pipelined")

    def __init__(self, broker: BaseBroker, start: Callable[[BaseBroker], Future[Any]],
                 convert: Callable[[Any], T], limit: float, *, waits_for_tasks: bool = False,
                 convert_lost: Callable[[list[Any]], list[Any]] | None = None,
                 before: Sequence[Hook] = (), after: Sequence[Hook] = (),
                 pipelined: Callable[[BaseBroker], Future[Any] | None] | None = None) -> None:
        self.broker = broker
        self.start = start
        self.convert = convert
        self.limit = limit + _SAFETY_MARGIN
        self.waits_for_tasks = waits_for_tasks
        """Waiting for other tasks to run: inside a task, its slot is lent meanwhile."""
        self.convert_lost = convert_lost
        """Turns the records a TaskLostError carries into what the API returns (Task objects)."""
        self.before = before
        self.after = after
        self.pipelined = pipelined
        """Tried first: sends the request without waiting for its answer (None: it could not)."""

    def _lost(self, error: TaskLostError) -> TaskLostError:
        if self.convert_lost is not None and error.results:
            error.results = self.convert_lost(error.results)
        return error

    def _lending(self) -> Any:
        lender = current_lender.get() if self.waits_for_tasks else None
        return lender.lent() if lender is not None else nullcontext()

    def result(self) -> T:
        for hook in self.before:
            hook.sync(None)
        future = self._pipelined()
        drive = None
        if future is None:
            with self.broker.blocking() as drive:
                future = self.start(self.broker)
            if getattr(future, "elsewhere", False):
                drive = None  # the shared connection's I/O thread resolves it
        try:
            with self._lending():
                if drive is not None:
                    drive(future, self.limit)
                value = future.result(0 if drive is not None else self.limit)
        except FutureTimeout:
            raise unavailable(self.broker, self.limit) from None
        except TaskLostError as error:
            raise self._lost(error) from None
        converted = self.convert(value)
        for hook in self.after:
            converted = hook.sync(converted)
        return converted

    async def wait_async(self) -> T:
        for hook in self.before:
            await hook.async_(None)
        future = self._pipelined()
        if future is not None:
            return await self._sent(future)
        future = self.start(self.broker)
        try:
            with self._lending():
                value = await asyncio.wait_for(asyncio.wrap_future(future), self.limit)
        except asyncio.TimeoutError:
            raise unavailable(self.broker, self.limit) from None
        except TaskLostError as error:
            raise self._lost(error) from None
        converted = self.convert(value)
        for hook in self.after:
            converted = await hook.async_(converted)
        return converted


    def _pipelined(self) -> Future[Any] | None:
        """The request sent without waiting, as a future already resolved (None: it was not)."""
        if self.pipelined is None:
            return None
        sent = self.pipelined(self.broker)
        if sent is None:
            return None
        if sent.done() and sent.exception() is not None:  # refused before it left (too large ...)
            return sent
        return _SENT

    async def _sent(self, future: Future[Any]) -> T:
        converted = self.convert(future.result())
        for hook in self.after:
            converted = await hook.async_(converted)
        return converted


_SENT: Future[Any] = Future()
"""The answer of a request sent without waiting: resolved at once, shared by all of them."""
_SENT.set_result(None)


def unavailable(broker: Any, waited: float) -> BrokerUnavailableError:
    """The error for a broker that did not answer within ``waited`` seconds (it names the keys when
    the app uses CURVE: a broker refusing them stays silent)."""
    return BrokerUnavailableError(broker.url, waited, curve=bool(getattr(broker, "uses_curve", False)))
