from broker_daemon.storage.base import Storage
from broker_daemon.storage.memory import MemoryStorage

__all__ = ["MemoryStorage", "Storage"]
