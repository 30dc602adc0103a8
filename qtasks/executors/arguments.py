"""What a task function's signature says about its parameters, worked out once per function.

Plugins that fill parameters in (Depends, State, pydantic models) read this instead of
each parsing the signature again. String annotations (``from __future__ import
annotations``) are evaluated in the function's module and closure. ``args_info`` is the
spec's ``ArgMeta`` list a ``task_executor_args_replace`` plugin receives.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Optional, get_args, get_origin


@dataclass(frozen=True)
class Parameter:
    name: str
    position: Optional[int]
    """Where a caller could have passed it positionally (None: keyword-only)."""
    annotation: Any
    """The annotation, evaluated (None when absent or not evaluable)."""
    default: Any

    def supplied(self, args: list[Any], kwargs: dict[str, Any]) -> bool:
        """Whether the call gave a value for it."""
        return self.name in kwargs or (self.position is not None and self.position < len(args))


@dataclass(frozen=True)
class ArgMeta:
    """One parameter of a task function, as upstream's argument plugins see it."""

    name: str
    value: Any
    origin: Any
    raw_type: Any
    annotation: Any
    is_kwarg: bool
    index: Optional[int] = None
    key: Optional[str] = None


@lru_cache(maxsize=None)
def parameters(func: Callable[..., Any]) -> tuple[Parameter, ...]:
    """The named parameters of ``func`` (``*args``/``**kwargs`` left out)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # builtins and the like
        return ()
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    found = []
    for index, param in enumerate(signature.parameters.values()):
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = None if param.annotation is inspect.Parameter.empty else \
            evaluate_annotation(param.annotation, func)
        found.append(Parameter(param.name, index if param.kind in positional else None, annotation,
                               param.default))
    return tuple(found)


def args_info(func: Callable[..., Any]) -> list[ArgMeta]:
    """Upstream's ``ArgMeta`` list of ``func``, built from its signature (not from a call)."""
    return list(_args_info(func))


@lru_cache(maxsize=None)
def _args_info(func: Callable[..., Any]) -> tuple[ArgMeta, ...]:
    info = []
    for param in parameters(func):
        annotation = param.annotation
        type_args = get_args(annotation)
        raw_type = type_args[0] if type_args else annotation
        has_default = param.default is not inspect.Parameter.empty
        info.append(ArgMeta(param.name, param.default if has_default else None, get_origin(annotation),
                            raw_type, annotation, has_default,
                            index=None if has_default else param.position,
                            key=param.name if has_default else None))
    return tuple(info)


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
