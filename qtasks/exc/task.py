"""Import path kept from upstream QTasks: ``qtasks.exc.task``."""

from qtasks.exc import TaskCancelError

__all__ = ["TaskCancelError"]
