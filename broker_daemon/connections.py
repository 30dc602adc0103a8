"""Who is at the other end of each connection, so the broker can say whom it dropped.

The broker refuses a message over ``--max-message-size`` itself and names its sender; past
a hard cap (``MAXMSGSIZE``) ZeroMQ drops the peer unread, without telling the
application. A socket monitor reports the connection's file descriptor when it is
accepted and when it goes away; the first message of each peer carries the descriptor
it came in on (``SRCFD``). Joined, they name the peer::

    by_fd     {fd: Connection(address "127.0.0.1:50006", identity b"vm/4841/5f2858" | None)}
    by_peer   {identity: fd}

A connection that goes away after the ZeroMQ handshake but before a whole message
arrived was a peer that left without a word, or one whose first message was too large
(logged, naming the limit); one that a registered worker leaves without saying BYE lost
that worker (a warning). One that goes away before the handshake was a probe (``qtasks run`` checks
what listens at its URL that way) or a port scanner: a debug line. A CURVE broker also says, at
most once a minute each, when peers come without keys or with the wrong broker key: those peers
only see a silent broker.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import zmq
from zmq.utils.monitor import parse_monitor_message

log = logging.getLogger("qtasks.broker")

_UNGREETED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
              | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
EVENTS = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | _UNGREETED
SECURITY_FAILURES: dict[int, str] = {
    int(zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH):
        "a peer tried to connect without CURVE keys (this broker lets in CURVE keys only); give it the "
        "broker's public key and a key pair (curve_server_key, curve_secret_key)",
    int(zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC):
        "a peer's CURVE handshake failed to decrypt: its curve_server_key is not this broker's public key",
}
"""Handshake failures worth telling the operator about, by ZMTP protocol error."""
REPORT_EVERY = 60.0


@dataclass
class Connection:
    address: str
    identity: Optional[bytes] = None


def peer_address(fd: int) -> str:
    """``host:port`` of the remote end of socket ``fd`` (without taking the descriptor over)."""
    try:
        probe = socket.socket(fileno=socket.dup(fd))
    except OSError:
        return "an address that is gone"
    try:
        name = probe.getpeername()
    except OSError:
        return "an address that is gone"
    finally:
        probe.close()
    if isinstance(name, tuple):
        return f"{name[0]}:{name[1]}"
    return name or "a local socket"


class ConnectionLog:
    def __init__(self, max_message_size: int, describe_peer: Callable[[bytes], Optional[str]],
                 on_gone: Callable[[bytes], None] = lambda identity: None) -> None:
        self.max_message_size = max_message_size
        self.describe_peer = describe_peer
        """What the broker knows of a peer that left (a worker without BYE: its name), or None."""
        self.on_gone = on_gone
        """Told the identity of a peer whose connection closed (its waits are forgotten)."""
        self.by_fd: dict[int, Connection] = {}
        self.by_peer: dict[bytes, int] = {}
        self.ungreeted = 0
        """Handshakes that failed and whose connection has not closed yet. ZeroMQ does not say which
        connection a handshake event is about, so these are matched to anonymous closes by count."""
        self._reported: dict[int, float] = {}

    def knows(self, identity: bytes) -> bool:
        return identity in self.by_peer

    def note(self, identity: bytes, first_frame: Any) -> None:
        """The first message of ``identity``: remember which connection it came on."""
        try:
            fd = first_frame.get(zmq.SRCFD)
        except zmq.ZMQError:  # no descriptor behind it (inproc://)
            fd = None
        if fd is None or fd < 0:
            self.by_peer[identity] = -1
            return
        connection = self.by_fd.get(fd)
        if connection is None:
            connection = self.by_fd[fd] = Connection(peer_address(fd))
        connection.identity = identity
        self.by_peer[identity] = fd

    def address(self, identity: bytes, frame: Any) -> str:
        """``host:port`` of the connection ``frame`` (a message of ``identity``) came on."""
        fd = self.by_peer.get(identity)
        known = self.by_fd.get(fd) if fd is not None else None
        if known is not None:
            return known.address
        try:
            fd = frame.get(zmq.SRCFD)
        except zmq.ZMQError:
            return "this process (inproc)"
        return peer_address(fd) if fd is not None and fd >= 0 else "an unknown address"

    def on_event(self, frames: list[bytes]) -> None:
        event = parse_monitor_message(frames)
        fd = event["value"]
        if event["event"] == zmq.EVENT_ACCEPTED:
            # the peer's first message may have been handled already (the monitor is read apart)
            self.by_fd.setdefault(fd, Connection(peer_address(fd)))
        elif event["event"] & _UNGREETED:
            self.ungreeted += 1
            if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and fd in SECURITY_FAILURES:
                self._report_security(fd)
        elif event["event"] == zmq.EVENT_DISCONNECTED:
            self._gone(fd)

    def _report_security(self, code: int) -> None:
        now = time.monotonic()
        if now - self._reported.get(code, float("-inf")) >= REPORT_EVERY:
            self._reported[code] = now
            log.warning("%s (reported once a minute at most)", SECURITY_FAILURES[code])

    def _gone(self, fd: int) -> None:
        connection = self.by_fd.pop(fd, None)
        if connection is None:
            return
        if connection.identity is None and self.ungreeted:
            self.ungreeted -= 1
            log.debug("a connection from %s closed before the ZeroMQ handshake (a probe, or not a ZeroMQ peer)",
                      connection.address)
            return
        if connection.identity is None:
            # ZeroMQ does not say why: a peer that left before saying anything looks the same
            log.info("the connection from %s closed before a whole message arrived: a peer that left "
                     "without sending anything, or one whose message was over the %d-byte limit "
                     "(qtasks-broker --max-message-size), dropped by ZeroMQ", connection.address,
                     self.max_message_size)
            return
        if self.by_peer.get(connection.identity) == fd:
            del self.by_peer[connection.identity]
            self.on_gone(connection.identity)
        lost = self.describe_peer(connection.identity)
        if lost is not None:
            log.warning("the connection of %s at %s closed without a goodbye: its process ended, or it sent "
                        "a message over the %d-byte limit (qtasks-broker --max-message-size)",
                        lost, connection.address, self.max_message_size)
        else:
            log.debug("peer %r at %s disconnected", connection.identity, connection.address)
