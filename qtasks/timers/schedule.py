"""What a timer schedules, and the task uuid each fire of it gets.

A fire's uuid is a pure function of the schedule and the fire's scheduled time, so every
timer process running the same schedule names a fire alike, and the broker, which stores
a uuid once, enqueues it once::

    identity = sha256(app name, task name, packed arguments, str(trigger))
    fire uuid = uuid5(TIMER_NAMESPACE, identity + "@" + fire key)

    fire key   CronTrigger, DateTrigger, ...   scheduled time in UTC, to the microsecond
               IntervalTrigger                 interval slot: scheduled time // interval

The scheduled time comes from the trigger, never from the clock, so late or skewed
processes agree. An ``IntervalTrigger`` without ``start_date`` starts one interval after
each process started, so two processes fire at different phases; numbering the slots of
the interval since the Unix epoch gives both the same key for "this interval's run".
"""

from __future__ import annotations

import hashlib
import uuid as uuid_module
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any, Optional
from uuid import UUID

from apscheduler.triggers.interval import IntervalTrigger

TIMER_NAMESPACE = uuid_module.uuid5(uuid_module.NAMESPACE_URL, "https://qtasks/timers/fire")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, eq=False)
class Schedule:
    """One ``timer.add_task(...)``: a task call and the trigger that says when."""

    app_name: str
    task_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    priority: Optional[int]
    trigger: Any
    payload: bytes = field(repr=False)
    """The arguments as they travel (msgpack, keywords sorted): the identity's view of them."""

    @property
    def trigger_text(self) -> str:
        return str(self.trigger)

    @cached_property
    def identity(self) -> str:
        digest = hashlib.sha256()
        for part in (self.app_name.encode(), self.task_name.encode(), self.payload, self.trigger_text.encode()):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.hexdigest()

    @property
    def shared_across_processes(self) -> bool:
        """False when the trigger's text is an object address (``<... at 0x...>``), which
        differs per process, so other timer processes cannot recognise the schedule."""
        return " at 0x" not in self.trigger_text

    def fire_key(self, run_time: datetime) -> str:
        if run_time.tzinfo is None:
            raise ValueError(f"a scheduled time must be timezone-aware, got {run_time!r}")
        if isinstance(self.trigger, IntervalTrigger):
            step = self.trigger.interval // _MICROSECOND
            return f"slot {(run_time - _EPOCH) // _MICROSECOND // step} of {step} us"
        return run_time.astimezone(timezone.utc).isoformat(timespec="microseconds")

    def fire_uuid(self, run_time: datetime) -> UUID:
        return uuid_module.uuid5(TIMER_NAMESPACE, f"{self.identity}@{self.fire_key(run_time)}")
