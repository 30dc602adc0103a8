"""Broker URLs: the default, where a configured one comes from, and whether anything listens there."""

from __future__ import annotations

import os
import socket
from typing import Union
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


NOTHING, ZEROMQ, STRANGER = "nothing", "zeromq", "stranger"
"""What :func:`probe` finds at a URL: no listener, a ZeroMQ peer, or another kind of server."""

_GREETING_SIZE = 10
"""A ZeroMQ peer (ZMTP 3) greets every connection at once with ``FF 00*8 xx 7F`` (10 bytes)."""


def probe(url: str, timeout: float = 0.5) -> tuple[str, str]:
    """(kind, detail) of the listener at ``url``, told apart by the ZMTP greeting a ZeroMQ
    socket sends on accepting a connection; plain sockets only, so it is fork-safe."""
    address: Union[tuple[str, int], str]
    if url.startswith("tcp://"):
        host, port = _host_port(url)
        if port is None or port == 0:
            return NOTHING, "no fixed port"
        family, address = (socket.AF_INET6 if ":" in host else socket.AF_INET), (host, port)
    elif url.startswith("ipc://"):
        family, address = socket.AF_UNIX, url[len("ipc://"):]
    else:
        return NOTHING, "not a network address"
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(address)
        except OSError as exc:
            return NOTHING, exc.strerror or str(exc)
        greeting = b""
        try:
            while len(greeting) < _GREETING_SIZE:
                chunk = sock.recv(_GREETING_SIZE - len(greeting))
                if not chunk:
                    break
                greeting += chunk
        except OSError:  # a timeout: the listener waits for us to speak first
            pass
    finally:
        sock.close()
    if len(greeting) == _GREETING_SIZE and greeting[0] == 0xFF and greeting[-1] == 0x7F:
        return ZEROMQ, "a ZeroMQ peer"
    if not greeting:
        return STRANGER, f"it accepted the connection but sent no ZeroMQ greeting within {timeout:g} s"
    return STRANGER, f"it answered {greeting[:16]!r}, not a ZeroMQ greeting"
