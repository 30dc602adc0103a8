"""``AsyncStatePlugin`` / ``SyncStatePlugin``: give State parameters their instance (spec §7).

On ``task_executor_args_replace``, a parameter annotated with an ``AsyncState``/``SyncState``
subclass (also inside ``Annotated`` or ``Optional``) that the caller did not pass gets an
instance bound to the app the task runs for, always by keyword.
"""

from __future__ import annotations

import inspect
import types
from functools import lru_cache
from typing import Annotated, Any, Callable, Optional, Union, get_args, get_origin

from qtasks.executors.arguments import Parameter, parameters
from qtasks.plugins.base import BasePlugin
from qtasks.state import BaseState


@lru_cache(maxsize=None)
def state_parameters(func: Callable[..., Any]) -> tuple[tuple[Parameter, type[BaseState]], ...]:
    """The parameters of ``func`` that take a State, with the State class."""
    return tuple((param, state) for param in parameters(func)
                 if (state := _state_class(param.annotation)) is not None)


def _state_class(annotation: Any) -> Optional[type[BaseState]]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _state_class(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return next((s for s in map(_state_class, get_args(annotation)) if s is not None), None)
    if inspect.isclass(annotation) and issubclass(annotation, BaseState):
        return annotation
    return None


class AsyncStatePlugin(BasePlugin):
    def __init__(self, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.handlers = {"task_executor_args_replace": self.fill}

    def leaves_alone(self, func: Any) -> bool:
        """A call of ``func`` gets nothing from this plugin (``qtasks.worker.direct``)."""
        return not state_parameters(func)

    def fill(self, task_executor: Any, args: list[Any], kw: dict[str, Any], **_: Any) -> Optional[dict[str, Any]]:
        wanted = state_parameters(task_executor.task_func.func)
        if not wanted:
            return None
        app = task_executor.runtime.app
        for param, state in wanted:
            if not param.supplied(args, kw):
                kw[param.name] = state(app)
        return {"kw": kw}


class SyncStatePlugin(AsyncStatePlugin):
    """The same plugin under the name sync apps use upstream."""
