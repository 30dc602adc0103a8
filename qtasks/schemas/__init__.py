"""Upstream's import paths of the records and specs (see ``qtasks.tasks``)."""

from qtasks.schemas.global_config import GlobalConfigSchema
from qtasks.schemas.task_status import (
    TaskStatusErrorSchema,
    TaskStatusNewSchema,
    TaskStatusProcessSchema,
    TaskStatusSuccessSchema,
)
from qtasks.schemas.test import TestConfig
from qtasks.tasks.record import Task
from qtasks.tasks.spec import TaskExecSchema, TaskPrioritySchema

__all__ = ["GlobalConfigSchema", "Task", "TaskExecSchema", "TaskPrioritySchema", "TaskStatusErrorSchema",
           "TaskStatusNewSchema", "TaskStatusProcessSchema", "TaskStatusSuccessSchema", "TestConfig"]
