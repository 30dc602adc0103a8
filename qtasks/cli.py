"""``qtasks`` / ``python -m qtasks``: serve an app's tasks with worker processes.

``qtasks -A module:app run --processes 8``; the options of ``qtasks`` itself (``-A``, ``--broker``,
``--timeout``) may also follow the sub-command: ``qtasks run -A module:app``.
``qtasks -A module:app stats inspect tasks json=true`` describes the app and its tasks;
``qtasks keys generate DIR`` makes CURVE key pairs (no app needed); ``dashboard`` (or ``web``)
serves the web dashboard (:mod:`qtasks.dashboard`).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import re
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from qtasks.admin import add_commands as add_admin_commands
from qtasks.admin import run_dead
from qtasks.arguments import non_negative_float, port, positive_int, usable_cpus
from qtasks.batch.cli import add_commands as add_batch_commands
from qtasks.batch.cli import run_map
from qtasks.dashboard.command import add_commands as add_dashboard_commands
from qtasks.dashboard.command import run_dashboard
from qtasks.exc import AppLoadError, ConfigError, NotABrokerError
from qtasks.loading import load_attribute, report_load_error
from qtasks.logs import level_argument
from qtasks.ops import cli as ops_cli
from qtasks.urls import resolve_broker_url
from qtasks.version import __version__


def load_app(spec: str) -> Any:
    """The app named by ``module:attribute`` (the current directory is importable)."""
    app = load_attribute(spec, "-A", "app:app")
    from qtasks.base.qtasks import BaseQueueTasks

    if not isinstance(app, BaseQueueTasks):
        raise AppLoadError(f"-A {spec} is a {type(app).__name__}, not a QueueTasks app")
    return app


INSPECT_TARGETS = ("app", "tasks", "task")


def _inspect_argument(item: str) -> tuple[Optional[str], Any]:
    """``k=v`` -> (k, v with true/false, integers and decimals converted); anything else -> (None, item)."""
    key, sep, text = item.partition("=")
    if not sep or not key.isidentifier():
        return None, item
    value: Any = text
    if text.lower() in ("true", "false"):
        value = text.lower() == "true"
    elif re.fullmatch(r"[+-]?\d+", text):
        value = int(text)
    elif re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+)", text):
        value = float(text)
    return key, value


def _stats(app: Any, args: argparse.Namespace) -> int:
    """``stats [--stats-app module:stats] inspect TARGET [extra...]``: print what the target returns."""
    if args.stats_app is None:
        from qtasks.stats import SyncStats

        stats: Any = SyncStats(app)
    else:
        try:
            stats = load_attribute(args.stats_app, "--stats-app", "app:stats")
        except AppLoadError as exc:
            report_load_error("qtasks", exc)
            return 2
        if not callable(getattr(stats, "inspect", None)):
            print(f"qtasks: --stats-app {args.stats_app} is a {type(stats).__name__}, "
                  "not a stats object (SyncStats or AsyncStats)", file=sys.stderr)
            return 2
    inspection = stats.inspect()
    if inspect.iscoroutine(inspection):  # AsyncStats
        inspection = asyncio.run(inspection)
    positional: list[Any] = []
    keyword: dict[str, Any] = {}
    for item in args.extra:
        key, value = _inspect_argument(item)
        if key is None:
            positional.append(value)
        else:
            keyword[key] = value
    method = getattr(inspection, args.target)
    try:
        inspect.signature(method).bind(*positional, **keyword)
    except TypeError as exc:
        print(f"qtasks: stats inspect {args.target}: {exc}", file=sys.stderr)
        return 2
    try:
        output = method(*positional, **keyword)
    except KeyError as exc:  # task(name) of a task the app does not have
        print(f"qtasks: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    print(output)
    return 0





def _keys(args: argparse.Namespace) -> int:
    """``keys generate DIR [--name NAME --role ROLE]``: write CURVE key pairs, secret files mode 0600."""
    from qtasks.security import ROLES, generate_key_pair, key_files

    directory = Path(args.directory)
    if args.name is None:
        wanted = [(role, role) for role in ROLES]
    else:
        role = args.role or (args.name if args.name in ROLES else None)
        if role is None:
            print(f"qtasks: keys generate --name {args.name}: say what the key is for with --role "
                  f"{'|'.join(ROLES)}", file=sys.stderr)
            return 2
        wanted = [(args.name, role)]
    try:
        existing = [f for name, role in wanted for f in key_files(directory, name, role) if f.exists()]
        if existing:  # all or nothing: a half-made set is worse than none
            raise FileExistsError(f"{existing[0]} exists already; remove it first, or pick another DIR or --name")
        directory.mkdir(parents=True, exist_ok=True)
        made = [generate_key_pair(directory, name, role) for name, role in wanted]
    except (OSError, ValueError) as exc:
        print(f"qtasks: keys generate: {exc}", file=sys.stderr)
        return 2
    for pair in made:
        print(f"{pair.role:<7} secret {pair.secret_file}  public {pair.public_file}")
    if args.name is None:
        d = directory
        print(f"""
