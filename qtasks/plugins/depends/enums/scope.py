"""How long a ``Depends`` value lives in a worker process."""

from __future__ import annotations

from enum import Enum


class ScopeEnum(str, Enum):
    TASK = "task"
    """Created for one execution, closed right after it, whatever its outcome."""
    WORKER = "worker"
    """Created once per worker process on first use, closed when the process stops."""
    BROKER = "broker"
    STORAGE = "storage"
    GLOBAL_CONFIG = "global_config"
    """Once per worker process as well, closed when that component stops in the process."""
