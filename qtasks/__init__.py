"""QTasks: a task queue with a ZeroMQ broker daemon and multiprocess worker actors.

``qtasks.QueueTasks`` is the sync app, ``qtasks.asyncio.QueueTasks`` the async one.
"""

from qtasks.qtasks import QueueTasks
from qtasks.version import __version__

__all__ = ["QueueTasks", "__version__"]
