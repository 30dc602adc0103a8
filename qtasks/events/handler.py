"""``InitsExecSchema``: a registered event handler (what ``@app.events.on.<event>()`` returns)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class InitsExecSchema:
    name: str
    func: Callable[..., Any]
    awaiting: bool = False
