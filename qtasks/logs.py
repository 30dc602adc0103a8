"""Logging: upstream's ``Logger`` wrapper for app components, and process-wide set-up.

Engine internals log through plain ``logging`` loggers under ``qtasks.`` (``qtasks.broker``,
``qtasks.worker``, ``qtasks.client``); task log lines carry the task name and uuid.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

DEFAULT_FORMAT = "%(asctime)s [%(name)s: %(levelname)s] (%(subname)s) %(message)s"
PROCESS_FORMAT = "%(asctime)s %(levelname)s %(name)s [pid %(process)d]: %(message)s"


def configure_process_logging(level: int = logging.INFO) -> None:
    """Give a daemon or worker process a stderr handler, unless the user configured logging."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(PROCESS_FORMAT))
        root.addHandler(handler)
    logging.getLogger("qtasks").setLevel(level)


class Logger:
    """A ``logging.Logger`` that tags every line with a component name (``subname``)."""

    def __init__(self, name: str, subname: str | None = None, default_level: int = logging.INFO,
                 format: str | None = None) -> None:
        self.name = name
        self.subname = subname or "-"
        self.format = format or DEFAULT_FORMAT
        self.default_level = default_level
        self.logger = logging.getLogger(name)
        if not self.logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(self.format))
            self.logger.addHandler(handler)
            self.logger.propagate = False
        self.logger.setLevel(default_level)

    def _log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        extra = kwargs.pop("extra", None) or {}
        extra.setdefault("subname", self.subname)
        kwargs.setdefault("stacklevel", 3)
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

    def with_subname(self, new_subname: str, default_level: int | None = None,
                     format: str | None = None) -> Logger:
        return Logger(self.name, new_subname,
                      self.default_level if default_level is None else default_level,
                      format or self.format)

    def update_logger(self, **kwargs: Any) -> Logger:
        settings = {"name": self.name, "subname": self.subname,
                    "default_level": self.default_level, "format": self.format}
        settings.update(kwargs)
        logger = Logger(**settings)
        if logger.format != self.format:
            for handler in logger.logger.handlers:
                handler.setFormatter(logging.Formatter(logger.format))
        return logger
