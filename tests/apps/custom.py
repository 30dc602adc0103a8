"""An app built from user subclasses of every component, each wrapping the default and writing
down its calls (``component.call pid`` lines in ``$CUSTOM_RECORD``).

``python -m tests.apps.custom sync|async`` serves it with the custom starter until SIGTERM.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

import qtasks.asyncio
from qtasks import QueueTasks
from qtasks.brokers import ZmqBroker
from qtasks.configs.global_config import AsyncGlobalConfig, SyncGlobalConfig
from qtasks.executors import AsyncTaskExecutor
from qtasks.starters import SyncStarter
from qtasks.workers import SyncThreadWorker


def record(call: str) -> None:
    path = os.environ.get("CUSTOM_RECORD")
    if path:
        with open(path, "a") as out:
            out.write(f"{call} {os.getpid()}\n")


class RecordingBroker(ZmqBroker):
    def submit(self, envelopes: Any, wait: Optional[float] = None) -> Any:
        record("broker.submit")
        return super().submit(envelopes, wait)

    def start(self, worker: Any = None) -> None:
        record("broker.start")
        super().start(worker)

    def stop(self) -> None:
        record("broker.stop")
        super().stop()


class RecordingWorker(SyncThreadWorker):
    async def add(self, *args: Any, **kwargs: Any) -> Any:
        record("worker.add")
        return await super().add(*args, **kwargs)

    async def start(self, num_workers: Optional[int] = None) -> None:
        record("worker.start")
        await super().start(num_workers)

    async def stop(self) -> None:
        record("worker.stop")
        await super().stop()


class RecordingExecutor(AsyncTaskExecutor):
    async def execute(self, decode: bool = True) -> Any:
        record(f"executor.execute {self.name} {self.config.max_tasks_process}")
        return await super().execute(decode)


class RecordingSyncGlobalConfig(SyncGlobalConfig):
    def set(self, name: str, key: str, value: Any) -> None:
        record("global_config.set")
        super().set(name, key, value)


class RecordingAsyncGlobalConfig(AsyncGlobalConfig):
    async def set(self, name: str, key: str, value: Any) -> None:
        record("global_config.set")
        await super().set(name, key, value)


class RecordingStarter(SyncStarter):
    def start(self, num_workers: int = 4, reset_config: bool = True, plugins: Any = None) -> int:
        record(f"starter.start {num_workers} {reset_config}")
        return super().start(num_workers, reset_config, plugins)

    def stop(self) -> None:
        record("starter.stop")
        super().stop()


def build(kind: type, global_config: type) -> Any:
    name = f"custom-{kind.__module__.split('.')[-1]}"
    broker = RecordingBroker(name)
    app = kind(name=name, broker=broker, worker=RecordingWorker(name, broker, executor=RecordingExecutor))
    app.global_config = global_config(app, name=name)

    @app.task(name="double")
    def double(value: int) -> int:
        return value * 2

    return app


sync_app = build(QueueTasks, RecordingSyncGlobalConfig)
async_app = build(qtasks.asyncio.QueueTasks, RecordingAsyncGlobalConfig)

if __name__ == "__main__":
    served = sync_app if sys.argv[1] == "sync" else async_app
    served.run_forever(starter=RecordingStarter(), num_workers=1, reset_config=False)
