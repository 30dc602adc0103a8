"""Who may do what at the broker: CURVE keys, their roles, and the ZAP handler that checks them.

With ``--curve-secret-key`` the broker's ROUTER is a CURVE server, and every handshake asks
the ZAP handler (ZeroMQ's authentication protocol, RFC 27/ZAP) whether the peer's key may
in. The handler is a REP socket in the broker's own poll loop, so judging a handshake takes
no thread and no lock (pyzmq's ``Authenticator`` is a coroutine meant for a thread of its
own or an asyncio loop; the broker has neither)::

    handshake ─▶ ZAP request [version, id, domain, address, identity, "CURVE", public key]
                 ─▶ KeyRing.role(key): in --curve-workers → "worker", in --curve-clients → "client"
                 ─▶ 200 with User-Id "worker:<z85 key>" / "client:<z85 key>", or 400 (logged)
    message   ─▶ its frame's "User-Id" (ZeroMQ attaches it to every message of the connection)
                 ─▶ Guard.refusal(frame, message): None → the core handles it
                                                   a reason → ERROR "forbidden"; nothing changes

    role     may send
    client   SUBMIT WAIT GET CANCEL WATCH STATS PING FLUSH STATE DEAD OPS
    worker   all of that, and READY HEARTBEAT RESULT YIELD RETURN BYE (it receives tasks)

The role comes from the key the handshake proved, never from the routing id, which a peer
picks itself. The key directories are read again when their listing changes (one ``stat``
each per handshake), so a key file added, removed or moved in takes effect for the next
connection without a restart; connections already made keep the role they were given.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import zmq
from zmq.utils import z85

from qtasks.exc import ConfigError, KeyFileError
from qtasks.protocol import Bye, Heartbeat, Message, Ready, Result, Return, Yield
from qtasks.security import ServerKey, load_public_key, server_key
from qtasks.urls import is_loopback

log = logging.getLogger("qtasks.broker")

CLIENT, WORKER = "client", "worker"
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
"""Where libzmq sends the ZAP requests of every socket in the context (fixed by the RFC)."""
ZAP_VERSION = b"1.0"
WORKER_COMMANDS = frozenset({Ready, Heartbeat, Result, Yield, Return, Bye})
"""What only a worker key may send: joining the workers and reporting on tasks."""
REPORT_EVERY = 60.0
"""Seconds between two log lines about the same refused key."""
_REPORTED_KEYS = 1024


class KeyRing:
    """The public keys the broker lets in, and the role of each (a key in both directories is a worker)."""

    def __init__(self, clients: Optional[Path], workers: Optional[Path]) -> None:
        self.directories = {role: d for role, d in ((CLIENT, clients), (WORKER, workers)) if d is not None}
        if not self.directories:
            raise ConfigError("--curve-secret-key lets in only the keys in --curve-clients and --curve-workers; "
                              "give at least one of those directories")
        for role, directory in self.directories.items():
            if not directory.is_dir():
                raise ConfigError(f"--curve-{role}s {directory}: no such directory (it holds the public key files, "
                                  f"NAME.key, of the {role}s the broker lets in)")
        self._roles: dict[bytes, str] = {}
        self._stamps = self._stamp()
        self._roles = self._read(strict=True)

    def role(self, key: bytes) -> Optional[str]:
        """``"client"``, ``"worker"`` or None for the z85 public ``key``."""
        stamps = self._stamp()
        if stamps != self._stamps:
            self._stamps = stamps
            self._roles = self._read(strict=False)
            log.info("key directories changed: %s", self.describe())
        return self._roles.get(key)

    def count(self, role: str) -> int:
        return sum(1 for r in self._roles.values() if r == role)

    def describe(self) -> str:
        return ", ".join(f"{self.count(role)} {role} key(s) from {directory}"
                         for role, directory in self.directories.items())

    def _stamp(self) -> dict[str, int]:
        stamps = {}
        for role, directory in self.directories.items():
            try:
                stamps[role] = os.stat(directory).st_mtime_ns
            except OSError:
                stamps[role] = -1
        return stamps

    def _read(self, strict: bool) -> dict[bytes, str]:
        roles: dict[bytes, str] = {}
        for role in (CLIENT, WORKER):  # workers last: a key in both directories may serve
            directory = self.directories.get(role)
            if directory is None:
                continue
            try:
                paths = sorted(directory.glob("*.key"))
            except OSError as exc:
                log.error("cannot list %s (--curve-%ss): %s; none of its keys are let in", directory, role, exc)
                continue
            for path in paths:
                try:
                    roles[load_public_key(f"--curve-{role}s", str(path))] = role
                except KeyFileError as exc:
                    if strict:
                        raise
                    log.error("ignored a key file: %s", exc)
        return roles


@dataclass(frozen=True)
class CurveAuth:
    """What a broker needs to serve CURVE: its own key pair and the keys it lets in."""

    key: ServerKey
    keyring: KeyRing


def curve_auth(secret_key: str, clients: Optional[str], workers: Optional[str]) -> CurveAuth:
    """From ``--curve-secret-key FILE --curve-clients DIR --curve-workers DIR``; raises
    ``KeyFileError``/``ConfigError`` naming the file or directory at fault."""
    return CurveAuth(server_key(secret_key),
                     KeyRing(Path(clients) if clients else None, Path(workers) if workers else None))


class ZapHandler:
    """Answers ZAP requests for every CURVE socket of ``context``; the broker's loop polls :attr:`socket`."""

    def __init__(self, context: zmq.Context[Any], keyring: KeyRing, totals: Counter[str]) -> None:
        self.keyring = keyring
        self.totals = totals
        """The broker's counters: refused handshakes count as ``refused_keys``."""
        self._reported: dict[bytes, float] = {}
        sock = context.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.bind(ZAP_ENDPOINT)
        except zmq.ZMQError:
            sock.close()
            raise
        self.socket: zmq.Socket[Any] = sock

    def handle_waiting(self) -> None:
        """Answer every request waiting (REP: one answer before the next request)."""
        sock = self.socket
        while True:
            try:
                request = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            sock.send_multipart(self.answer(request))

    def answer(self, request: list[bytes]) -> list[bytes]:
        if len(request) < 6:
            return [ZAP_VERSION, request[1] if len(request) > 1 else b"", b"400", b"malformed ZAP request", b"", b""]
        version, request_id, _domain, address, _identity, mechanism, *credentials = request
        if version != ZAP_VERSION:
            return [ZAP_VERSION, request_id, b"400", b"unsupported ZAP version", b"", b""]
        if mechanism != b"CURVE" or len(credentials) != 1 or len(credentials[0]) != 32:
            return [ZAP_VERSION, request_id, b"400", b"CURVE keys required", b"", b""]
        key = z85.encode(credentials[0])
        role = self.keyring.role(key)
        if role is None:
            self.totals["refused_keys"] += 1
            self._report(key, address.decode("utf-8", "replace"))
            return [ZAP_VERSION, request_id, b"400", b"unknown key", b"", b""]
        return [ZAP_VERSION, request_id, b"200", b"OK", role.encode() + b":" + key, b""]

    def _report(self, key: bytes, address: str) -> None:
        now = time.monotonic()
        if now - self._reported.get(key, float("-inf")) < REPORT_EVERY:
            return
        if len(self._reported) >= _REPORTED_KEYS:
            self._reported.clear()
        self._reported[key] = now
        places = " nor ".join(f"{d} (--curve-{role}s)" for role, d in self.keyring.directories.items())
        log.warning("refused a connection from %s: its CURVE key %s is in neither %s; add its public key "
                    "file there to let it in", address, key.decode("ascii"), places)

    def close(self) -> None:
        self.socket.close(linger=0)


