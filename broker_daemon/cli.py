"""``qtasks-broker``: the broker daemon's command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any, Callable, Sequence

import zmq

from broker_daemon.auth import CurveAuth, curve_auth, exposure_refusal
from broker_daemon.core import DEFAULT_RESULT_TTL
from broker_daemon.limits import DEFAULT_MAX_QUEUED_BYTES, DEFAULT_MAX_QUEUED_TASKS, QueueLimits
from broker_daemon.metrics import MetricsServer
from broker_daemon.server import RESTORE_BAR_MIN, Broker
from broker_daemon.storage import Storage
from broker_daemon.storage.sqlite import SQLiteStorage
from qtasks.exc import AppLoadError, ConfigError, DataDirError
from qtasks.loading import load_attribute, report_load_error
from qtasks.logs import configure_process_logging, configured_level, level_argument
from qtasks.protocol import DEFAULT_MAX_MESSAGE_SIZE
from qtasks.urls import DEFAULT_BROKER_URL, check_url, is_loopback, is_loopback_host
from qtasks.version import __version__


def _positive(kind: Callable[[str], float]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qtasks-broker",
        description="The QTasks broker daemon: holds the queues and task records and routes tasks "
                    "to worker processes (`qtasks -A module:app run`).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--bind", default=DEFAULT_BROKER_URL, metavar="URL",
                        help=f"endpoint to serve (default {DEFAULT_BROKER_URL}; port 0 picks a free port)")
    parser.add_argument("--log-level", type=level_argument, default=None, metavar="LEVEL",
                        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (any case); default: "
                             "$QTASKS_LOG_LEVEL, else INFO")
    parser.add_argument("--heartbeat-interval", type=_positive(float), default=1.0, metavar="SECONDS",
                        help="seconds between heartbeats to and from workers (default 1.0)")
    parser.add_argument("--heartbeat-liveness", type=_positive(int), default=3, metavar="N",
                        help="missed heartbeats after which a worker is declared lost (default 3)")
    parser.add_argument("--max-attempts", type=_positive(int), default=3, metavar="N",
                        help="deliveries of a task whose worker keeps being lost before it ends "
                             "as error (default 3)")
    parser.add_argument("--max-message-size", type=_positive(int), default=DEFAULT_MAX_MESSAGE_SIZE,
                        metavar="BYTES", help="largest message accepted; bigger ones drop the peer "
                                              f"(default {DEFAULT_MAX_MESSAGE_SIZE})")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="keep tasks, results, State and dead letters in SQLite in DIR, so a restart loses "
                             "nothing (default: in memory)")
    parser.add_argument("--fsync", action="store_true",
                        help="with --data-dir: sync every commit to disk, so even a power cut loses nothing "
                             "acknowledged (default: a crash of this process loses nothing; a power cut may "
                             "lose the last commits)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="with --data-dir: draw a progress bar on stderr while the unfinished tasks are "
                             f"taken up at start (default: when stderr is a terminal and there are "
                             f"{RESTORE_BAR_MIN:,} or more); the log says how many, and how long it took, either way")
    parser.add_argument("--result-ttl", type=_not_negative, default=DEFAULT_RESULT_TTL, metavar="SECONDS",
                        help=f"keep ended task records this long (default {DEFAULT_RESULT_TTL:g}, a day; 0 keeps "
                             "them); dead letters stay until retried or purged")
    parser.add_argument("--max-queued-tasks", type=_positive(int), default=DEFAULT_MAX_QUEUED_TASKS, metavar="N",
                        help=f"unfinished tasks one queue may hold; a submit past it is refused "
                             f"(default {DEFAULT_MAX_QUEUED_TASKS})")
    parser.add_argument("--max-queued-bytes", type=_positive(int), default=DEFAULT_MAX_QUEUED_BYTES,
                        metavar="BYTES", help=f"bytes of task arguments one queue may hold; a submit past it is "
                                              f"refused (default {DEFAULT_MAX_QUEUED_BYTES})")
    parser.add_argument("--storage", default=None, metavar="MODULE:FACTORY",
                        help="where task records are kept: a Storage, or a callable returning one "
                             "(default: in memory, gone when the broker stops)")
    metrics = parser.add_argument_group("metrics", "Prometheus metrics over HTTP (names in the README).")
    metrics.add_argument("--metrics", metavar="HOST:PORT", default=None, type=_host_port,
                         help="serve /metrics there, e.g. 127.0.0.1:9464 (port 0 picks a free one); only "
                              "loopback addresses, unless --metrics-public")
    metrics.add_argument("--metrics-public", action="store_true",
                         help="let --metrics bind a non-loopback address: the metrics have no authentication "
                              "and name your tasks and queues, so expose them only on a network you trust")
    security = parser.add_argument_group(
        "authentication", "CURVE keys (make them with `qtasks keys generate DIR`). Without them only "
                          "loopback and local endpoints are served, unless --insecure is given.")
    security.add_argument("--curve-secret-key", metavar="FILE", default=None,
                          help="the broker's secret key file (broker.key_secret): serve CURVE only")
    security.add_argument("--curve-clients", metavar="DIR", default=None,
                          help="directory of public key files (*.key) that may submit, wait, get, cancel, "
                               "watch, ping, flush, read stats and use State")
    security.add_argument("--curve-workers", metavar="DIR", default=None,
                          help="directory of public key files (*.key) that may also serve tasks")
    security.add_argument("--insecure", action="store_true",
                          help="serve a non-loopback address without keys (only on a network you trust)")
    return parser


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"give HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464; got {text!r}")
    return host, int(port)



def _not_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def load_curve(args: argparse.Namespace) -> CurveAuth | None:
    """The CURVE set-up the flags ask for (None: none); ConfigError/KeyFileError name what is wrong."""
    if args.curve_secret_key is None:
        given = [flag for flag, value in (("--curve-clients", args.curve_clients),
                                          ("--curve-workers", args.curve_workers)) if value]
        if given:
            raise ConfigError(f"{' and '.join(given)} need --curve-secret-key FILE, the broker's own secret key "
                              "(qtasks keys generate DIR makes DIR/broker.key_secret)")
        return None
    return curve_auth(args.curve_secret_key, args.curve_clients, args.curve_workers)


def load_storage(spec: str) -> Storage:
    """The storage ``--storage module:factory`` names: a Storage, or what calling the factory gives."""
    value = load_attribute(spec, "--storage", "mystorage:make_storage", call_functions=False)
    if not isinstance(value, Storage) and callable(value):
        try:
            value = value()
        except Exception as exc:
            raise AppLoadError(f"--storage {spec}: the factory failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(value, Storage):
        raise AppLoadError(f"--storage {spec} gave a {type(value).__name__}, not a broker_daemon.storage.Storage: "
                           "subclass Storage (or MemoryStorage) and implement add_many, get, save, "
                           "delete_ended and __len__")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_process_logging(configured_level(args.log_level, logging.INFO))
    except ValueError as exc:
        print(f"qtasks-broker: {exc}", file=sys.stderr)
        return 2
    if args.storage and args.data_dir:
        print("qtasks-broker: give --data-dir or --storage, not both (a storage of your own keeps the data "
              "where it wants)", file=sys.stderr)
        return 2
    try:
        check_url(args.bind)
        curve = load_curve(args)
        refusal = exposure_refusal(args.bind, curve is not None, args.insecure)
        if refusal is not None:  # before anything binds: an open port without keys is never up, not even briefly
            raise ConfigError(refusal)
        if args.metrics is not None and not args.metrics_public and not is_loopback_host(args.metrics[0]):
            raise ConfigError(f"--metrics {args.metrics[0]}:{args.metrics[1]} is not a loopback address, and the "
                              "metrics have no authentication: bind 127.0.0.1 (and let Prometheus reach it through "
                              "a tunnel or a proxy), or add --metrics-public on a network you trust")
        storage = load_storage(args.storage) if args.storage else None
        if args.data_dir:
            storage = SQLiteStorage(args.data_dir, fsync=args.fsync)
    except AppLoadError as exc:
        report_load_error("qtasks-broker", exc)
        return 2
    except (ValueError, DataDirError) as exc:
        print(f"qtasks-broker: {exc}", file=sys.stderr)
        return 2
    if args.insecure and curve is None and not is_loopback(args.bind):
        logging.getLogger("qtasks.broker").warning(
            "serving %s without authentication (--insecure): anyone who reaches it can submit tasks", args.bind)
    limits = QueueLimits(args.max_queued_tasks, args.max_queued_bytes)
    broker = Broker(args.bind, storage=storage, result_ttl=args.result_ttl, limits=limits,
                    max_attempts=args.max_attempts,
                    heartbeat_interval=args.heartbeat_interval,
                    heartbeat_liveness=args.heartbeat_liveness,
                    max_message_size=args.max_message_size, curve=curve, progress=args.progress)
    metrics = None
    if args.metrics is not None:
        try:
            metrics = MetricsServer(broker.core, *args.metrics)
        except OSError as exc:
            print(f"qtasks-broker: cannot serve metrics at {args.metrics[0]}:{args.metrics[1]}: {exc.strerror}. "
                  "Pick another --metrics HOST:PORT.", file=sys.stderr)
            return 2
    try:
        endpoint = broker.bind()
    except zmq.ZMQError as exc:
        if metrics is not None:
            metrics.close()
        print(f"qtasks-broker: cannot bind {args.bind}: {exc.strerror}. Is another broker running "
              "there? Stop it, or pick another endpoint with --bind.", file=sys.stderr)
        return 2
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: broker.stop())
    print(f"qtasks-broker: listening at {endpoint}", flush=True)
    if metrics is not None:
        print(f"qtasks-broker: metrics at {metrics.url}", flush=True)
    try:
        broker.serve_forever()
    finally:
        if metrics is not None:
            metrics.close()
    logging.getLogger("qtasks.broker").info("broker stopped")
    return 0
