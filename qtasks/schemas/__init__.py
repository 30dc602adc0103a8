"""Upstream's import paths of the records and specs (see ``qtasks.tasks``)."""

from qtasks.tasks.record import Task
from qtasks.tasks.spec import TaskExecSchema, TaskPrioritySchema

__all__ = ["Task", "TaskExecSchema", "TaskPrioritySchema"]
