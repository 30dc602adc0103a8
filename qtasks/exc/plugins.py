"""Import path kept from upstream QTasks: ``qtasks.exc.plugins``."""

from qtasks.exc import TaskPluginTriggerError

__all__ = ["TaskPluginTriggerError"]
