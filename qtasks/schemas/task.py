from qtasks.tasks.record import Task

__all__ = ["Task"]
