"""``qtasks`` / ``python -m qtasks``: serve an app's tasks with worker processes.

Options go before the sub-command, as upstream: ``qtasks -A module:app run --processes 8``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from typing import Any, Sequence

from qtasks.exc import AppLoadError, NotABrokerError
from qtasks.logs import level_argument


def load_app(spec: str) -> Any:
    """The app named by ``module:attribute`` (the current directory is importable)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AppLoadError(f"-A expects module:attribute (e.g. -A app:app), got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppLoadError(f"cannot import module {module_name!r} for -A {spec}: {exc}") from exc
    try:
        app = getattr(module, attribute)
    except AttributeError:
        raise AppLoadError(f"module {module_name!r} has no attribute {attribute!r} (from -A {spec})") from None
    if inspect.isfunction(app):
        app = app()
    from qtasks.base.qtasks import BaseQueueTasks

    if not isinstance(app, BaseQueueTasks):
        raise AppLoadError(f"-A {spec} is a {type(app).__name__}, not a QueueTasks app")
    return app


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="QTasks", description="Run QTasks worker processes.")
    parser.add_argument("-A", "-app", dest="app", metavar="MODULE:APP",
                        help="the app to serve, e.g. -A app:app")
    parser.add_argument("--port", type=int, default=8000, help="port for the web sub-command (unused)")
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="serve the app's tasks with worker processes")
    run.add_argument("--processes", type=_positive_int, default=4, metavar="N",
                     help="worker processes to start (default 4)")
    run.add_argument("--broker", metavar="URL", default=None,
                     help="broker to connect to (default: $QTASKS_BROKER_URL, else the app's "
                          "broker URL; a broker is hosted here when none listens there)")
    run.add_argument("--concurrency", type=_positive_int, default=None, metavar="K",
                     help="tasks each process runs at once (default: config.max_tasks_process)")
    run.add_argument("--grace", type=_non_negative_float, default=None, metavar="SECONDS",
                     help="how long running tasks may take to finish on SIGTERM "
                          "(default: config.shutdown_grace)")
    run.add_argument("--log-level", type=level_argument, default=None, metavar="LEVEL",
                     help="DEBUG, INFO, WARNING, ERROR or CRITICAL (any case); default: "
                          "$QTASKS_LOG_LEVEL, else config.logs_default_level_server (INFO)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if not args.app:
        parser.error("give the app with -A module:app before the sub-command, e.g. qtasks -A app:app run")
    try:
        app = load_app(args.app)
    except AppLoadError as exc:
        print(f"qtasks: {exc}", file=sys.stderr)
        return 2
    if args.command == "run":
        try:
            code: int = app._serve(args.processes, concurrency=args.concurrency,
                                   broker_url=args.broker, grace=args.grace, log_level=args.log_level)
            return code
        except (RuntimeError, ValueError, NotABrokerError) as exc:
            print(f"qtasks: {exc}", file=sys.stderr)
            return 2
    parser.error(f"unknown command {args.command!r}")
    return 2
