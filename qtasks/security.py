"""CURVE keys: reading them, putting them on sockets, and making new ones.

The one place that knows how QTasks uses ZeroMQ's CURVE security; the client DEALER
(``qtasks.client.drivers``), the worker DEALER (``qtasks.worker.actor``) and the broker's
ROUTER (``broker_daemon.server``) all set their sockets up through it. Keys are files made
by ``zmq.auth.create_certificates`` (``qtasks keys generate DIR``), or 40-character z85 text::

    DIR/broker.key_secret     broker's key pair (secret: mode 0600)  qtasks-broker --curve-secret-key
    DIR/broker.key            broker's public key                    clients' and workers' curve_server_key
    DIR/client.key_secret     a client's key pair                    a client's curve_secret_key
    DIR/clients/client.key    its public key                         the broker's --curve-clients DIR/clients
    DIR/worker.key_secret     a worker's key pair                    a worker's curve_secret_key
    DIR/workers/worker.key    its public key                         the broker's --curve-workers DIR/workers

A secret key file holds the public key too, so a side needs only the broker's public key
and its own secret key file; ``curve_public_key`` is checked against it when given.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import zmq
import zmq.auth
from zmq.utils import z85

from qtasks.exc import ConfigError, KeyFileError

log = logging.getLogger("qtasks.security")

ZAP_DOMAIN = b"qtasks"
CURVE_SETTINGS = ("curve_server_key", "curve_public_key", "curve_secret_key")
"""The ``QueueConfig`` fields of a client's or worker's keys (``QTASKS_CURVE_*`` variables)."""
KEY_LENGTH = 40
"""Characters of a z85 CURVE key (32 bytes)."""
ROLES = ("broker", "client", "worker")
PUBLIC_DIRS = {"broker": "", "client": "clients", "worker": "workers"}
"""Where ``qtasks keys generate`` puts each role's public key, under its directory: the client and
worker folders are ready to be the broker's ``--curve-clients`` and ``--curve-workers``."""


@dataclass(frozen=True)
class ClientKeys:
    """What a client or worker socket needs: the broker's public key and its own key pair (z85)."""

    server_key: bytes
    public_key: bytes
    secret_key: bytes = field(repr=False)

    def apply(self, sock: zmq.Socket[Any], url: str) -> None:
        """Make ``sock`` a CURVE client of the broker (before it connects). ``inproc://`` has no
        handshake, so keys mean nothing there and are left off."""
        if url.startswith("inproc://"):
            return
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.server_key)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public_key)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret_key)

    @property
    def public_text(self) -> str:
        return self.public_key.decode("ascii")


@dataclass(frozen=True)
class ServerKey:
    """The broker's own key pair (z85)."""

    public_key: bytes
    secret_key: bytes = field(repr=False)
    source: str = ""

    def apply(self, sock: zmq.Socket[Any]) -> None:
        """Make ``sock`` a CURVE server whose handshakes the ZAP handler (``broker_daemon.auth``) judges."""
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret_key)
        sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)


# --------------------------------------------------------------------------- reading keys


def _as_z85(text: str) -> Optional[bytes]:
    """``text`` as a z85 key, when it is one."""
    raw = text.strip().encode("ascii", "replace")
    if len(raw) != KEY_LENGTH:
        return None
    try:
        decoded = z85.decode(raw)
    except Exception:  # z85 raises ValueError, KeyError or IndexError on characters outside its alphabet
        return None
    return raw if len(decoded) == 32 else None


def _read_file(what: str, path: str) -> tuple[bytes, Optional[bytes]]:
    """(public, secret or None) from a certificate file, every failure naming the file."""
    if not os.path.exists(path):
        raise KeyFileError(what, path, f"no key file {path!r} (and it is not a 40-character z85 key)")
    if os.path.isdir(path):
        raise KeyFileError(what, path, f"{path!r} is a directory, not a key file")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(what, path, f"cannot read key file {path!r}: {exc}") from exc
    except ValueError as exc:
        raise KeyFileError(what, path, f"{path!r} holds no CURVE key (no public-key line)") from exc
    if _as_z85(public.decode("ascii", "replace")) is None:
        raise KeyFileError(what, path, f"the public key in {path!r} is not a 40-character z85 key")
    if secret is not None and _as_z85(secret.decode("ascii", "replace")) is None:
        raise KeyFileError(what, path, f"the secret key in {path!r} is not a 40-character z85 key")
    return public, secret


def load_public_key(what: str, value: str) -> bytes:
    """A public key: a key file (public or secret: both hold the public key) or z85 text."""
    key = _as_z85(value) if not os.path.exists(value) else None
    if key is not None:
        return key
    return _read_file(what, value)[0]


