"""``AsyncPydanticWrapperPlugin`` / ``SyncPydanticWrapperPlugin``: pydantic models as task
arguments and results (optional: ``pip install "qtasks[pydantic]"``).

The first parameter annotated with a ``BaseModel`` subclass (also ``Optional[M]``,
``Annotated[M, ...]`` or a string annotation) is built from the call: from a dict
passed for it, else from the keyword arguments named like the model's fields, else
(when those do not validate) with the missing fields taken from the positional
arguments in field order. A model returned by a task is stored as a plain dict.
"""

from __future__ import annotations

import inspect
import sys
import types
from functools import lru_cache
from typing import Annotated, Any, Callable, Optional, Union, get_args, get_origin

from qtasks.executors.arguments import evaluate_annotation
from qtasks.plugins.base import BasePlugin


def _base_model() -> Optional[type]:
    """pydantic's BaseModel, if the app imported pydantic (no model can exist otherwise)."""
    pydantic = sys.modules.get("pydantic")
    return getattr(pydantic, "BaseModel", None)


def _model_in(annotation: Any, base: type) -> Optional[type]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _model_in(get_args(annotation)[0], base)
    if origin in (Union, types.UnionType):
        return next((m for m in (_model_in(a, base) for a in get_args(annotation)) if m), None)
    if inspect.isclass(annotation) and issubclass(annotation, base):
        return annotation
    return None


@lru_cache(maxsize=None)
def model_parameter(func: Callable[..., Any]) -> Optional[tuple[str, int, Any]]:
    """(name, position, model class) of the first model parameter of ``func``, or None."""
    base = _base_model()
    if base is None:
        return None
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    for index, param in enumerate(parameters):
        model = _model_in(evaluate_annotation(param.annotation, func), base)
        if model is not None:
            return param.name, index, model
    return None


def build_model(func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], skip_first: bool) -> None:
    """Replace the call's raw values by the model instance ``func`` expects (in place)."""
    found = model_parameter(func)
    if found is None:
        return
    name, position, model = found
    given = args[position] if position < len(args) else kwargs.get(name)
    if isinstance(given, model):
        return
    if isinstance(given, dict):  # the model's data, passed for it
        built = _construct(model, name, given)
        if position < len(args):
            args[position] = built
        else:
            kwargs[name] = built
        return
    # its fields, by keyword; when that does not validate, the missing ones positionally,
    # in field order, from the model's own position on
    fields = list(model.model_fields)
    data = {field: kwargs.pop(field) for field in fields if field in kwargs}
    first = max(position, 1 if skip_first else 0)
    leftovers = args[first:]
    if leftovers and not _validates(model, data):
        missing = [field for field in fields if field not in data]
        data.update(zip(missing, leftovers, strict=False))
        del args[first:first + min(len(missing), len(leftovers))]
    kwargs[name] = _construct(model, name, data)


def _validates(model: type, data: dict[str, Any]) -> bool:
    try:
        model(**data)
    except Exception:
        return False
    return True


def _construct(model: type, name: str, data: dict[str, Any]) -> Any:
    try:
        return model(**data)
    except Exception as exc:
        raise ValueError(f"Error while building the model for {name!r}: {exc}") from exc


def dump_model(value: Any) -> Any:
    base = _base_model()
    if base is not None and isinstance(value, base):
        model: Any = value
        return model.model_dump(mode="json")
    return value


class AsyncPydanticWrapperPlugin(BasePlugin):
    """Builds the model parameter on ``task_executor_args_replace``; dumps a model result on
    ``task_executor_after_execute_result_replace``."""

    def __init__(self, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.handlers = {"task_executor_args_replace": self.build,
                         "task_executor_after_execute_result_replace": self.dump}

    def leaves_alone(self, func: Any) -> bool:
        """No model parameter, and pydantic not loaded (no result can be a model) or a return
        annotation that is no model (``qtasks.worker.direct``)."""
        base = _base_model()
        if base is None:
            return True
        if model_parameter(func) is not None:
            return False
        try:
            returned = inspect.signature(func).return_annotation
        except (TypeError, ValueError):
            return False
        if returned is inspect.Signature.empty:
            return False
        returned = evaluate_annotation(returned, func)
        return returned is not Any and _model_in(returned, base) is None

    def build(self, task_executor: Any, args: list[Any], kw: dict[str, Any], **_: Any) -> Optional[dict[str, Any]]:
        func = task_executor.task_func.func
        if model_parameter(func) is None:
            return None
        build_model(func, args, kw, skip_first=task_executor.echo)
        return {"args": args, "kw": kw}

    def dump(self, task_executor: Any, result: Any, **_: Any) -> Optional[dict[str, Any]]:
        base = _base_model()
        if base is None or not isinstance(result, base):
            return None
        return {"result": dump_model(result)}


class SyncPydanticWrapperPlugin(AsyncPydanticWrapperPlugin):
    """The same plugin under the name sync apps use upstream."""
