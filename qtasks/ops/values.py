"""Task records as plain JSON-able dicts, for people and scripts (``OpsClient.tasks``/``inspect``).

The broker hands records over with their arguments, result and steps still packed
(:class:`qtasks.protocol.TaskView`); they are unpacked here, on the operator's side. What
JSON cannot hold becomes its ``repr``, and every value is cut to ``MAX_VALUE_CHARS``.
"""

from __future__ import annotations

import json
import uuid as uuid_module
from datetime import date, datetime
from typing import Any, Optional

from qtasks.exc import DecodeError
from qtasks.protocol import CHUNK, TaskSnapshot, TaskView, unpack_arguments, unpack_value

MAX_VALUE_CHARS = 16 * 1024
"""Characters of JSON one value (arguments, result, a step) may take; longer ones become a cut repr."""
MAX_ITEMS = 1000
"""Items of a list or map kept (a larger one is cut, its repr says so)."""
MAX_DEPTH = 32


def uuid_text(raw: bytes) -> str:
    return str(uuid_module.UUID(bytes=raw))


def jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` with everything JSON cannot hold turned into text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth >= MAX_DEPTH:
        return _cut(repr(value))
    if isinstance(value, (list, tuple)):
        return [jsonable(item, depth + 1) for item in value[:MAX_ITEMS]] + (
            [f"... {len(value) - MAX_ITEMS} more"] if len(value) > MAX_ITEMS else [])
    if isinstance(value, dict):
        items = list(value.items())
        out = {str(k): jsonable(v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["..."] = f"{len(items) - MAX_ITEMS} more"
        return out
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return _cut(repr(value))


def bounded(value: Any) -> Any:
    """:func:`jsonable`, replaced by a cut ``repr`` when its JSON is over ``MAX_VALUE_CHARS``."""
    plain = jsonable(value)
    text = json.dumps(plain, default=repr)
    return plain if len(text) <= MAX_VALUE_CHARS else _cut(text)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + f"... ({len(text)} characters)"


def _unpacked(raw: Optional[bytes]) -> Any:
    if raw is None:
        return None
    try:
        return bounded(unpack_value(raw))
    except Exception:  # msgpack raises many kinds; the record is shown anyway
        return f"<{len(raw)} bytes that are not msgpack>"


def _arguments(snapshot: TaskSnapshot) -> tuple[Any, Any]:
    envelope = snapshot.envelope
    if CHUNK in envelope.metadata:  # task.map: one delivery of many calls
        calls = _unpacked(envelope.payload)
        if isinstance(calls, list):
            decoded = []
            for call in calls:
                try:
                    args, kwargs = unpack_arguments(call) if isinstance(call, bytes) else ([call], {})
                except DecodeError:
                    args, kwargs = [repr(call)], {}
                decoded.append({"args": bounded(args), "kwargs": bounded(kwargs)})
            return decoded, {}
        return calls, {}
    try:
        args, kwargs = unpack_arguments(envelope.payload)
    except DecodeError:
        return [f"<{len(envelope.payload)} bytes that are not task arguments>"], {}
    return bounded(args), bounded(kwargs)


def task_dict(view: TaskView) -> dict[str, Any]:
    """One record as ``OpsClient`` returns it (see the README, "Seeing what runs")."""
    snapshot = view.snapshot
    envelope = snapshot.envelope
    trimmed = set(view.trimmed)
    if "args" in trimmed:
        args: Any = "<left out: larger than the broker shows>"
        kwargs: Any = {}
    else:
        args, kwargs = _arguments(snapshot)
    returning = ("<left out: larger than the broker shows>" if "returning" in trimmed
                 else _unpacked(snapshot.returning))
    parent = snapshot.extra.get("retry_parent_uuid")
    return {
        "uuid": uuid_text(envelope.uuid),
        "name": envelope.task_name,
        "queue": envelope.queue,
        "status": str(snapshot.status),
        "priority": envelope.priority,
        "created_at": envelope.created_at,
        "updated_at": snapshot.updated_at,
        "args": args,
        "kwargs": kwargs,
        "returning": returning,
        "traceback": snapshot.traceback,
        "steps": [_unpacked(step) for step in snapshot.steps],
        "retry_of": parent if isinstance(parent, str) else None,
        "retries": [uuid_text(u) for u in view.retries],
        "attempts": snapshot.attempts,
        "cancel_reason": snapshot.extra.get("cancel_reason") if isinstance(
            snapshot.extra.get("cancel_reason"), str) else None,
        "trimmed": sorted(trimmed),
    }
