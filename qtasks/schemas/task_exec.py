from qtasks.tasks.spec import TaskExecSchema, TaskPrioritySchema

__all__ = ["TaskExecSchema", "TaskPrioritySchema"]
