from qtasks.events.handler import InitsExecSchema

__all__ = ["InitsExecSchema"]
