"""Task statuses. Records store and compare the plain strings (``TaskStatusEnum.SUCCESS.value``)."""

from __future__ import annotations

from enum import Enum


class TaskStatusEnum(Enum):
    NEW = "new"
    PROCESS = "process"
    SUCCESS = "success"
    ERROR = "error"
    CANCEL = "cancel"


FINAL_STATUSES = frozenset({"success", "error", "cancel"})
"""Statuses after which a record never changes again."""
