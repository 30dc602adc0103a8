from qtasks.worker.base import BaseWorker

__all__ = ["BaseWorker"]
