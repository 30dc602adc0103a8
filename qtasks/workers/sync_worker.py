"""Upstream's import path of ``SyncThreadWorker``."""

from qtasks.workers import SyncThreadWorker

__all__ = ["SyncThreadWorker"]
