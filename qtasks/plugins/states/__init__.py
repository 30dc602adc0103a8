from qtasks.state import AsyncState, SyncState

__all__ = ["AsyncState", "SyncState"]
