"""The dashboard's way to the broker: blocking OpsClient calls, run off the event loop.

A ZeroMQ socket must never be used by two threads at once, and an OpsClient holds sockets.
So the calls go to a small pool of threads of our own, and each thread makes its own client
the first time it needs one and keeps it (a thread runs one call at a time, so its client is
never shared). A client whose broker did not answer is closed and made again on the next
call: after a time-out its sockets may hold a request nobody will read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, Protocol

from qtasks.exc import BrokerUnavailableError

logger = logging.getLogger(__name__)


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
    """``await gateway.call("status")`` runs ``client.status()`` in a pool thread with that thread's client."""

    def __init__(self, factory: Callable[[], OpsClientLike], threads: int = 2) -> None:
        self._factory = factory
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qtasks-dashboard-broker")
        self._local = threading.local()
        self._clients: list[OpsClientLike] = []
        self._lock = threading.Lock()  # guards _clients only; no client is used under it
        self._closed = False

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(self._run, method, args, kwargs))

    def _run(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        client = self._client()
        try:
            return getattr(client, method)(*args, **kwargs)
        except BrokerUnavailableError:
            self._discard(client)
            raise

    def _client(self) -> OpsClientLike:
        client: OpsClientLike | None = getattr(self._local, "client", None)
        if client is None:
            client = self._factory()
            with self._lock:
                if self._closed:
                    client.close()
                    raise RuntimeError("the dashboard is shutting down")
                self._clients.append(client)
            self._local.client = client
        return client

    def _discard(self, client: OpsClientLike) -> None:
        self._local.client = None
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        client.close()

    def close(self) -> None:
        """Wait for running calls, then close every thread's client (no thread uses them any more)."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except Exception:  # closing is best effort: the process is ending anyway
                logger.exception("closing a broker client failed")
