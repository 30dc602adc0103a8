from qtasks.plugins.depends.class_depends import Depends
from qtasks.plugins.depends.enums.scope import ScopeEnum
from qtasks.plugins.depends.plugin import AsyncDependsPlugin, SyncDependsPlugin

__all__ = ["AsyncDependsPlugin", "Depends", "ScopeEnum", "SyncDependsPlugin"]
