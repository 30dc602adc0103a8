from qtasks.tasks.chains import AsyncTaskUtils

__all__ = ["AsyncTaskUtils"]
