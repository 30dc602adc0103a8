"""``GlobalConfigSchema``: the record upstream's global config kept per app (``status`` "running")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GlobalConfigSchema:
    name: str
    status: str = "running"
