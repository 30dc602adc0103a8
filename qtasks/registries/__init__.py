from qtasks.registries.task import AsyncTask, BaseTask, SyncTask

__all__ = ["AsyncTask", "BaseTask", "SyncTask"]
