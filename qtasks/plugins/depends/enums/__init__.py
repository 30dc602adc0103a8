from qtasks.plugins.depends.enums.scope import ScopeEnum

__all__ = ["ScopeEnum"]