class Guard:
    """The per-message role check of a CURVE broker (the core below it knows nothing of keys)."""

    def refusal(self, frame: Any, message: Message) -> Optional[str]:
        """Why the peer whose message arrived on ``frame`` may not send ``message``; None when it may."""
        try:
            user_id: Optional[str] = frame.get("User-Id")
        except zmq.ZMQError:  # no ZAP verdict on this connection (cannot happen on a CURVE socket)
            user_id = None
        role, _, key = (user_id or "").partition(":")
        if role == WORKER:
            return None
        if role == CLIENT:
            if type(message) not in WORKER_COMMANDS:
                return None
            return (f"{message.COMMAND.decode()} is for worker keys only, and this connection uses the client key "
                    f"{key}: to let it serve tasks, move its public key file from the broker's --curve-clients "
                    "directory to its --curve-workers directory")
        return "this connection has no role at the broker (no CURVE key it knows)"


def exposure_refusal(url: str, curve: bool, insecure: bool) -> Optional[str]:
    """Why the broker must not serve ``url`` as configured; None when it may.

    A broker without keys runs whatever any peer submits, on every worker: only loopback and
    local endpoints may go without them, unless the operator says the network is trusted."""
    if curve or insecure or is_loopback(url):
        return None
    return (f"refusing to serve {url} without authentication: it is not a loopback address, so anyone who "
            "can reach it could submit tasks and run them on the workers. Give the broker CURVE keys "
            "(`qtasks keys generate DIR`, then --curve-secret-key DIR/broker.key_secret --curve-clients "
            "DIR/clients --curve-workers DIR/workers), bind a loopback address such as tcp://127.0.0.1:5555, "
            "or pass --insecure if the network itself is trusted")
