"""How values from the broker read on a page: times, durations, rates, argument values.

Times arrive as unix seconds (or ISO text); pages show them in UTC, and the page's script
adds "5 s ago" beside them, so a fragment's HTML only changes when the facts do.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

MAX_SHOWN = 64 * 1024
"""Characters of one value (arguments, result, traceback) a page shows; the rest is cut."""


def timestamp(value: Any) -> float | None:
    """Unix seconds from a number or ISO 8601 text; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return None


def clock(value: Any) -> str:
    """``2026-11-26 13:45:01`` (UTC), or ``-`` when there is no time."""
    seconds = timestamp(value)
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def duration(value: Any) -> str:
    """``45 s``, ``12 min 05 s``, ``3 h 02 min``, ``2 d 4 h``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        return "-"
    seconds = int(value)
    if seconds < 60:
        return f"{value:.0f} s" if value >= 1 else f"{value:.2f} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def rate(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "-"
    return f"{value:.2f}/s" if value < 100 else f"{value:.0f}/s"


def shown(value: Any) -> str:
    """A value as readable text: JSON where it is JSON, ``repr`` for the rest; at most MAX_SHOWN characters."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, indent=2, ensure_ascii=False, default=repr)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) > MAX_SHOWN:
        return f"{text[:MAX_SHOWN]}\n... ({len(text) - MAX_SHOWN} more characters)"
    return text


def priorities(by_priority: Any) -> list[tuple[str, Any]]:
    """``{"5": 2, "0": 7}`` as [("0", 7), ("5", 2)], numeric priorities in order."""
    if not isinstance(by_priority, dict):
        return []

    def order(item: tuple[Any, Any]) -> tuple[int, float, str]:
        key = str(item[0])
        try:
            return (0, float(key), key)
        except ValueError:
            return (1, 0.0, key)

    return [(str(key), count) for key, count in sorted(by_priority.items(), key=order)]


def last_line(text: Any) -> str:
    """The last non-empty line of a traceback: the exception and its message."""
    if not isinstance(text, str):
        return ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def short(uuid: Any) -> str:
    """The first 8 characters of a uuid: enough to tell tasks apart on a page."""
    return str(uuid)[:8] if uuid else "-"
