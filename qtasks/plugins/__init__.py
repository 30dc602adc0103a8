"""Plugins and task-argument helpers, at the import paths upstream QTasks code uses.

The names load on first use (PEP 562): the broker daemon imports the plugin machinery
(``qtasks.plugins.triggers``) without the client-side State it would otherwise pull in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qtasks.plugins.base import BasePlugin
    from qtasks.plugins.depends import AsyncDependsPlugin, Depends, ScopeEnum, SyncDependsPlugin
    from qtasks.plugins.pydantic import AsyncPydanticWrapperPlugin, SyncPydanticWrapperPlugin
    from qtasks.plugins.retries import AsyncRetryPlugin, SyncRetryPlugin
    from qtasks.plugins.states import AsyncState, AsyncStatePlugin, SyncState, SyncStatePlugin
    from qtasks.plugins.testing import AsyncTestPlugin, SyncTestPlugin

_LAZY = {
    "BasePlugin": "qtasks.plugins.base",
    "Depends": "qtasks.plugins.depends",
    "ScopeEnum": "qtasks.plugins.depends",
    "AsyncDependsPlugin": "qtasks.plugins.depends",
    "SyncDependsPlugin": "qtasks.plugins.depends",
    "AsyncState": "qtasks.plugins.states",
    "SyncState": "qtasks.plugins.states",
    "AsyncStatePlugin": "qtasks.plugins.states",
    "SyncStatePlugin": "qtasks.plugins.states",
    "AsyncPydanticWrapperPlugin": "qtasks.plugins.pydantic",
    "SyncPydanticWrapperPlugin": "qtasks.plugins.pydantic",
    "AsyncRetryPlugin": "qtasks.plugins.retries",
    "SyncRetryPlugin": "qtasks.plugins.retries",
    "AsyncTestPlugin": "qtasks.plugins.testing",
    "SyncTestPlugin": "qtasks.plugins.testing",
}
_GRPC = ("AsyncgRPCPlugin", "SyncgRPCPlugin")

__all__ = [
    "AsyncDependsPlugin", "AsyncPydanticWrapperPlugin", "AsyncRetryPlugin", "AsyncState", "AsyncStatePlugin",
    "AsyncTestPlugin", "BasePlugin", "Depends", "ScopeEnum", "SyncDependsPlugin", "SyncPydanticWrapperPlugin",
    "SyncRetryPlugin", "SyncState", "SyncStatePlugin", "SyncTestPlugin",
]


def __getattr__(name: str) -> Any:
    if name in _GRPC:
        raise ImportError(f"{name} (upstream's gRPC server plugin) is not part of this engine; "
                          "clients reach the broker daemon directly (qtasks-broker)")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qtasks.plugins' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
