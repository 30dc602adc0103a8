"""Upstream's import paths of task objects and the shared-task registry."""

from qtasks.tasks.objects import AsyncTask, BaseTask, SyncTask
from qtasks.tasks.registry import TaskRegistry, shared_task

__all__ = ["AsyncTask", "BaseTask", "SyncTask", "TaskRegistry", "shared_task"]
