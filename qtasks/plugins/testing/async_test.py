from qtasks.plugins.testing import AsyncTestPlugin

__all__ = ["AsyncTestPlugin"]
