"""Upstream's import path of routers (see ``qtasks.tasks.routers``)."""

from qtasks.tasks.routers import AsyncRouter, BaseRouter, SyncRouter

__all__ = ["AsyncRouter", "BaseRouter", "SyncRouter"]
