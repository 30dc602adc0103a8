"""Workers at upstream's import paths. One worker serves both kinds of app here: every worker
process runs an event loop (``async def`` tasks on it, plain ``def`` tasks in its threads),
so ``AsyncWorker`` and ``SyncThreadWorker`` name the same class."""

from qtasks.worker.component import Worker
from qtasks.workers.base import BaseWorker

AsyncWorker = Worker
SyncThreadWorker = Worker

__all__ = ["AsyncWorker", "BaseWorker", "SyncThreadWorker", "Worker"]
