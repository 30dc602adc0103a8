"""Helpers at upstream's import paths: ``get_app``, ``shared_task``, ``AsyncTaskUtils``."""

from __future__ import annotations

from typing import Any

from qtasks.tasks.chains import AsyncTaskUtils
from qtasks.tasks.registry import shared_task
from qtasks.utils.builds import _build_task


def get_app() -> Any:
    """The app built last in this process (``qtasks._state.app_main``), None if there is none."""
    from qtasks import _state

    return _state.app_main


__all__ = ["AsyncTaskUtils", "_build_task", "get_app", "shared_task"]
