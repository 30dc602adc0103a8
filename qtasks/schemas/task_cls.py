from qtasks.tasks.objects import AsyncTaskCls, BaseTaskCls, SyncTaskCls

__all__ = ["AsyncTaskCls", "BaseTaskCls", "SyncTaskCls"]
