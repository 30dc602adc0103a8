"""``SyncStateRegistry`` / ``AsyncStateRegistry``: State operations with the class as first argument.

Upstream kept every state class's dict in a registry guarded by a lock; here the state
actor beside the broker holds them, so a registry is only another way to address a class's
namespace: ``registry.set(Signup, "step", 2)`` is ``Signup().set("step", 2)``.
"""

from __future__ import annotations

from typing import Any, Optional


class _Registry:
    def __init__(self, app: Any = None) -> None:
        self.app = app

    def _call(self, state_cls: type, op: str, *args: Any) -> Any:
        return state_cls(self.app)._call(op, *args)


class SyncStateRegistry(_Registry):
    def get(self, state_cls: type, key: Optional[str], default: Any = None) -> Any:
        return self._call(state_cls, "get", key, default).result()

    def set(self, state_cls: type, key: str, value: Any) -> None:
        self._call(state_cls, "set", key, value).result()

    def update(self, state_cls: type, mapping: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call(state_cls, "update", mapping).result()
        return result

    def get_all(self, state_cls: type) -> dict[str, Any]:
        result: dict[str, Any] = self._call(state_cls, "get_all").result()
        return result

    def delete(self, state_cls: type, key: str) -> None:
        self._call(state_cls, "delete", key).result()

    def clear(self, state_cls: type) -> None:
        self._call(state_cls, "clear").result()


class AsyncStateRegistry(_Registry):
    async def get(self, state_cls: type, key: Optional[str], default: Any = None) -> Any:
        return await self._call(state_cls, "get", key, default).wait_async()

    async def set(self, state_cls: type, key: str, value: Any) -> None:
        await self._call(state_cls, "set", key, value).wait_async()

    async def update(self, state_cls: type, mapping: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(state_cls, "update", mapping).wait_async()
        return result

    async def get_all(self, state_cls: type) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(state_cls, "get_all").wait_async()
        return result

    async def delete(self, state_cls: type, key: str) -> None:
        await self._call(state_cls, "delete", key).wait_async()

    async def clear(self, state_cls: type) -> None:
        await self._call(state_cls, "clear").wait_async()


__all__ = ["AsyncStateRegistry", "SyncStateRegistry"]
