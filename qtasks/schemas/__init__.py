from qtasks.schemas.task import Task
from qtasks.schemas.task_exec import TaskExecSchema, TaskPrioritySchema

__all__ = ["Task", "TaskExecSchema", "TaskPrioritySchema"]
