"""Upstream's import path of ``SyncStarter``."""

from qtasks.starters import SyncStarter

__all__ = ["SyncStarter"]
