"""``UtilsInspectStats``: how an app and its tasks are described, as text or as JSON.

Text is one block per item: ``label: value`` lines with labels padded to
``label_width``, each block closed by a rule of 50 dashes (upstream's layout, its
``Task nane`` label included)::

    Task nane                 : add
    Priority                  : 2
    Description               : adds
    ...
    Args                      : a
    Kwargs                    : b=0
    --------------------------------------------------

JSON is ``json.dumps(..., indent=2, default=str)``: dataclasses (``TaskExecSchema``)
become dicts of their fields, anything else JSON cannot hold (functions, classes)
its ``str()``.

The tasks described are the ones the app serves: its own, then the shared tasks it
has no task of the same name for (a worker adopts those when it starts).
"""

from __future__ import annotations

import inspect
import json as json_module
from collections.abc import ValuesView
from dataclasses import fields, is_dataclass
from pprint import pformat
from typing import TYPE_CHECKING, Any, Callable, Iterable

from qtasks.plugins.triggers import all_plugins
from qtasks.tasks.registry import TaskRegistry

if TYPE_CHECKING:
    from qtasks.app.core import BaseQueueTasks
    from qtasks.tasks.spec import TaskExecSchema

NOTHING = "—"
RULE = "-" * 50


class UtilsInspectStats:
    label_width = 26

    # ------------------------------------------------------------------ what is described

    def _registered_tasks(self, app: BaseQueueTasks) -> dict[str, TaskExecSchema]:
        shared = {name: task for name, task in TaskRegistry.all_tasks().items() if name not in app.tasks}
        return {**app.tasks, **shared}

    def _app_info(self, app: BaseQueueTasks) -> dict[str, Any]:
        broker = app.broker
        storage = _first_present(getattr(app, "storage", None), getattr(broker, "storage", None))
        global_config = _first_present(getattr(app, "global_config", None),
                                       getattr(storage, "global_config", None))
        components = (app, broker, app.worker, app.starter, storage, global_config)
        plugin_dicts = [plugins for plugins in (getattr(c, "plugins", None) for c in components)
                        if isinstance(plugins, dict)]
        handlers = getattr(getattr(getattr(app, "events", None), "on", None), "handlers", None) or {}
        return {
            "Name": app.name,
            "Method": app._method,
            "Version": app.version,
            "Config": str(app.config),
            "Tasks Count": len(self._registered_tasks(app)),
            "Routers Count": len(app.routers),
            "Plugins Count": len(all_plugins(*plugin_dicts)),
            "Broker": _class_name(broker),
            "Worker": _class_name(app.worker),
            "Starter": _class_name(app.starter),
            "Storage": _class_name(storage),
            "GlobalConfig": _class_name(global_config),
            "Log": _class_name(app.log),
            "Init Count": sum(len(registered) for registered in handlers.values()),
        }

    def _task_info(self, task: TaskExecSchema) -> dict[str, Any]:
        args, kwargs = self._task_get_args_kwargs(task.func)
        info: dict[str, Any] = {
            "Task nane": task.name,
            "Priority": task.priority,
            "Description": task.description or NOTHING,
            "Tags": ", ".join(task.tags) if task.tags else NOTHING,
            "Awaiting": task.awaiting,
            "Generating": task.generating,
            "Task Self": task.echo,
            "Args": ", ".join(args) if args else NOTHING,
            "Kwargs": ", ".join(f"{name}={value}" for name, value in kwargs.items()) if kwargs else NOTHING,
        }
        if task.retry is not None:
            info["Retry Count"] = task.retry
        if task.retry_on_exc:
            info["Retry on Exception"] = pformat(task.retry_on_exc)
        if task.decode:
            info["Decode"] = str(task.decode)
        if task.generate_handler:
            info["Generator"] = str(task.generate_handler)
        if task.executor:
            info["Executor"] = str(task.executor)
        if task.middlewares_before:
            info["Middlewares Before"] = pformat(task.middlewares_before)
        if task.middlewares_after:
            info["Middlewares After"] = pformat(task.middlewares_after)
        if task.extra:
            info["Extra"] = "".join(f"\n * {name}: {value}" for name, value in task.extra.items())
        return info

    # ------------------------------------------------------------------ how it is written

    def _app_parser(self, app: BaseQueueTasks, json: bool = False) -> str:
        info = self._app_info(app)
        return self._parser_json(info) if json else self._block(info)

    def _tasks_parser(self, tasks: Iterable[TaskExecSchema]) -> str:
        return "\n".join(self._block(self._task_info(task)) for task in tasks) or "No registered tasks."

    def _parser_json(self, data: Any) -> str:
        if isinstance(data, (tuple, ValuesView)):
            data = list(data)
        return json_module.dumps(data, ensure_ascii=False, indent=2, default=_json_default)

    def _block(self, info: dict[str, Any]) -> str:
        lines = [f"{label:<{self.label_width}}: {value}" for label, value in info.items()]
        return "\n".join([*lines, RULE])

    @staticmethod
    def _task_get_args_kwargs(func: Callable[..., Any]) -> tuple[list[str], dict[str, Any]]:
        """A task function's parameters: those without defaults (positional), those with (keyword).

        Keyword-only parameters without a default read ``required``; ``**kwargs`` reads ``...``.
        """
        try:
            parameters = inspect.signature(func).parameters.values()
        except (TypeError, ValueError):  # builtins and C callables may have no signature
            return [], {}
        positional: list[str] = []
        keyword: dict[str, Any] = {}
        for parameter in parameters:
            label = parameter.name + _annotation(parameter.annotation)
            if parameter.kind is parameter.VAR_POSITIONAL:
                positional.append(f"*{parameter.name}")
            elif parameter.kind is parameter.VAR_KEYWORD:
                keyword[f"**{parameter.name}"] = "..."
            elif parameter.default is not parameter.empty:
                keyword[label] = parameter.default
            elif parameter.kind is parameter.KEYWORD_ONLY:
                keyword[label] = "required"
            else:
                positional.append(label)
        return positional, keyword


def _annotation(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    return f": {annotation.__name__}" if isinstance(annotation, type) else f": {annotation}"


def _class_name(component: Any) -> str:
    return NOTHING if component is None else type(component).__name__


def _first_present(*candidates: Any) -> Any:
    return next((candidate for candidate in candidates if candidate is not None), None)


def _json_default(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in fields(value)}
    return str(value)
