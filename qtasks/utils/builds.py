"""``_build_task``: a dataclass instance with more fields (upstream's testing plugin uses it)."""

from __future__ import annotations

from dataclasses import field, fields, is_dataclass, make_dataclass
from typing import Any


def _build_task(instance: Any, **values: Any) -> Any:
    """A copy of the dataclass ``instance`` with ``values`` set; names it lacks become new fields."""
    if not is_dataclass(instance) or isinstance(instance, type):
        raise TypeError(f"_build_task needs a dataclass instance, got {instance!r}")
    cls = type(instance)
    known = {f.name for f in fields(cls)}
    new = [(name, type(value), field(default=None)) for name, value in values.items() if name not in known]
    target = make_dataclass(cls.__name__, new, bases=(cls,)) if new else cls
    current = {f.name: getattr(instance, f.name) for f in fields(cls)}
    return target(**{**current, **values})
