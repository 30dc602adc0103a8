"""The default broker component: a connection to a QTasks broker over ZeroMQ."""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from qtasks.brokers.base import BaseBroker, Drive
from qtasks.client.drivers import BlockingChannel, Channel, ThreadChannel
from qtasks.protocol import TaskEnvelope, TaskSnapshot
from qtasks.security import CURVE_SETTINGS as _CURVE_SETTINGS
from qtasks.security import ClientKeys, client_keys, uses_curve
from qtasks.urls import resolve_broker_url

PIPELINED_BYTES = 64 * 1024
"""Arguments up to this size are submitted without waiting; larger ones wait for the broker to take
them (the round trip is little next to the transfer, and a refusal is raised by the call itself)."""


class ZmqBroker(BaseBroker):
    """Talks to ``url`` (default: ``$QTASKS_BROKER_URL``, else ``tcp://127.0.0.1:5555``).

    The connection and its I/O thread start on first use, once per process: an app
    built before ``fork`` opens a fresh connection in each child, never sharing sockets.
    With ``config.curve_*`` set, every connection is a CURVE client of the broker
    (:mod:`qtasks.security`); the keys are read when a connection opens, so a bad key file
    fails the first request with a :class:`~qtasks.exc.KeyFileError` naming it.
    """

    def __init__(self, name: str | None = None, url: str | None = None, storage: Any = None,
                 log: Any = None, config: Any = None, events: Any = None, *,
                 connect_timeout: float | None = None) -> None:
        super().__init__(name, log, config, events)
        self.url = resolve_broker_url(url or self.config.broker_url)
        self.storage = storage
        self._fixed_timeout = connect_timeout
        self.connect_timeout = self.config.broker_connect_timeout if connect_timeout is None else connect_timeout
        self.config.subscribe(self._config_changed)
        self._connection: ThreadChannel | None = None
        self._opening = threading.Lock()
        self._own = threading.local()
        """Each thread's own blocking connection (see :meth:`blocking`)."""
        self._curve: ClientKeys | None = None
        self._curve_read = False
        """``_curve`` holds the keys of the current settings (cleared when they change)."""

    @property
    def curve_keys(self) -> ClientKeys | None:
        """This app's CURVE keys (None: no CURVE); raises ``KeyFileError``/``ConfigError`` for bad settings."""
        if not self._curve_read:
            self._curve = client_keys(*(getattr(self.config, name, None) for name in _CURVE_SETTINGS))
            self._curve_read = True
        return self._curve

    @property
    def uses_curve(self) -> bool:
        """Whether CURVE keys are configured (without reading them)."""
        return uses_curve(self.config)

    def update_config(self, config: Any) -> None:
        before = [getattr(self.config, name, None) for name in _CURVE_SETTINGS]
        super().update_config(config)
        if self._fixed_timeout is None:
            self.connect_timeout = config.broker_connect_timeout
        config.subscribe(self._config_changed)
        self._curve_read = False
        if before != [getattr(config, name, None) for name in _CURVE_SETTINGS]:
            self.close()  # the next request opens a connection with the new keys

    def _config_changed(self, config: Any, key: str, value: Any) -> None:
        if config is not self.config:
            return  # a config this broker no longer uses
        if key == "broker_url" and value:
            self.use_url(value)
        elif key in _CURVE_SETTINGS:
            self._curve_read = False
            self.close()  # the next request opens a connection with the new keys
        elif key == "broker_connect_timeout" and self._fixed_timeout is None:
            self.connect_timeout = value
            for connection in (self._connection, getattr(self._own, "connection", None)):
                if connection is not None:
                    connection.session.connect_timeout = value  # read when the next request is sent

    @property
    def connection(self) -> ThreadChannel:
        connection = self._connection
        if connection is None or connection.pid != os.getpid() or connection.closed:
            if connection is not None and connection.pid != os.getpid():
                self._opening = threading.Lock()  # a lock inherited across fork may be held
            with self._opening:
                connection = self._connection
                if connection is None or connection.pid != os.getpid() or connection.closed:
                    connection = self._connection = ThreadChannel(
                        self.url, connect_timeout=self.connect_timeout, curve=self.curve_keys)
        return connection

    @contextmanager
    def blocking(self) -> Iterator[Drive]:
        """Requests made inside go through this thread's own connection, which the blocked caller
        drives itself: no I/O-thread hand-off on the way out or back (about two context switches
        less per call)."""
        connection: BlockingChannel | None = getattr(self._own, "connection", None)
        curve = self.curve_keys
        if (connection is None or connection.pid != os.getpid() or connection.closed
                or connection.curve is not curve):
            if connection is not None and connection.pid == os.getpid():
                connection.close()  # closed from another thread (or other keys): its owner finishes the job
            connection = self._own.connection = BlockingChannel(
                self.url, connect_timeout=self.connect_timeout, curve=curve)
        self._own.blocked = connection
        try:
            yield connection.drive
        finally:
            self._own.blocked = None

    def _requests(self) -> Channel:
        """Where a request goes: the blocked thread's own connection, else the shared one."""
        shared = self._connection
        blocked: BlockingChannel | None = getattr(self._own, "blocked", None)
        if shared is not None and shared.pid == os.getpid():
            if blocked is not None and shared.unsettled:
                # submits still on their way through the other connection are taken first: a request
                # right after add_task (a cancel, a get) must find the task
                shared.settle(self.connect_timeout)
            shared.raise_deferred()
        return blocked if blocked is not None else self.connection

    @property
    def max_message_size(self) -> int | None:
        for connection in (self._connection, getattr(self._own, "connection", None)):
            if connection is not None and connection.max_message_size is not None:
                return connection.max_message_size
        return None

    def use_url(self, url: str) -> None:
        if url != self.url:
            self.close()
            self.url = resolve_broker_url(url)

    def submit(self, envelopes: list[TaskEnvelope], wait: float | None = None) -> Future[Any]:
        return self._requests().submit(envelopes, wait)

    def submit_pipelined(self, envelopes: list[TaskEnvelope]) -> Future[Any] | None:
        """Through the shared connection's I/O thread, which sends the submits queued meanwhile as one
        message, once a broker answered here (so a first submit to an absent broker fails at once)."""
        if self.max_message_size is None or sum(len(e.payload) for e in envelopes) > PIPELINED_BYTES:
            return None
        return self.connection.submit_pipelined(envelopes)

    def wait(self, uuids: list[bytes], timeout: float) -> Future[list[TaskSnapshot | None]]:
        shared = self._connection
        if shared is not None and shared.pid == os.getpid() and not shared.closed and shared.knows(uuids):
            return shared.wait(uuids, timeout)  # their results are pushed there
        return self._requests().wait(uuids, timeout)

    def get(self, uuids: list[bytes]) -> Future[list[TaskSnapshot | None]]:
        return self._requests().get(uuids)

    def cancel(self, uuids: list[bytes], reason: str) -> Future[list[TaskSnapshot | None]]:
        return self._requests().cancel(uuids, reason)

    def watch(self, uuid: bytes, timeout: float, on_item: Callable[[tuple[Any, ...]], None]) -> None:
        self._requests().watch(uuid, timeout, on_item)

    def stats(self) -> Future[dict[str, Any]]:
        return self._requests().stats()

    def ping(self) -> Future[bytes]:
        return self._requests().ping()

    def flush(self, app: str) -> Future[int]:
        return self._requests().flush(app)

    def dead(self, op: str, app: str | None, task_name: str | None, uuids: list[bytes],
             limit: int | None) -> Future[Any]:
        return self._requests().dead(op, app, task_name, uuids, limit)

    def state(self, namespace: tuple[str, str, str], op: str, args: bytes) -> Future[bytes]:
        return self._requests().state(namespace, op, args)

    def ops(self, op: str, args: dict[str, Any]) -> Future[Any]:
        """An operator's request (``qtasks.protocol.Ops``; ``qtasks.ops.client.OpsClient`` wraps them)."""
        return self._requests().ops(op, args)

    def close(self) -> None:
        """Close the shared connection and this thread's own (other threads' close on their next use)."""
        connection, self._connection = self._connection, None
        if connection is not None and connection.pid == os.getpid():
            connection.close()
        own = getattr(self._own, "connection", None)
        if own is not None and own.pid == os.getpid():
            own.close()
