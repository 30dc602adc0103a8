"""Loading what a command line names as ``module:attribute`` (an app, a storage factory)."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from typing import Any, TextIO

from qtasks.exc import AppLoadError, QTasksError

_MACHINERY = (__file__, importlib.__file__)
"""Files whose frames an import error's traceback leaves out: they are ours, not the user's."""


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
    except ModuleNotFoundError as exc:
        if not _names_module(exc, module_name):  # the module exists; something it imports does not
            raise _failed_import(exc, module_name, option, spec) from exc
        raise AppLoadError(f"cannot import module {module_name!r} for {option} {spec}: {exc}") from None
    except QTasksError:  # a setting it cannot take, ...: a message that says what to fix
        raise
    except Exception as exc:  # SyntaxError, NameError, ... raised by the module's code
        raise _failed_import(exc, module_name, option, spec) from exc
    try:
        value = getattr(module, attribute)
    except AttributeError:
        raise AppLoadError(f"module {module_name!r} has no attribute {attribute!r} (from {option} {spec})") from None
    if call_functions and inspect.isfunction(value):
        value = value()
    return value


def report_load_error(command: str, error: AppLoadError, stream: TextIO | None = None) -> None:
    """``command: message`` on one line, then the module's traceback when there is one."""
    stream = sys.stderr if stream is None else stream
    print(f"{command}: {error}", file=stream)
    if error.traceback:
        print(error.traceback, end="", file=stream)


def _names_module(exc: ModuleNotFoundError, module_name: str) -> bool:
    """Whether the missing module is ``module_name`` itself (or a package on its path)."""
    return exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + "."))


def _failed_import(exc: Exception, module_name: str, option: str, spec: str) -> AppLoadError:
    """The error for a module whose own code raised while it was imported: the first line says
    what and where, the traceback keeps the user's frames (the import machinery's are dropped)."""
    summary = traceback.TracebackException.from_exception(exc)
    summary.stack = traceback.StackSummary.from_list(
        [frame for frame in summary.stack
         if not frame.filename.startswith("<frozen importlib") and frame.filename not in _MACHINERY])
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" at {exc.filename}, line {exc.lineno}"
    elif summary.stack:
        where = f" at {summary.stack[-1].filename}, line {summary.stack[-1].lineno}"
    first_line = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
    return AppLoadError(f"importing module {module_name!r} for {option} {spec} failed{where}: {first_line} "
                        "(traceback below)", "".join(summary.format()))
