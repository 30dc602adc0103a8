"""The hook through which a running task lends its worker slot while it waits for other tasks.

A client call that waits for tasks (``add_task(..., timeout=)``, ``wait_result``, ...)
made inside a task enters ``current_lender.get().lent()`` for as long as it waits; the
worker process sets ``current_lender`` around each task (see ``qtasks.worker.lending``).
Outside a worker it is None and waiting lends nothing.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Optional, Protocol


class Lender(Protocol):
    def lent(self) -> AbstractContextManager[None]: ...


current_lender: ContextVar[Optional[Lender]] = ContextVar("qtasks_slot_lender", default=None)
"""Set while a task runs in a worker process (threads of plain ``def`` tasks see it too)."""
