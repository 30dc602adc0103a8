from qtasks.executors.base import BaseTaskExecutor
from qtasks.executors.task_executor import AsyncTaskExecutor

__all__ = ["AsyncTaskExecutor", "BaseTaskExecutor"]
