"""Type variables of upstream's import path ``qtasks.types``."""

from typing import Literal, ParamSpec, TypeVar

P = ParamSpec("P")
"""A task function's parameters."""
R = TypeVar("R")
"""A task function's return type."""
T = TypeVar("T")
TAsyncFlag = TypeVar("TAsyncFlag", Literal[True], Literal[False])
"""Whether a component is the async (True) or the sync (False) kind."""

__all__ = ["P", "R", "T", "TAsyncFlag"]
