"""Upstream's import path of ``SyncRouter``."""

from qtasks.tasks.routers import SyncRouter

__all__ = ["SyncRouter"]