The broker:  qtasks-broker --bind tcp://0.0.0.0:5555 --curve-secret-key {d / 'broker.key_secret'} \\
                 --curve-clients {d / 'clients'} --curve-workers {d / 'workers'}
Workers:     qtasks -A module:app run --broker tcp://BROKER-HOST:5555 \\
                 --curve-server-key {d / 'broker.key'} --curve-secret-key {d / 'worker.key_secret'}
Clients:     QueueTasks(..., broker_url="tcp://BROKER-HOST:5555", curve_server_key="{d / 'broker.key'}",
                        curve_secret_key="{d / 'client.key_secret'}")
More keys:   qtasks keys generate {d} --name NAME --role client|worker  (the broker reads new ones at once)
Keep the .key_secret files private; hand out broker.key, and give the broker each client's and worker's .key.""")
    return 0


def _use_curve_flags(app: Any, args: argparse.Namespace) -> None:
    """``run --curve-*``: set the app's keys (they win over ``QTASKS_CURVE_*``)."""
    for setting in ("curve_server_key", "curve_public_key", "curve_secret_key"):
        value = getattr(args, setting)
        if value is not None:
            setattr(app.config, setting, value)


SHARED_OPTIONS = ("app", "broker_url", "timeout")
"""The ``qtasks`` options a sub-command also takes after its name (``qtasks run -A app:app``)."""



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qtasks", description="QTasks: serve an app's tasks with worker "
                                                                "processes, and operate a running broker.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-A", "-app", dest="app", metavar="MODULE:APP",
                        help="the app, e.g. -A app:app (before or after the sub-command)")
    parser.add_argument("--broker", dest="broker_url", metavar="URL", default=None,
                        help="the broker to talk to (default: the -A app's, else $QTASKS_BROKER_URL, "
                             "else tcp://127.0.0.1:5555)")
    parser.add_argument("--timeout", type=non_negative_float, default=5.0, metavar="SECONDS",
                        help="how long to wait for the broker to answer (default 5)")
    parser.add_argument("--port", type=port, default=8000,
                        help="with web: the web view's port (upstream's spelling; default 8000)")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    run = commands.add_parser("run", help="serve the app's tasks with worker processes")
    run.add_argument("--processes", type=positive_int, default=usable_cpus(), metavar="N",
                     help="worker processes to start (default: the CPUs this process may use, "
                          f"{usable_cpus()} here)")
    run.add_argument("--broker", metavar="URL", default=None,
                     help="broker to connect to (default: $QTASKS_BROKER_URL, else the app's "
                          "broker URL; a broker is hosted here when none listens there)")
    run.add_argument("--concurrency", type=positive_int, default=None, metavar="K",
                     help="tasks each process runs at once (default: config.max_tasks_process)")
    run.add_argument("--grace", type=non_negative_float, default=None, metavar="SECONDS",
                     help="how long running tasks may take to finish on SIGTERM "
                          "(default: config.shutdown_grace)")
    run.add_argument("--log-level", type=level_argument, default=None, metavar="LEVEL",
                     help="DEBUG, INFO, WARNING, ERROR or CRITICAL (any case); default: "
                          "$QTASKS_LOG_LEVEL, else config.logs_default_level_server (INFO)")
    run.add_argument("--curve-server-key", metavar="FILE", default=None,
                     help="the broker's CURVE public key (broker.key, or z85 text), for a broker started with "
                          "--curve-secret-key (default: $QTASKS_CURVE_SERVER_KEY)")
    run.add_argument("--curve-secret-key", metavar="FILE", default=None,
                     help="the workers' secret key file (worker.key_secret); its public key must be in the "
                          "broker's --curve-workers directory (default: $QTASKS_CURVE_SECRET_KEY)")
    run.add_argument("--curve-public-key", metavar="FILE", default=None,
                     help="the workers' public key, checked against the secret key (optional: the secret key "
                          "file holds it; default: $QTASKS_CURVE_PUBLIC_KEY)")
    keys = commands.add_parser("keys", help="make CURVE key pairs (broker, clients, workers)")
    keys_commands = keys.add_subparsers(dest="keys_command", metavar="generate", required=True)
    generate = keys_commands.add_parser(
        "generate", help="write key pairs into DIR (secret key files with mode 0600)",
        description="Without --name: a broker, a client and a worker key pair. Secret keys go to "
                    "DIR/NAME.key_secret; public keys to DIR/broker.key, DIR/clients/NAME.key and "
                    "DIR/workers/NAME.key, so DIR/clients and DIR/workers are ready to be the broker's "
                    "--curve-clients and --curve-workers directories.")
    generate.add_argument("directory", metavar="DIR", help="where to write the key files (made if missing)")
    generate.add_argument("--name", default=None, help="make one key pair of this name (e.g. web1)")
    generate.add_argument("--role", choices=("broker", "client", "worker"), default=None,
                          help="what the --name key is for (default: the name, when it is broker, client or "
                               "worker)")
    add_dashboard_commands(commands)
    add_admin_commands(commands)
    add_batch_commands(commands)
    ops_cli.add_commands(commands)
    stats = commands.add_parser("stats", help="describe the app: its settings and registered tasks")
    stats.add_argument("--stats-app", metavar="MODULE:STATS", default=None,
                       help="a SyncStats/AsyncStats object to use (default: SyncStats of the app)")
    stats_commands = stats.add_subparsers(dest="stats_command", metavar="inspect", required=True)
    inspect_command = stats_commands.add_parser(
        "inspect", help="print the app, all or some tasks, or one task",
        description="qtasks -A app:app stats inspect tasks json=true; qtasks -A app:app stats inspect task add")
    inspect_command.add_argument("target", choices=INSPECT_TARGETS,
                                 help="what to describe: app, tasks (all, or the names given) or task NAME")
    inspect_command.add_argument("extra", nargs="*", metavar="ARG",
                                 help="arguments for the target: name=value is a keyword (true/false and "
                                      "numbers converted, e.g. json=true), anything else positional")
    _share_options(parser)  # last: every sub-command is registered by now
    return parser


