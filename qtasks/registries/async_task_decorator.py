from qtasks.tasks.objects import AsyncTask

__all__ = ["AsyncTask"]
