"""``qtasks dashboard [--broker URL] [--bind HOST:PORT] [--password PW]`` (and ``web``, upstream's name).

Parsing needs no web library; serving imports Starlette and uvicorn (the ``qtasks[dashboard]``
extra) and says how to install them when they are missing. The listening socket is made
here, before uvicorn runs, so ``--bind 127.0.0.1:0`` works and the real port is printed.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from dataclasses import replace
from functools import partial
from typing import Any, Callable

from qtasks.dashboard.gateway import OpsClientLike
from qtasks.dashboard.settings import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    PASSWORD_ENV,
    DashboardSettings,
    parse_bind,
    password_from,
)
from qtasks.exc import AppLoadError, ConfigError
from qtasks.logs import configure_process_logging, configured_level, level_argument
from qtasks.urls import resolve_broker_url

MAX_CONNECTIONS = 64
"""Connections and requests served at once; more get 503 (uvicorn's limit_concurrency)."""
MAX_HEADER_BYTES = 16 * 1024
_CURVE_SETTINGS = ("curve_server_key", "curve_public_key", "curve_secret_key")


def add_commands(commands: Any) -> None:
    dashboard = commands.add_parser(
        "dashboard", help="a live web page of the broker, with retry and cancel",
        description="Serve the dashboard: the same facts as `status`, live, a task list and task pages, "
                    "with retry and cancel. It talks to the broker as a client does. It listens on "
                    f"{DEFAULT_HOST} unless given --bind; any other address needs a password.")
    _options(dashboard, f"where to listen (default {DEFAULT_HOST}:{DEFAULT_PORT}; port 0 picks a free one)")
    web = commands.add_parser("web", help="the dashboard, under upstream's name (on --port)",
                              description="Same as `dashboard`; without --bind it listens on 127.0.0.1:PORT "
                                          "with PORT from --port (before or after the sub-command).")
    _options(web, "where to listen (default 127.0.0.1 and --port)")
    web.add_argument("--port", type=int, default=argparse.SUPPRESS,
                     help="the port (upstream's spelling: qtasks web -A app:app --port 8000)")


def _options(parser: argparse.ArgumentParser, bind_help: str) -> None:
    parser.add_argument("--broker", metavar="URL", default=None,
                        help="the broker to show (default: the -A app's, else $QTASKS_BROKER_URL, else "
                             "tcp://127.0.0.1:5555)")
    parser.add_argument("--bind", metavar="HOST:PORT", default=None, help=bind_help)
    parser.add_argument("--password", default=None,
                        help=f"every page then needs it (default: ${PASSWORD_ENV}, which keeps it out of the "
                             "process list); required to listen on a non-loopback address")
    parser.add_argument("--refresh", type=float, default=1.0, metavar="SECONDS",
                        help="how often open pages update themselves (default 1)")
    parser.add_argument("--log-level", type=level_argument, default=None, metavar="LEVEL",
                        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default: $QTASKS_LOG_LEVEL, else INFO)")


def run_dashboard(args: argparse.Namespace, load_app: Callable[[str], Any]) -> int:
    """The ``dashboard`` / ``web`` sub-command: serve until SIGTERM or Ctrl+C (``load_app`` reads ``-A``)."""
    try:
        settings = settings_from(args, load_app)
        configure_process_logging(configured_level(args.log_level, logging.INFO))
    except (ConfigError, AppLoadError, ValueError) as exc:
        print(f"qtasks: {exc}", file=sys.stderr)
        return 2
    from qtasks.ops.client import OpsClient

    factory = partial(OpsClient, settings.broker_url, timeout=settings.timeout, app=settings.app_name,
                      **settings.curve_options)
    return serve(settings, factory)


def settings_from(args: argparse.Namespace, load_app: Callable[[str], Any]) -> DashboardSettings:
    broker_url = args.broker or args.broker_url
    app_name = None
    curve: dict[str, Any] = {}
    if args.app:
        app = load_app(args.app)
        broker_url = broker_url or app.broker.url
        app_name = app.name
        curve = {name: value for name in _CURVE_SETTINGS if (value := getattr(app.config, name, None))}
    bind = args.bind
    if bind is None:
        bind = f"{DEFAULT_HOST}:{args.port}" if args.command == "web" else f"{DEFAULT_HOST}:{DEFAULT_PORT}"
    host, port = parse_bind(bind)
    return DashboardSettings(broker_url=resolve_broker_url(broker_url), host=host, port=port,
                             password=password_from(args.password), app_name=app_name, timeout=args.timeout,
                             refresh=args.refresh, curve_options=curve)


def serve(settings: DashboardSettings, client_factory: Callable[[], OpsClientLike]) -> int:
    try:
        import uvicorn

        from qtasks.dashboard.app import create_app
    except ImportError as exc:
        print(f"qtasks: the dashboard needs its web libraries ({exc.name} is missing): "
              "python -m pip install 'qtasks[dashboard]'", file=sys.stderr)
        return 2
    try:
        listener = _listen(settings.host, settings.port)
    except OSError as exc:
        print(f"qtasks: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}; pick another "
              "--bind (port 0 picks a free one)", file=sys.stderr)
        return 2
    settings = replace(settings, port=listener.getsockname()[1])
    config = uvicorn.Config(create_app(settings, client_factory), log_config=None, access_log=False,
                            limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=5, server_header=False,
                            proxy_headers=False, h11_max_incomplete_event_size=MAX_HEADER_BYTES, lifespan="on")
    server = uvicorn.Server(config)
    print(f"qtasks dashboard: serving {settings.base_url} for the broker at {settings.broker_url}"
          f"{' (password required)' if settings.password else ''}", flush=True)
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()
    return 0 if server.started else 1


def _stopped(signum: int, frame: Any) -> None:
    """uvicorn shuts down on SIGTERM/SIGINT, then raises the signal again for the handler it found:
    this one, so the process ends with code 0 instead of dying of the signal (or a KeyboardInterrupt)."""
    raise SystemExit(0)


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, made with ``IPPROTO_TCP``: asyncio sets TCP_NODELAY only on connections of
    such sockets, and without it a kept-alive response whose head and body go out in two writes
    waits about 40 ms for the browser's delayed ACK."""
    address = "127.0.0.1" if host == "localhost" else host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    return listener
