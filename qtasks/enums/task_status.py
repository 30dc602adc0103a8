"""Task statuses: one ``str`` enum, so records and the wire hold plain strings that compare equal.

::

    new ──▶ process ──▶ success | error | cancel      a result: waiting for the task ends here
     ▲         │    └──▶ retry                          ended; a retry task carries the chain on
     └─────────┘ taken back (lost worker, handed back)
"""

from __future__ import annotations

from enum import Enum


class TaskStatusEnum(str, Enum):
    NEW = "new"
    PROCESS = "process"
    SUCCESS = "success"
    ERROR = "error"
    CANCEL = "cancel"
    RETRY = "retry"

    def __str__(self) -> str:
        return self.value


FINAL_STATUSES = frozenset({TaskStatusEnum.SUCCESS, TaskStatusEnum.ERROR, TaskStatusEnum.CANCEL})
"""A task's result: a client waiting for the task (or its retry chain) is answered with it."""
ENDED_STATUSES = FINAL_STATUSES | {TaskStatusEnum.RETRY}
"""The record never changes again (a ``retry`` record's chain goes on in another task)."""
