"""Storages at upstream's import paths. Records are kept by the broker daemon: ``BaseStorage`` is
its storage interface (a user storage is loaded with ``qtasks-broker --storage module:factory``)."""

from __future__ import annotations

from qtasks.storages.base import BaseStorage
from qtasks.storages.remote import RemoteStorage

__all__ = ["BaseStorage", "RemoteStorage"]


def __getattr__(name: str) -> object:
    if name in ("AsyncRedisStorage", "SyncRedisStorage"):
        raise ImportError(f"{name} is upstream's Redis storage; this engine keeps task records in its own "
                          "broker daemon (qtasks-broker: memory, --data-dir, or --storage module:factory)")
    raise AttributeError(f"module 'qtasks.storages' has no attribute {name!r}")
