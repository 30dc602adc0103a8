"""Task ids: random (version 4) UUIDs, made from a pool of OS randomness.

``uuid.uuid4()`` asks the OS for 16 bytes every time; in a loop of ``add_task`` that
system call is a visible share of the cost (more so in sandboxes, where system calls are
slow). The pool asks for 4 KB at once: the same randomness, one call per 256 ids. A
forked child never reuses its parent's pool, and threads never share a slice of it.
"""

from __future__ import annotations

import os
import threading

POOL_BYTES = 4096

_lock = threading.Lock()
_pool = b""
_offset = 0
_pid = 0


def new_uuid_bytes() -> bytes:
    """16 random bytes with the version (4) and variant bits of RFC 4122."""
    global _pool, _offset, _pid
    with _lock:
        if _offset >= len(_pool) or _pid != os.getpid():
            _pool, _offset, _pid = os.urandom(POOL_BYTES), 0, os.getpid()
        raw = _pool[_offset:_offset + 16]
        _offset += 16
    return raw[:6] + bytes(((raw[6] & 0x0F) | 0x40,)) + raw[7:8] + bytes(((raw[8] & 0x3F) | 0x80,)) + raw[9:]
