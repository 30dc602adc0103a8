from qtasks.plugins.testing import SyncTestPlugin

__all__ = ["SyncTestPlugin"]
