"""Keeping SIGTERM/SIGINT from falling into the gap between ``fork`` and a child's own handler.

The supervisor blocks the stop signals while it forks; the child inherits the mask,
installs its handler, then unblocks — so a stop signal sent at that moment (``kill``
of the whole process group) stays pending and is acted on, instead of running the
supervisor's handler inside the child and being lost.
"""

from __future__ import annotations

import ctypes
import signal
from typing import Any

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
"""SIGTERM: stop gracefully. SIGQUIT: stop now (hand running tasks back). SIGINT: the supervisor's."""


def start_with_stop_signals_blocked(process: Any) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def unblock_stop_signals() -> None:
    """For a child, once its own stop handling is in place."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def stop_when_parent_dies() -> bool:
    """Have the kernel send SIGTERM (a graceful stop) to this process when its parent dies.

    Linux ``prctl(PR_SET_PDEATHSIG)``: every orphan learns at the same moment, unlike a pipe
    from the parent, whose write end later-forked siblings inherit and keep open. Returns
    False where it is not available.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


PR_SET_PDEATHSIG = 1
