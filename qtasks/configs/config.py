"""``QueueConfig``: every setting of an app and its engine, in one place.

Each field can be overridden from the environment as ``QTASKS_<FIELD>`` (the prefix is
``environ_prefix``), cast to the field's type: ``QTASKS_MAX_TASKS_PROCESS=4``,
``QTASKS_BROKER_URL=tcp://10.0.0.5:5555``, ``QTASKS_SHUTDOWN_GRACE=60``. A value that
cannot be cast is a :class:`~qtasks.exc.ConfigError` naming the variable, never ignored.
Assignments notify subscribers (``subscribe``); the broker component follows
``broker_url`` and ``broker_connect_timeout`` that way. Unknown names assigned become
dynamic settings, readable as attributes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Optional

from qtasks.exc import ConfigError
from qtasks.inert import INERT, warn_inert
from qtasks.protocol import DEFAULT_MAX_MESSAGE_SIZE

Subscriber = Callable[["QueueConfig", str, Any], None]
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass
class QueueConfig:
    max_tasks_process: int = 10
    """Tasks one worker process runs at once (its credit at the broker)."""
    running_older_tasks: bool = False
    delete_finished_tasks: bool = False
    task_default_priority: int = 0
    task_default_decode: Optional[Callable[..., Any]] = None
    logs_default_level_server: int = logging.INFO
    """The level serving processes log at (``$QTASKS_LOG_LEVEL`` and ``--log-level`` win)."""
    logs_default_level_client: int = logging.INFO
    logs_format: str = "%(asctime)s [%(name)s: %(levelname)s] (%(subname)s) %(message)s"
    result_time_interval: float = 1.0
    """Kept for upstream compatibility; results are pushed, never polled."""
    result_statuses_end: list[str] = field(default_factory=lambda: ["success", "error", "cancel"])
    environ_prefix: str = "QTASKS_"

    # the engine's settings
    broker_url: Optional[str] = None
    """Where the broker listens (None: ``tcp://127.0.0.1:5555``); ``QueueTasks(broker_url=)`` wins."""
    broker_connect_timeout: float = 5.0
    """Seconds a request may go unanswered before the broker is declared unavailable."""
    shutdown_grace: float = 30.0
    """Seconds a stopping worker process gives its running tasks to finish."""
    thread_stop_grace: float = 10.0
    """Seconds a plain ``def`` task's thread may run on after its task timed out or was
    cancelled before the worker process is replaced (a thread cannot be stopped)."""
    heartbeat_interval: float = 1.0
    """Seconds between heartbeats of a broker this app hosts (serving with no broker listening)."""
    heartbeat_liveness: int = 3
    """Missed heartbeats after which such a broker declares a worker process lost."""
    max_attempts: int = 3
    """Deliveries of a task whose worker process keeps being lost, in a broker this app hosts."""
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    """The largest message a broker this app hosts accepts, in bytes."""
    curve_server_key: Optional[str] = None
    """The broker's CURVE public key: a key file (``broker.key``) or z85 text. Set with
    ``curve_secret_key`` to talk to a broker started with ``--curve-secret-key``."""
    curve_public_key: Optional[str] = None
    """This side's public key (file or z85); optional, the secret key file holds it too."""
    curve_secret_key: Optional[str] = field(default=None, repr=False)
    """This side's secret key: a ``.key_secret`` file (or z85 text). Its public key decides the role:
    in the broker's ``--curve-clients`` directory it may submit and wait, in ``--curve-workers`` also serve.
    Left out of the config's repr: it may be the key itself."""

    global_config_status_ttl: ClassVar[int] = 20
    global_config_status_set_periodic: ClassVar[int] = 17

    def __post_init__(self) -> None:
        object.__setattr__(self, "_subscribers", [])
        object.__setattr__(self, "_dynamic", {})
        self._apply_environment()
        for f in fields(self):
            value = getattr(self, f.name)
            _check_range(f.name, value)
            self._check_inert(f.name, value)

    def _check_inert(self, key: str, value: Any) -> None:
        name = f"QueueConfig.{key}"
        if name in INERT and value != _DEFAULTS[key]:
            warn_inert(name)

    def _apply_environment(self) -> None:
        prefix = self.environ_prefix
        for f in fields(self):
            variable = prefix + f.name.upper()
            raw = os.environ.get(variable)
            if raw is not None:
                object.__setattr__(self, f.name, _cast(variable, raw, _KINDS[f.name]))

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(config, key, value)`` after every assignment."""
        self._subscribers.append(callback)

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_") or key in _KINDS:
            if "_subscribers" in self.__dict__:  # after __init__
                _check_range(key, value)
                self._check_inert(key, value)
            object.__setattr__(self, key, value)
        else:
            self._dynamic[key] = value
        for callback in getattr(self, "_subscribers", ()):
            callback(self, key, value)

    def __getattr__(self, key: str) -> Any:
        dynamic = self.__dict__.get("_dynamic", {})
        if key in dynamic:
            return dynamic[key]
        raise AttributeError(f"QueueConfig has no setting {key!r}")


def broker_settings(config: QueueConfig) -> dict[str, Any]:
    """What a broker an app hosts (serving with none listening, ``InProcessStack``) takes from its config."""
    return dict(heartbeat_interval=config.heartbeat_interval, heartbeat_liveness=config.heartbeat_liveness,
                max_attempts=config.max_attempts, max_message_size=config.max_message_size)


_KINDS: dict[str, str] = {
    "max_tasks_process": "int", "running_older_tasks": "bool", "delete_finished_tasks": "bool",
    "task_default_priority": "int", "task_default_decode": "callable", "logs_default_level_server": "level",
    "logs_default_level_client": "level", "logs_format": "str", "result_time_interval": "float",
    "result_statuses_end": "list", "environ_prefix": "str", "broker_url": "str", "broker_connect_timeout": "float",
    "shutdown_grace": "float", "thread_stop_grace": "float", "heartbeat_interval": "float",
    "heartbeat_liveness": "int", "max_attempts": "int", "max_message_size": "int",
    "curve_server_key": "str", "curve_public_key": "str", "curve_secret_key": "str",
}
"""How an environment variable's text becomes each field's value."""

_POSITIVE = {"max_tasks_process", "broker_connect_timeout", "heartbeat_interval", "heartbeat_liveness",
             "max_attempts", "max_message_size"}
_NOT_NEGATIVE = {"shutdown_grace", "thread_stop_grace"}


def _cast(variable: str, raw: str, kind: str) -> Any:
    text = raw.strip()
    try:
        if kind == "bool":
            lowered = text.lower()
            if lowered in _TRUE or lowered in _FALSE:
                return lowered in _TRUE
            raise ValueError
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "level":
            from qtasks.logs import parse_level

            return parse_level(text)
        if kind == "list":
            return [item.strip() for item in text.split(",") if item.strip()]
        if kind == "str":
            return raw
    except ValueError:
        pass
    else:
        raise ConfigError(f"{variable} cannot be set from the environment: it takes a Python callable; "
                          "set it in code (QueueConfig(...)) and unset the variable")
    wanted = {"bool": "a boolean: 1/true/yes/on or 0/false/no/off", "int": "a whole number such as 10",
              "float": "a number such as 2.5", "level": "a log level: DEBUG, INFO, WARNING, ERROR or CRITICAL"}[kind]
    raise ConfigError(f"{variable}={raw!r} is not {wanted}; fix the value or unset the variable")


def _check_range(key: str, value: Any) -> None:
    if key in _POSITIVE and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise ConfigError(f"QueueConfig.{key} must be a number greater than 0, got {value!r}")
    if key in _NOT_NEGATIVE and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        raise ConfigError(f"QueueConfig.{key} must be a number of seconds (0 or more), got {value!r}")


_DEFAULTS = {f.name: (f.default_factory() if callable(f.default_factory) else f.default)
             for f in fields(QueueConfig)}
assert set(_KINDS) == set(_DEFAULTS), "every field needs a kind"
