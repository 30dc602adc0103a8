"""Which app a task object, a ``Task``, a State or a context uses when none was given it.

The one place that answers: the app passed explicitly, else the app built (or served)
last in this process, which upstream code reads as ``qtasks._state.app_main``.
"""

from __future__ import annotations

from typing import Any, Optional


def current_app(app: Optional[Any] = None, *, required: bool = True) -> Any:
    """``app`` when given, else the app built last in this process; when there is none,
    ImportError (upstream's "Unable to get app!"), or None if not ``required``."""
    if app is not None:
        return app
    from qtasks import _state

    if _state.app_main is None and required:
        raise ImportError("Unable to get app!")
    return _state.app_main


def set_current_app(app: Any) -> None:
    from qtasks import _state

    _state.app_main = app
    _state.log_main = app.log
