"""Inert stand-ins for the components a ``TestConfig`` flag turns off: every call does nothing.

The broker stub answers every request at once as if nothing were stored (``add_task``
returns a ``new`` task that never runs, ``get`` returns None), so code under test that
talks to its app keeps running without a broker.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable, Iterable, Optional

import msgpack

from broker_daemon.records import TaskRecord
from broker_daemon.storage.base import Storage
from qtasks.brokers.base import BaseBroker
from qtasks.configs.base import BaseGlobalConfig
from qtasks.protocol import TaskEnvelope, TaskSnapshot
from qtasks.worker.base import BaseWorker


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


class TestBroker(BaseBroker):
    __test__ = False

    def __init__(self, name: Optional[str] = None, url: str = "inproc://qtasks-test-stub", **component: Any) -> None:
        super().__init__(name, **component)
        self.url = url
        self.connect_timeout = self.config.broker_connect_timeout
        self.storage: Any = None

    def submit(self, envelopes: list[TaskEnvelope], wait: Optional[float] = None) -> Future[Any]:
        return _done([None] * len(envelopes) if wait is not None else len(envelopes))

    def wait(self, uuids: list[bytes], timeout: float) -> Future[list[Optional[TaskSnapshot]]]:
        return _done([None] * len(uuids))

    def get(self, uuids: list[bytes]) -> Future[list[Optional[TaskSnapshot]]]:
        return _done([None] * len(uuids))

    def cancel(self, uuids: list[bytes], reason: str) -> Future[list[Optional[TaskSnapshot]]]:
        return _done([None] * len(uuids))

    def watch(self, uuid: bytes, timeout: float, on_item: Callable[[tuple[Any, ...]], None]) -> None:
        on_item(("end", None, None))

    def stats(self) -> Future[dict[str, Any]]:
        return _done({})

    def ping(self) -> Future[bytes]:
        return _done(b"")

    def flush(self, app: str) -> Future[int]:
        return _done(0)

    def dead(self, op: str, app: Optional[str], task_name: Optional[str], uuids: list[bytes],
             limit: Optional[int]) -> Future[Any]:
        return _done({"list": (0, []), "retry": [None] * len(uuids)}.get(op, 0))

    def state(self, namespace: tuple[str, str, str], op: str, args: bytes) -> Future[bytes]:
        return _done(msgpack.packb(None))

    def add(self, *args: Any, **kwargs: Any) -> None:
        """Upstream's name for storing a task: nothing is stored."""

    def update(self, **kwargs: Any) -> None:
        pass


class TestStorage(Storage):
    __test__ = False

    def add_many(self, records: Iterable[TaskRecord]) -> None:
        pass

    def get(self, uuid: bytes) -> Optional[TaskRecord]:
        return None

    def save(self, record: TaskRecord) -> None:
        pass

    def delete_ended(self, app: str) -> int:
        return 0

    def __len__(self) -> int:
        return 0

    def add(self, *args: Any, **kwargs: Any) -> None:
        pass

    def get_all(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    def update(self, **kwargs: Any) -> None:
        pass


class SyncTestGlobalConfig(BaseGlobalConfig):
    def set(self, name: str, key: str, value: Any) -> None:
        pass

    def get(self, key: str, name: str) -> Any:
        return None

    def get_all(self, key: str) -> dict[str, Any]:
        return {}

    def get_match(self, match: str) -> dict[str, Any]:
        return {}

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class AsyncTestGlobalConfig(BaseGlobalConfig):
    async def set(self, name: str, key: str, value: Any) -> None:
        pass

    async def get(self, key: str, name: str) -> Any:
        return None

    async def get_all(self, key: str) -> dict[str, Any]:
        return {}

    async def get_match(self, match: str) -> dict[str, Any]:
        return {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class SyncTestWorker(BaseWorker):
    def add(self, name: str, uuid: Any, priority: int, created_at: float, args: list[Any],
            kwargs: dict[str, Any]) -> None:
        return None

    def start(self, num_workers: Optional[int] = None) -> None:
        pass

    def stop(self) -> None:
        pass


class AsyncTestWorker(BaseWorker):
    async def add(self, name: str, uuid: Any, priority: int, created_at: float, args: list[Any],
                  kwargs: dict[str, Any]) -> None:
        return None

    async def start(self, num_workers: Optional[int] = None) -> None:
        pass

    async def stop(self) -> None:
        pass
