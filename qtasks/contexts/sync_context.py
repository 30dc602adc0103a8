"""Upstream's import path of ``SyncContext``."""

from qtasks.contexts import SyncContext

__all__ = ["SyncContext"]
