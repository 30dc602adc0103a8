from qtasks.registries.task import AsyncTask, BaseTask, SyncTask
from qtasks.registries.task_registry import TaskRegistry, shared_task

__all__ = ["AsyncTask", "BaseTask", "SyncTask", "TaskRegistry", "shared_task"]
