"""Upstream's import path of ``AsyncRouter``."""

from qtasks.tasks.routers import AsyncRouter

__all__ = ["AsyncRouter"]
