"""Which task parameters the worker fills in itself: ``Depends`` providers and State instances.

Worked out once per task function from its signature. A parameter is a dependency when
its default is ``Depends(...)``, its annotation is ``Depends(...)`` (as in the QTasks
docs) or ``Annotated[T, ..., Depends(...)]``; it takes a State when annotated with a
``AsyncState``/``SyncState`` subclass (also inside ``Annotated`` or ``Optional``).
String annotations (``from __future__ import annotations``) are evaluated in the
function's module and closure. Values are always passed by keyword, and never over an
argument the caller gave.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Callable, Optional, Union, get_args, get_origin

from qtasks.plugins.depends import Depends
from qtasks.state import BaseState


@dataclass(frozen=True)
class Injection:
    name: str
    position: Optional[int]
    """Where a caller could have passed it positionally (None: keyword-only)."""
    depends: Optional[Depends] = None
    state: Optional[type[BaseState]] = None

    def supplied(self, args: list[Any], kwargs: dict[str, Any]) -> bool:
        return self.name in kwargs or (self.position is not None and self.position < len(args))


@lru_cache(maxsize=None)
def injections(func: Callable[..., Any]) -> tuple[Injection, ...]:
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # builtins and the like: nothing to inject
        return ()
    found = []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    for index, param in enumerate(parameters):
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        position = index if param.kind in positional else None
        if isinstance(param.default, Depends):
            found.append(Injection(param.name, position, depends=param.default))
            continue
        annotation = evaluate_annotation(param.annotation, func)
        depends, state = _marker(annotation)
        if depends is not None or state is not None:
            found.append(Injection(param.name, position, depends=depends, state=state))
    return tuple(found)


def evaluate_annotation(annotation: Any, func: Callable[..., Any]) -> Any:
    """``annotation`` itself, or the value of a string annotation evaluated in ``func``'s
    module and closure (None when that fails)."""
    if not isinstance(annotation, str):
        return annotation
    namespace = dict(getattr(func, "__globals__", {}))
    try:
        namespace.update(inspect.getclosurevars(func).nonlocals)
    except (TypeError, ValueError):
        pass
    namespace.setdefault("typing", typing)
    try:
        return eval(annotation, namespace)  # noqa: S307 - the task's own annotation, as typing does
    except Exception:
        return None  # an annotation we cannot evaluate marks nothing


def _marker(annotation: Any) -> tuple[Optional[Depends], Optional[type[BaseState]]]:
    if isinstance(annotation, Depends):
        return annotation, None
    if get_origin(annotation) is Annotated:
        marks = [m for m in annotation.__metadata__ if isinstance(m, Depends)]
        if marks:
            return marks[-1], None
        return _marker(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            _, state = _marker(arg)
            if state is not None:
                return None, state
    if inspect.isclass(annotation) and issubclass(annotation, BaseState):
        return None, annotation
    return None, None
