from qtasks.utils.tasks.async_task_utils import AsyncTaskUtils

__all__ = ["AsyncTaskUtils"]
