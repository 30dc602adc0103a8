from qtasks.tasks.registry import TaskRegistry, shared_task

__all__ = ["TaskRegistry", "shared_task"]
