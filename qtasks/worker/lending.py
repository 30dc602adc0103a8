"""Slot lending: a task that waits for other tasks gives its slot back while it waits.

Otherwise a process whose every slot holds a parent waiting for its child would never
get the children (the classic nested-wait deadlock). While a task inside a worker waits
for task results (``self.add_task(..., timeout=...)``, ``wait_result``, ``add_tasks``,
chains), its process announces one more slot of credit; the broker may send it one more
task, which runs in an extra slot; when the wait ends the credit is taken back. Client
calls find the lender through ``qtasks.client.lending.current_lender``.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from typing import Callable, Iterator


class SlotLender:
    def __init__(self, loop: asyncio.AbstractEventLoop, lend: Callable[[], None],
                 reclaim: Callable[[], None]) -> None:
        self._loop = loop
        self._lend = lend
        self._reclaim = reclaim
        self._loop_thread = threading.get_ident()

    @contextmanager
    def lent(self) -> Iterator[None]:
        self._on_loop(self._lend)
        try:
            yield
        finally:
            self._on_loop(self._reclaim)

    def _on_loop(self, action: Callable[[], None]) -> None:
        if threading.get_ident() == self._loop_thread:
            action()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(action)