def _share_options(parser: argparse.ArgumentParser) -> None:
    """Let every sub-command (at any depth) also take the :data:`SHARED_OPTIONS` after its name,
    except where it has an option of the same spelling itself (``run --broker``): given there,
    they win over the same option given before the sub-command."""
    shared = [action for action in parser._actions if action.dest in SHARED_OPTIONS]
    for command in _command_parsers(parser):
        taken = command._option_string_actions
        group = None
        for action in shared:
            spellings = [s for s in action.option_strings if s not in taken]
            if not spellings:
                continue
            if group is None:
                group = command.add_argument_group(f"options of {parser.prog} (also before the sub-command)")
            group.add_argument(*spellings, dest=action.dest, type=action.type or str, metavar=action.metavar,
                               help=action.help, default=argparse.SUPPRESS)


def _command_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of ``parser``'s sub-commands, their sub-commands and so on (each once)."""
    found: dict[int, argparse.ArgumentParser] = {}
    pending = [parser]
    while pending:
        for action in pending.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                for command in action.choices.values():
                    if id(command) not in found:
                        found[id(command)] = command
                        pending.append(command)
    return list(found.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command in ("dashboard", "web"):
        return run_dashboard(args, load_app)
    if args.command == "keys":
        return _keys(args)
    if args.command == "dead" and not args.app:
        return run_dead(args, resolve_broker_url(args.broker_url), None, args.timeout)
    if args.command in ops_cli.COMMANDS and not args.app:
        return ops_cli.run(args, resolve_broker_url(args.broker_url), None, args.timeout)
    if not args.app:
        parser.error(f"{args.command} needs the app: give it with -A module:app, e.g. qtasks -A app:app "
                     f"{args.command}")
    try:
        app = load_app(args.app)
    except AppLoadError as exc:
        report_load_error("qtasks", exc)
        return 2
    except ConfigError as exc:
        print(f"qtasks: {exc}", file=sys.stderr)
        return 2
    if args.command == "run":
        try:
            _use_curve_flags(app, args)
            code: int = app._serve(args.processes, concurrency=args.concurrency,
                                   broker_url=args.broker or args.broker_url, grace=args.grace,
                                   log_level=args.log_level)
            return code
        except (RuntimeError, ValueError, NotABrokerError) as exc:
            print(f"qtasks: {exc}", file=sys.stderr)
            return 2
    if args.command == "stats":
        return _stats(app, args)
    if args.command == "dead":
        return run_dead(args, args.broker_url or app.broker.url, app.name, args.timeout)
    if args.command == "map":
        return run_map(args, app)
    if args.command in ops_cli.COMMANDS:
        return ops_cli.run(args, args.broker_url or app.broker.url, app, args.timeout)
    parser.error(f"unknown command {args.command!r}")
    return 2
