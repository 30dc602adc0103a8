"""QTasks: a task queue with a ZeroMQ broker daemon and multiprocess worker actors.

``qtasks.QueueTasks`` is the sync app, ``qtasks.asyncio.QueueTasks`` the async one.
"""

from qtasks.exc import Retry
from qtasks.plugins.depends import Depends
from qtasks.qtasks import QueueTasks
from qtasks.registries.task_registry import shared_task
from qtasks.routers import AsyncRouter, SyncRouter
from qtasks.version import __version__

__all__ = ["AsyncRouter", "Depends", "QueueTasks", "Retry", "SyncRouter", "__version__", "shared_task"]
