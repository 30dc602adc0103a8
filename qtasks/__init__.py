"""QTasks: a task queue with a ZeroMQ broker daemon and multiprocess worker actors.

``qtasks.QueueTasks`` is the sync app, ``qtasks.asyncio.QueueTasks`` the async one.
"""

from qtasks.plugins.depends import Depends
from qtasks.qtasks import QueueTasks
from qtasks.version import __version__

__all__ = ["Depends", "QueueTasks", "__version__"]
