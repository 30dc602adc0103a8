"""``BaseGlobalConfig``: settings shared by every process of a deployment (spec §9.3).

Upstream's argument order is kept: ``set(name, key, value)`` writes field ``key`` of group
``name``, ``get(key, name)`` reads field ``name`` of group ``key``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from qtasks.components import Component


class BaseGlobalConfig(Component, ABC):
    @abstractmethod
    def set(self, name: str, key: str, value: Any) -> Any:
        """Set field ``key`` of group ``name``."""

    @abstractmethod
    def get(self, key: str, name: str) -> Any:
        """Field ``name`` of group ``key`` (None when unset)."""

    @abstractmethod
    def get_all(self, key: str) -> Any:
        """Every field of group ``key``."""

    @abstractmethod
    def get_match(self, match: str) -> Any:
        """Every group whose name matches the shell-style pattern ``match``, with its fields."""

    def start(self) -> Any:
        """Serving starts (in the serving process): fires ``global_config_start``."""
        self._trigger_sync("global_config_start", global_config=self)

    def stop(self) -> Any:
        """Serving stops: fires ``global_config_stop``."""
        self._trigger_sync("global_config_stop", global_config=self)
