from qtasks.worker.base import BaseStarter

__all__ = ["BaseStarter"]
