"""Broker URLs: the default, where a configured one comes from, and whether anything listens there."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

DEFAULT_BROKER_URL = "tcp://127.0.0.1:5555"
BROKER_URL_ENV = "QTASKS_BROKER_URL"
_SCHEMES = ("tcp", "ipc", "inproc")


def resolve_broker_url(explicit: str | None = None) -> str:
    """``explicit``, else ``$QTASKS_BROKER_URL``, else the default; checked for shape."""
    url = explicit or os.environ.get(BROKER_URL_ENV) or DEFAULT_BROKER_URL
    return check_url(url)


def check_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _SCHEMES or not rest:
        raise ValueError(
            f"broker URL {url!r} is not a ZeroMQ endpoint; use one like {DEFAULT_BROKER_URL} "
            "(tcp://host:port), ipc:///path/to/socket or inproc://name"
        )
    if scheme == "tcp":
        host, port = _host_port(url)
        if not host or port is None:
            raise ValueError(f"broker URL {url!r} needs a host and a port, e.g. {DEFAULT_BROKER_URL}")
    return url


def _host_port(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname or "", port


def bindable(url: str) -> str:
    """The endpoint to bind: a tcp port of 0 means "any free port" (ZeroMQ spells it ``*``)."""
    host, port = _host_port(url) if url.startswith("tcp://") else ("", None)
    if port == 0:
        return url.rsplit(":", 1)[0] + ":*"
    return url


def is_listening(url: str, timeout: float = 0.5) -> bool:
    """Whether something accepts connections at ``url`` (checked without ZeroMQ, so it is fork-safe)."""
    if url.startswith("tcp://"):
        host, port = _host_port(url)
        if port is None or port == 0:
            return False
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False
    if url.startswith("ipc://"):
        path = url[len("ipc://"):]
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(timeout)
        try:
            probe.connect(path)
            return True
        except OSError:
            return False
        finally:
            probe.close()
    return False
