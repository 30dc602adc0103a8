"""Logging: upstream's ``Logger`` wrapper for app components, and the set-up of serving processes.

The library configures nothing when imported or when an app is built: loggers get no
handlers and no levels, so ``logging.basicConfig(...)`` in the user's program decides.
Only a serving process (``qtasks ... run``, ``qtasks-broker``, ``app.run_forever()``)
configures logging, and only when the program has not: one stderr handler with one
format, at ``--log-level`` / ``$QTASKS_LOG_LEVEL`` (a name such as ``warning``, or a number).

Engine internals log through ``qtasks.*`` loggers; a ``Logger`` puts its component or
task label at the start of the message (a task's label is its name and uuid), so the
label shows whatever format the user chose.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Optional, Union

FORMAT = "%(asctime)s %(levelname)s %(name)s [pid %(process)d]: %(message)s"
LOG_LEVEL_ENV = "QTASKS_LOG_LEVEL"


def parse_level(value: Union[str, int]) -> int:
    """A logging level from a name (any case) or a number; ValueError names what is accepted."""
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    level = logging.getLevelName(text.upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {value!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def level_argument(text: str) -> int:
    """``parse_level`` for argparse (``--log-level``)."""
    try:
        return parse_level(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def configured_level(explicit: Union[str, int, None], default: int) -> int:
    """``explicit``, else ``$QTASKS_LOG_LEVEL``, else ``default``."""
    if explicit is not None:
        return parse_level(explicit)
    from_env = os.environ.get(LOG_LEVEL_ENV)
    if from_env:
        try:
            return parse_level(from_env)
        except ValueError as exc:
            raise ValueError(f"${LOG_LEVEL_ENV}: {exc}") from None
    return default


_configured_here = False
"""This process's logging was set up by :func:`configure_process_logging` (not by the program)."""


def configure_process_logging(level: int = logging.INFO) -> None:
    """Give a serving process one stderr handler in the one format, unless logging is configured."""
    global _configured_here
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    _configured_here = True


def follow_server_level(level: int) -> None:
    """``config.logs_default_level_server`` changed: a serving process whose logging QTasks set up,
    and whose level ``$QTASKS_LOG_LEVEL`` does not fix, logs at the new level from now on."""
    if _configured_here and not os.environ.get(LOG_LEVEL_ENV):
        logging.getLogger().setLevel(level)


class Logger:
    """A ``logging.Logger`` named after the app whose lines start with a label (``subname``)."""

    def __init__(self, name: str, subname: Optional[str] = None, default_level: int = logging.INFO,
                 format: Optional[str] = None) -> None:
        self.name = name
        self.subname = subname or "-"
        self.format = format or FORMAT
        self.default_level = default_level
        """Kept for upstream compatibility: the level is the logging configuration's to decide."""
        self.logger = logging.getLogger(name)

    def _log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not self.logger.isEnabledFor(level):
            return
        extra = kwargs.pop("extra", None) or {}
        extra.setdefault("subname", self.subname)
        kwargs.setdefault("stacklevel", 3)
        if self.subname != "-":
            msg = f"{self.subname}: {msg}"
        self.logger.log(level, msg, *args, extra=extra, **kwargs)

    def critical(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._log(logging.CRITICAL, msg, *args, **kwargs)

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._log(logging.ERROR, msg, *args, **kwargs)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._log(logging.WARNING, msg, *args, **kwargs)

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._log(logging.INFO, msg, *args, **kwargs)

    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self._log(logging.DEBUG, msg, *args, **kwargs)

    def with_subname(self, new_subname: str, default_level: Optional[int] = None,
                     format: Optional[str] = None) -> Logger:
        return Logger(self.name, new_subname,
                      self.default_level if default_level is None else default_level,
                      format or self.format)

    def update_logger(self, **kwargs: Any) -> Logger:
        settings: dict[str, Any] = {"name": self.name, "subname": self.subname,
                                    "default_level": self.default_level, "format": self.format}
        settings.update(kwargs)
        return Logger(**settings)
