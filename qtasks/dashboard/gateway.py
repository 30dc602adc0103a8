"""The dashboard's way to the broker: blocking OpsClient calls, run off the event loop.

A ZeroMQ socket must never be used by two threads at once, and an OpsClient's connection
belongs to the thread that uses it. So the gateway keeps a few threads of its own, each
with its own client for its whole life: calls wait in one queue, any free thread takes
the next one, and a thread closes its client itself when the gateway stops::

    event loop ── call("status") ──▶ jobs queue ──▶ thread 1 (client 1)
                ◀── future ────────               └▶ thread 2 (client 2)

A client whose broker did not answer is closed and made again on its thread's next call:
after a time-out its connection may still hold a request nobody will read.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, Optional, Protocol

from qtasks.exc import BrokerUnavailableError

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 30.0
"""Seconds ``close`` waits for each thread to finish its call and close its client."""

_Job = tuple[str, tuple[Any, ...], dict[str, Any], "Future[Any]"]


class OpsClientLike(Protocol):
    """What the dashboard uses of :class:`qtasks.ops.client.OpsClient`."""

    def status(self) -> dict[str, Any]: ...
    def tasks(self, *, status: str | None = None, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]: ...
    def inspect(self, uuid: str) -> dict[str, Any]: ...
    def cancel(self, uuid: str, reason: str | None = None) -> bool: ...
    def retry(self, uuid: str) -> str: ...
    def dead_letters(self, *, limit: int = 100) -> dict[str, Any]: ...
    def retry_all_dead(self) -> int: ...
    def close(self) -> None: ...


class BrokerGateway:
    """``await gateway.call("status")`` runs ``client.status()`` on one of ``threads`` threads, with its client."""

    def __init__(self, factory: Callable[[], OpsClientLike], threads: int = 2) -> None:
        self._factory = factory
        self._jobs: queue.SimpleQueue[Optional[_Job]] = queue.SimpleQueue()
        self._closed = False
        self._threads = [threading.Thread(target=self._serve, name=f"qtasks-dashboard-broker-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise RuntimeError("the dashboard is stopping: no more calls to the broker")
        future: Future[Any] = Future()
        self._jobs.put((method, args, kwargs, future))
        return await asyncio.wrap_future(future)

    def _serve(self) -> None:
        client: Optional[OpsClientLike] = None
        try:
            while (job := self._jobs.get()) is not None:
                method, args, kwargs, future = job
                if not future.set_running_or_notify_cancel():
                    continue  # its request went away while it waited
                try:
                    if client is None:
                        client = self._factory()
                    future.set_result(getattr(client, method)(*args, **kwargs))
                except BrokerUnavailableError as exc:
                    if client is not None:
                        self._close(client)
                        client = None
                    future.set_exception(exc)
                except Exception as exc:  # every error goes back to the request that asked
                    future.set_exception(exc)
        finally:
            if client is not None:
                self._close(client)

    @staticmethod
    def _close(client: OpsClientLike) -> None:
        try:
            client.close()
        except Exception:  # closing is best effort: a new client is made, or the process ends
            logger.exception("closing a broker client failed")

    def close(self) -> None:
        """Let queued calls finish, then each thread closes its own client and ends."""
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(STOP_TIMEOUT)
            if thread.is_alive():
                logger.warning("a broker call did not end within %s s; the dashboard stops without it",
                               STOP_TIMEOUT)
