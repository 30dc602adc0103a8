"""What a dashboard process is told: where the broker is, where to listen, and who may look.

The rule that matters: a dashboard listens on a loopback address unless it has a password.
Without one, anyone who reaches the port could read every task's arguments and retry or
cancel tasks, so a bind to any other address is refused before anything listens.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from qtasks.exc import ConfigError
from qtasks.urls import is_loopback_host

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
PASSWORD_ENV = "QTASKS_DASHBOARD_PASSWORD"
MAX_PASSWORD_LENGTH = 1024
MIN_REFRESH = 0.2


@dataclass(frozen=True)
class DashboardSettings:
    broker_url: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    password: str | None = field(default=None, repr=False)
    app_name: str | None = None
    """Given with ``-A``: the broker is asked about this app's tasks only."""
    timeout: float = 5.0
    """How long one question to the broker may take before the page says it does not answer."""
    refresh: float = 1.0
    """Seconds between two live updates of an open page."""
    curve_options: dict[str, Any] = field(default_factory=dict, repr=False)
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    """Signs the session cookie; new for each process, so a restart logs everyone out."""
    client_threads: int = 2
    """Threads that talk to the broker, each with its own client (ZeroMQ sockets stay in one thread)."""

    def __post_init__(self) -> None:
        if self.password is not None and not self.password:
            raise ConfigError(f"the dashboard password is empty: give a real one (--password or ${PASSWORD_ENV}), "
                              "or none at all to serve on loopback only")
        if self.password is not None and len(self.password) > MAX_PASSWORD_LENGTH:
            raise ConfigError(f"the dashboard password is longer than {MAX_PASSWORD_LENGTH} characters")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is not a TCP port (0 to 65535)")
        if self.refresh < MIN_REFRESH:
            raise ConfigError(f"refresh every {self.refresh:g} s is too often: use at least {MIN_REFRESH:g} s")
        if self.client_threads < 1:
            raise ConfigError("the dashboard needs at least one thread to talk to the broker")
        if not self.loopback and self.password is None:
            raise ConfigError(
                f"refusing to serve the dashboard on {self.host}, which other machines can reach, without a "
                f"password: anyone there could read task arguments and retry or cancel tasks. Set one with "
                f"${PASSWORD_ENV} (or --password), or bind a loopback address such as {DEFAULT_HOST}:{self.port}")

    @property
    def loopback(self) -> bool:
        return is_loopback_host(self.host)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"



def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT``, ``HOST`` (port 8080) or ``:PORT`` (host 127.0.0.1); port 0 picks a free one."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"--bind {text!r}: write an IPv6 address as [ADDRESS]:PORT, e.g. [::1]:8080")
        port_text = rest[1:]
    elif text.count(":") > 1:
        raise ConfigError(f"--bind {text!r}: write an IPv6 address in brackets, e.g. [::1]:8080")
    else:
        host, _, port_text = text.partition(":")
    host = host or DEFAULT_HOST
    if not port_text:
        return host, DEFAULT_PORT
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"--bind {text!r}: the port must be a number, e.g. {DEFAULT_HOST}:{DEFAULT_PORT}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"--bind {text!r}: port {port} is not a TCP port (0 to 65535)")
    return host, port


def password_from(explicit: str | None) -> str | None:
    """``--password``, else ``$QTASKS_DASHBOARD_PASSWORD``, else none."""
    if explicit is not None:
        return explicit
    return os.environ.get(PASSWORD_ENV) or None
