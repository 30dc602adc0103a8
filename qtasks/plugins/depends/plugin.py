"""``AsyncDependsPlugin`` / ``SyncDependsPlugin``: fill ``Depends`` parameters (spec §6).

On ``task_executor_args_replace`` it gives every ``Depends`` parameter the caller did not
pass its provider's value, by keyword. A parameter is one when its default is
``Depends(...)``, its annotation is ``Depends(...)`` (as in the QTasks docs) or
``Annotated[T, ..., Depends(...)]``. Task-scoped values close when the execution ends
(on the executor's teardown stack); the other scopes live in this plugin, one per worker
process, and close when it stops.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Callable, Optional, get_args, get_origin

from qtasks.executors.arguments import Parameter, parameters
from qtasks.plugins.base import BasePlugin
from qtasks.plugins.depends.class_depends import Depends
from qtasks.plugins.depends.scopes import DependencyScopes


@lru_cache(maxsize=None)
def depends_parameters(func: Callable[..., Any]) -> tuple[tuple[Parameter, Depends], ...]:
    """The parameters of ``func`` that ``Depends`` fills, with their marker."""
    found = []
    for param in parameters(func):
        marker = param.default if isinstance(param.default, Depends) else _marker(param.annotation)
        if marker is not None:
            found.append((param, marker))
    return tuple(found)


def _marker(annotation: Any) -> Optional[Depends]:
    if isinstance(annotation, Depends):
        return annotation
    if get_origin(annotation) is Annotated:
        marks = [m for m in annotation.__metadata__ if isinstance(m, Depends)]
        return marks[-1] if marks else _marker(get_args(annotation)[0])
    return None


class AsyncDependsPlugin(BasePlugin):
    def __init__(self, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.scopes = DependencyScopes()
        """Values of the worker/broker/storage/global_config scopes in this process."""
        self.handlers = {"task_executor_args_replace": self.fill}

    def leaves_alone(self, func: Any) -> bool:
        """A call of ``func`` gets nothing from this plugin (``qtasks.worker.direct``)."""
        return not depends_parameters(func)

    async def fill(self, task_executor: Any, args: list[Any], kw: dict[str, Any],
                   **_: Any) -> Optional[dict[str, Any]]:
        wanted = depends_parameters(task_executor.task_func.func)
        if not wanted:
            return None
        for param, depends in wanted:
            if not param.supplied(args, kw):
                kw[param.name] = await self.scopes.resolve(depends, task_executor.teardowns)
        return {"kw": kw}

    async def stop(self, *args: Any, **kwargs: Any) -> None:
        """Close the process-wide scopes, in the order the components stop."""
        await self.scopes.close()


class SyncDependsPlugin(AsyncDependsPlugin):
    """The same plugin under the name sync apps use upstream."""
