"""The bases of what serves an app: ``BaseWorker`` (spec §9.4) and ``BaseStarter`` (§9.5).

A worker's hooks run in each worker process: ``start`` when the process begins serving,
``add`` when a task is delivered to it (before it runs), ``stop`` when it stops. The
default worker is ``qtasks.worker.component.Worker``. A starter starts and stops serving:
the default, the supervisor, runs worker processes and a broker when none listens;
``app.run_forever(starter=...)`` hands the app to the starter given and calls ``start``.
Upstream's import paths ``qtasks.workers.base``/``qtasks.starters.base`` re-export these.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Optional

from qtasks.components import Component
from qtasks.tasks.spec import TaskExecSchema


class BaseWorker(Component, ABC):
    def __init__(self, name: Optional[str] = None, broker: Any = None, log: Any = None, config: Any = None,
                 events: Any = None) -> None:
        self.broker = broker
        self._tasks: dict[str, TaskExecSchema] = {}
        self.task_middlewares_before: list[type] = []
        self.task_middlewares_after: list[type] = []
        self.num_workers: Optional[int] = None
        super().__init__(name, log, config, events)

    @abstractmethod
    def add(self, name: str, uuid: Any, priority: int, created_at: float, args: list[Any],
            kwargs: dict[str, Any]) -> Any:
        """A task was delivered to this worker process; returns a dict of changes or None."""

    @abstractmethod
    def start(self, num_workers: Optional[int] = None) -> Any:
        """This worker process begins serving (``num_workers``: its slot number under the supervisor)."""

    @abstractmethod
    def stop(self) -> Any:
        """This worker process stops serving."""



class BaseStarter(Component, ABC):
    def __init__(self, name: Optional[str] = None, broker: Any = None, worker: Any = None, log: Any = None,
                 config: Any = None, events: Any = None) -> None:
        self.broker = broker
        self.worker = worker
        super().__init__(name, log, config, events)

    @abstractmethod
    def start(self, num_workers: int = 4, reset_config: bool = True, plugins: Any = None) -> Any:
        """Serve until stopped (blocks)."""

    @abstractmethod
    def stop(self) -> Any:
        """Ask serving to end (safe from signal handlers and other threads)."""

    def update_configs(self, config: Any) -> None:
        """Give every component the same config."""
        self.update_config(config)
        for component in (self.worker, self.broker, getattr(self.broker, "storage", None),
                          getattr(getattr(self.broker, "storage", None), "global_config", None)):
            if component is not None and hasattr(component, "update_config"):
                component.update_config(config)
