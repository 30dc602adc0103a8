"""Operating a running broker from the command line: ``qtasks --broker URL dead list|retry|purge``.

These commands talk to the broker as any client does (``-A module:app`` gives the app's
broker URL and limits them to its tasks); an unanswered broker is the same clear
``BrokerUnavailableError`` as in the API, within ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid as uuid_module
from datetime import datetime
from typing import Any, Callable, Optional

from qtasks.brokers import ZmqBroker
from qtasks.client.calls import PendingCall
from qtasks.exc import BrokerUnavailableError, InvalidTaskIdError, QTasksError
from qtasks.progress import progress_reporter
from qtasks.protocol import Dead, TaskSnapshot, unpack_arguments

DEAD_LIST_LIMIT = 1000
RETRY_BATCH = min(1000, Dead.BATCH)
"""Dead letters ``retry --all`` asks the broker to retry per request: the steps of its progress bar."""


def add_commands(commands: Any) -> None:
    dead = commands.add_parser("dead", help="list, retry or purge dead letters (failed for good)",
                               description="Dead letters: tasks that ended error for good.")
    dead_commands = dead.add_subparsers(dest="dead_command", metavar="list|retry|purge", required=True)
    listing = dead_commands.add_parser("list", help="list dead letters, oldest first")
    listing.add_argument("--task", metavar="NAME", help="only those of this task name")
    listing.add_argument("--limit", type=int, default=DEAD_LIST_LIMIT, metavar="N",
                         help=f"show at most N (default {DEAD_LIST_LIMIT})")
    listing.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    retry = dead_commands.add_parser("retry", help="run dead letters again, as new tasks")
    retry.add_argument("uuids", nargs="*", metavar="UUID", help="the dead letters to run again")
    retry.add_argument("--all", action="store_true", help="every dead letter (of --task, of the -A app)")
    retry.add_argument("--task", metavar="NAME", help="with --all: only those of this task name")
    retry.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="with --all: a progress bar on stderr (default: when stderr is a terminal)")
    purge = dead_commands.add_parser("purge", help="delete dead letters")
    purge.add_argument("--task", metavar="NAME", help="only those of this task name")


def run_dead(args: argparse.Namespace, url: str, app_name: Optional[str], timeout: float) -> int:
    broker = ZmqBroker(url=url, connect_timeout=timeout)
    try:
        return _dead(args, broker, app_name)
    except BrokerUnavailableError as exc:
        print(f"qtasks: {exc}", file=sys.stderr)
        return 1
    except QTasksError as exc:
        print(f"qtasks: {exc}", file=sys.stderr)
        return 2
    finally:
        broker.close()


def _ask(broker: ZmqBroker, op: str, app: Optional[str], task: Optional[str], uuids: list[bytes],
         limit: Optional[int]) -> Any:
    start: Callable[[Any], Any] = lambda b: b.dead(op, app, task, uuids, limit)  # noqa: E731
    return PendingCall(broker, start, lambda value: value, broker.connect_timeout).result()


def _dead(args: argparse.Namespace, broker: ZmqBroker, app: Optional[str]) -> int:
    command = args.dead_command
    if command == "list":
        count, found = _ask(broker, "list", app, args.task, [], max(0, args.limit))
        if args.json:
            print(json.dumps({"count": count, "dead_letters": [_describe(s) for s in found]}, indent=2,
                             default=str))
        else:
            _print_table(found, count)
        return 0
    if command == "retry":
        if bool(args.uuids) == bool(args.all):
            print("qtasks: give the UUIDs of the dead letters to run again, or --all", file=sys.stderr)
            return 2
        if args.all:
            return _retry_all(args, broker, app)
        raw = [_uuid(text) for text in args.uuids]
        children = _ask(broker, "retry", app, None, raw, None)
        missing = 0
        for text, child in zip(args.uuids, children, strict=True):
            if child is None:
                missing += 1
                print(f"{text}: not a dead letter (unknown, not failed, or retried already)", file=sys.stderr)
            else:
                print(f"{text} -> {uuid_module.UUID(bytes=child.envelope.uuid)}")
        return 1 if missing else 0
    deleted = _ask(broker, "purge", app, args.task, [], None)
    print(f"purged {deleted} dead letter(s)")
    return 0


def _retry_all(args: argparse.Namespace, broker: ZmqBroker, app: Optional[str]) -> int:
    """Retry the dead letters there are now, oldest first, in batches (a retry that fails again
    while this runs waits for the next ``retry --all``); a bar on a terminal, a summary at the end."""
    count, _ = _ask(broker, "list", app, args.task, [], 0)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = progress_reporter(show and count > 0, count, unit="task", description="retrying dead letters")
    asked = retried = 0
    try:
        while asked < count:
            limit = min(RETRY_BATCH, count - asked)
            asked += limit
            done = sum(s is not None for s in _ask(broker, "retry", app, args.task, [], limit))
            retried += done
            if bar is not None:
                bar(retried)
            if done == 0:  # purged or retried by someone else meanwhile
                break
    finally:
        if bar is not None:
            bar.close()
    gone = f" ({count - retried} were gone already)" if retried < count else ""
    print(f"retried {retried} dead letter(s){gone}")
    return 0


def _uuid(text: str) -> bytes:
    try:
        return uuid_module.UUID(text).bytes
    except ValueError:
        raise InvalidTaskIdError(text) from None


def _describe(snapshot: TaskSnapshot) -> dict[str, Any]:
    envelope = snapshot.envelope
    args, kwargs = unpack_arguments(envelope.payload)
    return {"uuid": str(uuid_module.UUID(bytes=envelope.uuid)), "app": envelope.queue,
            "task_name": envelope.task_name, "args": args, "kwargs": kwargs, "status": snapshot.status,
            "attempts": snapshot.attempts, "updated_at": datetime.fromtimestamp(snapshot.updated_at).isoformat(),
            "traceback": snapshot.traceback}


def _print_table(found: list[TaskSnapshot], count: int) -> None:
    if not found:
        print("no dead letters")
        return
    print(f"{'uuid':36}  {'app':16}  {'task':20}  {'failed at':19}  error")
    for snapshot in found:
        described = _describe(snapshot)
        error = (snapshot.traceback or "").strip().splitlines()[-1:] or [""]
        print(f"{described['uuid']:36}  {described['app'][:16]:16}  {described['task_name'][:20]:20}  "
              f"{described['updated_at'][:19]:19}  {error[0][:80]}")
    if count > len(found):
        print(f"... {count - len(found)} more (--limit)")
