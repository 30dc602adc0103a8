from qtasks.plugins.states.plugin import AsyncStatePlugin, SyncStatePlugin
from qtasks.state import AsyncState, SyncState

__all__ = ["AsyncState", "AsyncStatePlugin", "SyncState", "SyncStatePlugin"]
