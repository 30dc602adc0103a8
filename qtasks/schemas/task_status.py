"""Task records as upstream's plugins see them (``model=`` of the worker triggers).

``args``/``kwargs`` are JSON text, as upstream stored them. A plugin may answer with a copy
carrying more fields (``qtasks.utils._build_task(model, is_testing="1")``); the extra
fields end up on the task's record.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Optional

from qtasks.enums.task_status import TaskStatusEnum


@dataclass
class BaseTaskStatusSchema:
    task_name: str = ""
    priority: int = 0
    args: Any = "[]"
    """JSON text of the positional arguments (values given as lists are turned into it)."""
    kwargs: Any = "{}"
    created_at: float = 0.0
    updated_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if not isinstance(self.args, str):
            self.args = json.dumps(self.args, default=str)
        if not isinstance(self.kwargs, str):
            self.kwargs = json.dumps(self.kwargs, default=str)


@dataclass
class TaskStatusNewSchema(BaseTaskStatusSchema):
    status: str = TaskStatusEnum.NEW.value


@dataclass
class TaskStatusProcessSchema(BaseTaskStatusSchema):
    status: str = TaskStatusEnum.PROCESS.value


@dataclass
class TaskStatusSuccessSchema(BaseTaskStatusSchema):
    status: str = TaskStatusEnum.SUCCESS.value
    returning: str = ""


@dataclass
class TaskStatusErrorSchema(BaseTaskStatusSchema):
    status: str = TaskStatusEnum.ERROR.value
    traceback: str = ""
    retry: ClassVar[Optional[int]] = None
    retry_child_uuid: ClassVar[Optional[str]] = None
    retry_parent_uuid: ClassVar[Optional[str]] = None


@dataclass
class TaskStatusCancelSchema(BaseTaskStatusSchema):
    status: str = TaskStatusEnum.CANCEL.value
    cancel_reason: str = ""


def extra_fields(model: Any, schema: type) -> dict[str, Any]:
    """The fields ``model`` carries beyond ``schema``'s (what a plugin added)."""
    known = {f.name for f in fields(schema)}
    return {f.name: getattr(model, f.name) for f in fields(model) if f.name not in known}


__all__ = ["BaseTaskStatusSchema", "TaskStatusCancelSchema", "TaskStatusErrorSchema", "TaskStatusNewSchema",
           "TaskStatusProcessSchema", "TaskStatusSuccessSchema", "extra_fields"]
