"""Upstream's import path of ``AsyncContext``."""

from qtasks.contexts import AsyncContext

__all__ = ["AsyncContext"]
