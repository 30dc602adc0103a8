"""Helpers at upstream's import paths: ``get_app``, ``shared_task``, ``AsyncTaskUtils``."""

from __future__ import annotations

from typing import Any

from qtasks.registries.task_registry import shared_task
from qtasks.utils.tasks import AsyncTaskUtils


def get_app() -> Any:
    """The app built last in this process (``qtasks._state.app_main``)."""
    from qtasks import _state

    return _state.app_main


__all__ = ["AsyncTaskUtils", "get_app", "shared_task"]
