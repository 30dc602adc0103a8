"""Putting frames on a ZeroMQ socket cheaply.

pyzmq's ``send_multipart`` combines its flags with enum arithmetic on every frame, which
costs more than the send itself on a hot path; plain integer flags do the same work.
"""

from __future__ import annotations

from typing import Any, Sequence

import zmq

_MORE = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
_LAST = int(zmq.NOBLOCK)


def send_frames(sock: zmq.Socket[Any], frames: Sequence[bytes]) -> None:
    """Send one multipart message without blocking; raises ``zmq.Again`` when the peer's queue
    is full (ZeroMQ checks that on the first frame: a message goes out whole or not at all)."""
    send = sock.send
    last = len(frames) - 1
    for index, frame in enumerate(frames):
        send(frame, _MORE if index < last else _LAST)
