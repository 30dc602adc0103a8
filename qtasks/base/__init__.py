from qtasks.app.core import BaseQueueTasks

__all__ = ["BaseQueueTasks"]
