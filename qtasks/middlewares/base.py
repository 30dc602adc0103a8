"""``BaseMiddleware``: the base of everything a task executor calls around a task."""

from __future__ import annotations

from typing import Any


class BaseMiddleware:
    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__

    def __call__(self) -> Any:
        """Do the middleware's work; may return an awaitable."""
