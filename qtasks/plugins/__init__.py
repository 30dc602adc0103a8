"""Task-argument helpers, at the import paths upstream QTasks code uses."""

from qtasks.plugins.depends import Depends, ScopeEnum
from qtasks.plugins.states import AsyncState, SyncState

__all__ = ["AsyncState", "Depends", "ScopeEnum", "SyncState"]
