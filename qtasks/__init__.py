"""QTasks: a task queue with a ZeroMQ broker daemon and multiprocess worker actors.

``qtasks.QueueTasks`` is the sync app, ``qtasks.asyncio.QueueTasks`` the async one. The
names below load on first use (PEP 562), so importing a leaf such as ``qtasks.protocol``
(as the broker daemon does) does not pull in the client or worker stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from qtasks.version import __version__

if TYPE_CHECKING:
    from qtasks.app.sync import QueueTasks
    from qtasks.exc import Retry
    from qtasks.plugins.depends.class_depends import Depends
    from qtasks.tasks.registry import shared_task
    from qtasks.tasks.routers import AsyncRouter, SyncRouter

_LAZY = {
    "QueueTasks": "qtasks.app.sync",
    "AsyncRouter": "qtasks.tasks.routers",
    "SyncRouter": "qtasks.tasks.routers",
    "shared_task": "qtasks.tasks.registry",
    "Depends": "qtasks.plugins.depends.class_depends",
    "Retry": "qtasks.exc",
}

__all__ = ["AsyncRouter", "Depends", "QueueTasks", "Retry", "SyncRouter", "__version__", "shared_task"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qtasks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
