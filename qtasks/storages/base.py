"""``BaseStorage``: how the broker daemon keeps task records (see ``broker_daemon.storage``)."""

from broker_daemon.storage.base import Storage

BaseStorage = Storage

__all__ = ["BaseStorage"]
