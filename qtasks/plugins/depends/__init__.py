from qtasks.plugins.depends.class_depends import Depends
from qtasks.plugins.depends.enums.scope import ScopeEnum

__all__ = ["Depends", "ScopeEnum"]
