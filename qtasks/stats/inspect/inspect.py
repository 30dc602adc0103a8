"""``InspectStats``: what ``stats.inspect()`` returns; each method gives text, or JSON with ``json=True``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtasks.stats.inspect.base import UtilsInspectStats

if TYPE_CHECKING:
    from qtasks.app.core import BaseQueueTasks


class InspectStats(UtilsInspectStats):
    def __init__(self, app: BaseQueueTasks) -> None:
        self._app = app

    def app(self, json: bool = False) -> str:
        """The app: name, flavour, version, config, counts and component classes."""
        return self._app_parser(self._app, json=json)

    def tasks(self, *tasks: str, json: bool = False) -> str:
        """Every task the app serves, or the ones named (unknown names are skipped);
        JSON: a list of ``TaskExecSchema`` dicts."""
        registered = self._registered_tasks(self._app)
        chosen = list(registered.values()) if not tasks else [registered[n] for n in tasks if n in registered]
        return self._parser_json(chosen) if json else self._tasks_parser(chosen)

    def task(self, task_name: str, json: bool = False) -> str:
        """One task; JSON: its ``TaskExecSchema`` as a dict. ``KeyError`` if the app has no such task."""
        registered = self._registered_tasks(self._app)
        try:
            task = registered[task_name]
        except KeyError:
            known = ", ".join(sorted(registered)) or "none"
            raise KeyError(f"app {self._app.name!r} has no task {task_name!r}; registered: {known}") from None
        return self._parser_json(task) if json else self._tasks_parser([task])
