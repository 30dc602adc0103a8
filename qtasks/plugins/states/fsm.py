"""Import path kept from upstream QTasks: ``qtasks.plugins.states.fsm``."""

from qtasks.state import AsyncState, SyncState

__all__ = ["AsyncState", "SyncState"]
