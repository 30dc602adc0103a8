"""``qtasks --broker URL status|inspect|tasks|cancel|retry``: a running broker, seen from the shell.

Each command is one ``OpsClient`` call (``-A module:app`` gives the app's broker URL, keys and
name); an unanswered broker is the same ``BrokerUnavailableError`` as in the API, within
``--timeout`` seconds. ``status --watch`` redraws every second until Ctrl+C.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Optional, TextIO

from qtasks.exc import BrokerUnavailableError, QTasksError
from qtasks.ops.client import STATUSES, OpsClient
from qtasks.ops.render import status_text, task_text, tasks_text
from qtasks.protocol import Ops
from qtasks.security import CURVE_SETTINGS

COMMANDS = ("status", "inspect", "tasks", "cancel", "retry")
WATCH_EVERY = 1.0
MAX_CHAIN = 100
"""Earlier attempts ``inspect`` follows back along a retry chain."""

_HOME_CLEAR = "\x1b[H\x1b[J"
_ALTERNATE_ON, _ALTERNATE_OFF = "\x1b[?1049h\x1b[?25l", "\x1b[?25h\x1b[?1049l"


def _limit(text: str) -> int:
    value = int(text)
    if not 0 <= value <= Ops.MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be 0 to {Ops.MAX_LIMIT}, got {text}")
    return value


def add_commands(commands: Any) -> None:
    keys = argparse.ArgumentParser(add_help=False)
    for setting, what in (("curve_server_key", "the broker's public key (broker.key)"),
                          ("curve_secret_key", "this client's secret key file (client.key_secret)"),
                          ("curve_public_key", "this client's public key (optional)")):
        keys.add_argument("--" + setting.replace("_", "-"), dest=setting, metavar="FILE", default=None,
                          help=f"for a broker with CURVE: {what} (default: the -A app's, else "
                               f"$QTASKS_{setting.upper()})")
    status = commands.add_parser("status", parents=[keys], help="the broker's queues, workers, rates and failures")
    status.add_argument("--watch", action="store_true", help="redraw every second until Ctrl+C")
    status.add_argument("--json", action="store_true", help="one JSON document instead of text")
    inspect = commands.add_parser("inspect", parents=[keys],
                                  help="one task: arguments, result, steps, retry chain")
    inspect.add_argument("uuid", metavar="UUID")
    inspect.add_argument("--json", action="store_true", help="one JSON document instead of text")
    tasks = commands.add_parser("tasks", parents=[keys], help="list task records, newest first")
    tasks.add_argument("--status", choices=STATUSES, default=None, help="only tasks with this status")
    tasks.add_argument("--name", metavar="TASK", default=None, help="only tasks of this name")
    tasks.add_argument("--limit", type=_limit, default=50, metavar="K",
                       help=f"show at most K (default 50, at most {Ops.MAX_LIMIT})")
    tasks.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    cancel = commands.add_parser("cancel", parents=[keys], help="cancel a task (a running one is told to stop)")
    cancel.add_argument("uuid", metavar="UUID")
    cancel.add_argument("--reason", metavar="TEXT", default=None, help="why (kept in the task's record)")
    retry = commands.add_parser("retry", parents=[keys],
                                help="run a failed or cancelled task again (a new task)")
    retry.add_argument("uuid", metavar="UUID")


def run(args: argparse.Namespace, url: str, app: Any, timeout: float, out: TextIO = sys.stdout) -> int:
    """Run the ops command in ``args`` against ``url`` (``app``: the -A app, for its name and keys)."""
    keys = {s: getattr(args, s, None) or (getattr(app.config, s, None) if app is not None else None)
            for s in CURVE_SETTINGS}
    try:
        client = OpsClient(url, timeout=max(timeout, 0.001), app=app.name if app is not None else None, **keys)
    except QTasksError as exc:
        print(f"qtasks: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "status" and args.watch:
            return _watch(client, out)
        return _once(args, client, out)
    except BrokerUnavailableError as exc:
        print(f"qtasks: {exc}", file=sys.stderr)
        return 1
    except (QTasksError, ValueError) as exc:
        print(f"qtasks: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()


def _once(args: argparse.Namespace, client: OpsClient, out: TextIO) -> int:
    command = args.command
    if command == "status":
        status = client.status()
        print(json.dumps(status, indent=2) if args.json else status_text(status), file=out)
    elif command == "tasks":
        found = client.tasks(status=args.status, name=args.name, limit=args.limit)
        print(json.dumps(found, indent=2) if args.json else tasks_text(found), file=out)
    elif command == "inspect":
        task = client.inspect(args.uuid)
        if args.json:
            print(json.dumps(task, indent=2), file=out)
        else:
            print(task_text(task, _chain(client, task)), file=out)
    elif command == "cancel":
        if not client.cancel(args.uuid, args.reason):
            status = client.inspect(args.uuid)["status"]
            print(f"qtasks: task {args.uuid} was not cancelled: it had ended already ({status})", file=sys.stderr)
            return 1
        print(f"cancelled {args.uuid}", file=out)
    else:  # retry
        print(f"{args.uuid} -> {client.retry(args.uuid)}", file=out)
    return 0


def _chain(client: OpsClient, task: dict[str, Any]) -> list[str]:
    """The task's retry chain, oldest attempt first."""
    earlier: list[str] = []
    parent: Optional[str] = task.get("retry_of")
    while parent is not None and len(earlier) < MAX_CHAIN:
        earlier.append(parent)
        try:
            parent = client.inspect(parent).get("retry_of")
        except QTasksError:  # expired: the chain is known from here on
            break
    return [*reversed(earlier), task["uuid"], *task.get("retries", [])]


def _watch(client: OpsClient, out: TextIO) -> int:
    """Redraw the status every second until Ctrl+C (exit 0, the terminal as it was)."""
    screen = out.isatty()
    try:
        if screen:
            out.write(_ALTERNATE_ON)
        while True:
            started = time.monotonic()
            try:
                text = status_text(client.status())
            except BrokerUnavailableError as exc:
                text = f"qtasks: {exc}\n(trying again every second; Ctrl+C ends)"
            out.write(_HOME_CLEAR + text + "\n\n(Ctrl+C ends)\n")
            out.flush()
            time.sleep(max(0.0, WATCH_EVERY - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return 0
    finally:
        if screen:
            out.write(_ALTERNATE_OFF)
            out.flush()
