from qtasks.tasks.objects import SyncTask

__all__ = ["SyncTask"]
