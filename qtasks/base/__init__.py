from qtasks.base.qtasks import BaseQueueTasks

__all__ = ["BaseQueueTasks"]
