from qtasks.tasks.chains import SyncTaskUtils

__all__ = ["SyncTaskUtils"]
