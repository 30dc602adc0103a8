"""``QueueConfig``: the app's settings, overridable from ``QTASKS_<FIELD>`` environment variables."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar

from qtasks.inert import INERT, warn_inert

Subscriber = Callable[["QueueConfig", str, Any], None]
_TRUE = {"1", "true", "yes", "on"}


@dataclass
class QueueConfig:
    max_tasks_process: int = 10
    """Tasks one worker process runs at once (its credit at the broker)."""
    running_older_tasks: bool = False
    delete_finished_tasks: bool = False
    task_default_priority: int = 0
    task_default_decode: Callable[..., Any] | None = None
    logs_default_level_server: int = logging.INFO
    logs_default_level_client: int = logging.INFO
    logs_format: str = "%(asctime)s [%(name)s: %(levelname)s] (%(subname)s) %(message)s"
    result_time_interval: float = 1.0
    """Kept for upstream compatibility; results are pushed, never polled."""
    result_statuses_end: list[str] = field(default_factory=lambda: ["success", "error", "cancel"])
    environ_prefix: str = "QTASKS_"
    broker_connect_timeout: float = 5.0
    """Seconds a request may go unanswered before the broker is declared unavailable."""
    shutdown_grace: float = 30.0
    """Seconds a stopping worker process gives its running tasks to finish."""
    thread_stop_grace: float = 10.0
    """Seconds a plain ``def`` task's thread may run on after its task timed out or was
    cancelled before the worker process is replaced (a thread cannot be stopped)."""

    global_config_status_ttl: ClassVar[int] = 20
    global_config_status_set_periodic: ClassVar[int] = 17

    def __post_init__(self) -> None:
        object.__setattr__(self, "_subscribers", [])
        object.__setattr__(self, "_dynamic", {})
        self._apply_environment()
        for f in fields(self):
            self._check_inert(f.name, getattr(self, f.name))

    def _check_inert(self, key: str, value: Any) -> None:
        name = f"QueueConfig.{key}"
        if name in INERT and value != _DEFAULTS[key]:
            warn_inert(name)

    def _apply_environment(self) -> None:
        prefix = self.environ_prefix
        for f in fields(self):
            raw = os.environ.get(prefix + f.name.upper())
            if raw is None:
                continue
            current = getattr(self, f.name)
            try:
                value = _cast(raw, current)
            except (TypeError, ValueError):
                continue
            object.__setattr__(self, f.name, value)

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(config, key, value)`` after every assignment."""
        self._subscribers.append(callback)

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_") or key in {f.name for f in fields(self)}:
            object.__setattr__(self, key, value)
            if "_subscribers" in self.__dict__:  # after __init__
                self._check_inert(key, value)
        else:
            self._dynamic[key] = value
        for callback in getattr(self, "_subscribers", ()):
            callback(self, key, value)

    def __getattr__(self, key: str) -> Any:
        dynamic = self.__dict__.get("_dynamic", {})
        if key in dynamic:
            return dynamic[key]
        raise AttributeError(f"QueueConfig has no setting {key!r}")


def _cast(raw: str, current: Any) -> Any:
    if isinstance(current, bool):
        return raw.strip().lower() in _TRUE
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    if isinstance(current, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    if current is None or isinstance(current, str):
        return raw
    raise TypeError(type(current))


_DEFAULTS = {f.name: (f.default_factory() if callable(f.default_factory) else f.default)
             for f in fields(QueueConfig)}
