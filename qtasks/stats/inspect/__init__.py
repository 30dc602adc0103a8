from qtasks.stats.inspect.base import UtilsInspectStats
from qtasks.stats.inspect.inspect import InspectStats

__all__ = ["InspectStats", "UtilsInspectStats"]
