"""Broker URLs: the default, where a configured one comes from, and whether anything listens there."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Optional, Union
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


def is_loopback(url: str) -> bool:
    """Whether ``url`` is reachable from this machine only: ``ipc://``, ``inproc://``, or tcp on
    127.0.0.0/8, ``::1`` or ``localhost``. Other names are not resolved (what a name means can
    change after the check), so they count as open addresses, as ``*`` and ``0.0.0.0`` do."""
    scheme = url.partition("://")[0]
    if scheme in ("ipc", "inproc"):
        return True
    return is_loopback_host(_host_port(url)[0])


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ``::1`` (with or without brackets) and ``localhost``; other names are not
    resolved (what a name means can change after the check)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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


_GREETING = b"\xff" + b"\x00" * 7 + b"\x01\x7f\x03"
"""The start of a ZMTP 3 greeting (signature and major version): enough for a ZeroMQ peer to send
the rest of its own, which names its security mechanism."""


def security_mechanism(url: str, timeout: float = 0.5) -> Optional[str]:
    """The security mechanism the ZeroMQ peer listening at ``url`` speaks (``"NULL"``: none,
    ``"CURVE"``), read from its greeting; None when it cannot be told (no listener, not ZeroMQ,
    inproc). Plain sockets only, so it is fork-safe and touches no ZeroMQ context."""
    address: Union[tuple[str, int], str]
    if url.startswith("tcp://"):
        host, port = _host_port(url)
        if port is None or port == 0:
            return None
        family, address = (socket.AF_INET6 if ":" in host else socket.AF_INET), (host, port)
    elif url.startswith("ipc://"):
        family, address = socket.AF_UNIX, url[len("ipc://"):]
    else:
        return None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    greeting = b""
    try:
        sock.connect(address)
        sock.sendall(_GREETING)
        while len(greeting) < 64:
            chunk = sock.recv(64 - len(greeting))
            if not chunk:
                break
            greeting += chunk
    except OSError:
        pass
    finally:
        sock.close()
    if len(greeting) < 32 or greeting[0] != 0xFF or greeting[10] < 3:
        return None
    return greeting[12:32].rstrip(b"\0").decode("ascii", "replace") or None
