"""Upstream's import path of ``AsyncStarter``."""

from qtasks.starters import AsyncStarter

__all__ = ["AsyncStarter"]
