"""Loading what a command line names as ``module:attribute`` (an app, a storage factory)."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

from qtasks.exc import AppLoadError


def load_attribute(spec: str, option: str, example: str, *, call_functions: bool = True) -> Any:
    """The object named by ``module:attribute`` given to ``option`` (the current directory is
    importable); a plain function is called, unless ``call_functions`` is false."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AppLoadError(f"{option} expects module:attribute (e.g. {option} {example}), got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppLoadError(f"cannot import module {module_name!r} for {option} {spec}: {exc}") from exc
    try:
        value = getattr(module, attribute)
    except AttributeError:
        raise AppLoadError(f"module {module_name!r} has no attribute {attribute!r} (from {option} {spec})") from None
    if call_functions and inspect.isfunction(value):
        value = value()
    return value