def load_key_pair(what: str, value: str) -> tuple[bytes, bytes]:
    """(public, secret) from a secret key file or a z85 secret key (its public key is derived)."""
    key = _as_z85(value) if not os.path.exists(value) else None
    if key is not None:
        return zmq.curve_public(key), key
    public, secret = _read_file(what, value)
    if secret is None:
        raise KeyFileError(what, value, f"{value!r} holds only a public key; give the secret key file "
                                        "(the one ending in .key_secret)")
    if zmq.curve_public(secret) != public:
        raise KeyFileError(what, value, f"the public and secret keys in {value!r} do not belong together")
    _warn_if_exposed(value)
    return public, secret


def _warn_if_exposed(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the secret key file %s can be read by other users (mode %o): chmod 600 %s",
                    path, stat.S_IMODE(mode), path)


def client_keys(server_key: Optional[str], public_key: Optional[str],
                secret_key: Optional[str]) -> Optional[ClientKeys]:
    """The keys of a client or worker, from ``QueueConfig.curve_*`` values (None: CURVE not used)."""
    if not (server_key or public_key or secret_key):
        return None
    missing = [name for name, value in (("curve_server_key", server_key), ("curve_secret_key", secret_key))
               if not value]
    if missing:
        raise ConfigError(
            f"CURVE needs both the broker's public key and this side's secret key, and {' and '.join(missing)} "
            "is not set: set it (QueueTasks(curve_server_key=..., curve_secret_key=...), QTASKS_CURVE_SERVER_KEY / "
            "QTASKS_CURVE_SECRET_KEY, or qtasks run --curve-server-key FILE --curve-secret-key FILE), or unset "
            "every curve_* setting to connect without CURVE")
    assert server_key is not None and secret_key is not None
    server = load_public_key("curve_server_key", server_key)
    public, secret = load_key_pair("curve_secret_key", secret_key)
    if public_key:
        given = load_public_key("curve_public_key", public_key)
        if given != public:
            raise KeyFileError("curve_public_key", public_key,
                               f"the public key {public_key!r} does not belong to the secret key {secret_key!r}; "
                               "leave curve_public_key unset (the secret key file holds the public key)")
    return ClientKeys(server, public, secret)


def config_keys(config: Any) -> Optional[ClientKeys]:
    """:func:`client_keys` of a ``QueueConfig``."""
    return client_keys(*(getattr(config, name, None) for name in CURVE_SETTINGS))


def uses_curve(config: Any) -> bool:
    """Whether a ``QueueConfig`` asks for CURVE (without reading any key)."""
    return any(getattr(config, name, None) for name in CURVE_SETTINGS)


def server_key(value: str, what: str = "--curve-secret-key") -> ServerKey:
    """The broker's key pair from its secret key file (or z85 secret key)."""
    public, secret = load_key_pair(what, value)
    return ServerKey(public, secret, value)


# --------------------------------------------------------------------------- making keys


@dataclass(frozen=True)
class GeneratedPair:
    role: str
    public_file: Path
    secret_file: Path


def key_files(directory: Path, name: str, role: str) -> tuple[Path, Path]:
    """(public, secret) file of the key pair ``name`` for ``role``, laid out as the module docstring draws."""
    if role not in ROLES:
        raise ValueError(f"a key's role is one of {', '.join(ROLES)}, got {role!r}")
    if not name or os.sep in name or name.startswith("."):
        raise ValueError(f"a key name is a plain file name such as 'web1', got {name!r}")
    public_dir = directory / PUBLIC_DIRS[role] if PUBLIC_DIRS[role] else directory
    return public_dir / f"{name}.key", directory / f"{name}.key_secret"


def generate_key_pair(directory: Path, name: str, role: str) -> GeneratedPair:
    """Write ``name.key_secret`` (mode 0600) in ``directory`` and ``name.key`` (0644) in the folder of
    its role. Nothing existing is overwritten (FileExistsError names the file).

    The files are made in a private temporary folder (mode 0700) and moved into place, so the
    secret key is never readable by others, not even for a moment."""
    public_file, secret_file = key_files(directory, name, role)
    for target in (public_file, secret_file):
        if target.exists():
            raise FileExistsError(f"{target} exists already; remove it first, or pick another name (--name)")
    public_dir = public_file.parent
    public_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".qtasks-keys-") as private:
        made_public, made_secret = zmq.auth.create_certificates(private, name, metadata={"role": role})
        os.chmod(made_secret, 0o600)
        os.chmod(made_public, 0o644)
        os.replace(made_secret, secret_file)
        os.replace(made_public, public_file)
    return GeneratedPair(role, public_file, secret_file)
