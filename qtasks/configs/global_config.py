"""The global config: groups of settings kept by the broker beside State, shared by every process.

One group is one namespace of the state actor (class ``GlobalConfig`` of the app), so
writes are atomic and, with a data directory, they survive broker restarts. The core
builds calls; ``SyncGlobalConfig`` blocks on them and ``AsyncGlobalConfig`` awaits them.
Plugins may change what is set (``global_config_set``) and what is read (``global_config_get``,
``global_config_get_all``, ``global_config_get_match``)::

    app.global_config.set("main", "status", "running")
    app.global_config.get("main", "status")          # "running"
    app.global_config.get_all("main")                # {"status": "running"}
    app.global_config.get_match("ma*")               # {"main": {"status": "running"}}
"""

from __future__ import annotations

from typing import Any, Optional

from qtasks.client.calls import PendingCall
from qtasks.configs.base import BaseGlobalConfig
from qtasks.current import current_app
from qtasks.plugins.triggers import fire, fire_sync
from qtasks.state import state_call

NAMESPACE_CLASS = "GlobalConfig"


class GlobalConfigCore(BaseGlobalConfig):
    def __init__(self, app: Any = None, **component: Any) -> None:
        super().__init__(**component)
        self.app = app

    def _call(self, group: str, op: str, *args: Any) -> PendingCall[Any]:
        if not isinstance(group, str):
            raise TypeError(f"a global config group name is a string, got {type(group).__name__}")
        app = current_app(self.app)
        return state_call(app, (app.name, NAMESPACE_CLASS, group), op, args, f"GlobalConfig.{op}")

    def _set_args(self, answer: dict[str, Any], name: str, key: str, value: Any) -> tuple[str, str, Any]:
        return answer.get("name", name), answer.get("key", key), answer.get("value", value)


class SyncGlobalConfig(GlobalConfigCore):
    def set(self, name: str, key: str, value: Any) -> None:
        answer = fire_sync(self.plugins, "global_config_set", global_config=self, name_=name, key=key,
                           value=value) if self.plugins else {}
        name, key, value = self._set_args(answer, name, key, value)
        self._call(name, "set", key, value).result()

    def get(self, key: str, name: str) -> Any:
        return self._read("global_config_get", self._call(key, "get", name).result())

    def get_all(self, key: str) -> dict[str, Any]:
        values: dict[str, Any] = self._read("global_config_get_all", self._call(key, "get_all").result())
        return values

    def get_match(self, match: str) -> dict[str, dict[str, Any]]:
        groups: dict[str, dict[str, Any]] = self._read("global_config_get_match",
                                                        self._call("", "scopes", match).result())
        return groups

    def _read(self, trigger: str, value: Any) -> Any:
        if not self.plugins:
            return value
        return fire_sync(self.plugins, trigger, global_config=self, get=value).get("get", value)


class AsyncGlobalConfig(GlobalConfigCore):
    async def set(self, name: str, key: str, value: Any) -> None:
        answer = await fire(self.plugins, "global_config_set", global_config=self, name_=name, key=key,
                            value=value) if self.plugins else {}
        name, key, value = self._set_args(answer, name, key, value)
        await self._call(name, "set", key, value).wait_async()

    async def get(self, key: str, name: str) -> Any:
        return await self._read("global_config_get", await self._call(key, "get", name).wait_async())

    async def get_all(self, key: str) -> dict[str, Any]:
        values: dict[str, Any] = await self._read("global_config_get_all",
                                                  await self._call(key, "get_all").wait_async())
        return values

    async def get_match(self, match: str) -> dict[str, dict[str, Any]]:
        groups: dict[str, dict[str, Any]] = await self._read(
            "global_config_get_match", await self._call("", "scopes", match).wait_async())
        return groups

    async def _read(self, trigger: str, value: Any) -> Any:
        if not self.plugins:
            return value
        answer = await fire(self.plugins, trigger, global_config=self, get=value)
        return answer.get("get", value)


def global_config_for(app: Any, method: str, name: Optional[str] = None) -> GlobalConfigCore:
    """The global config component of the face ``method`` ("sync" or "async")."""
    kind = AsyncGlobalConfig if method == "async" else SyncGlobalConfig
    return kind(app, name=name or app.name, log=app.log, config=app.config, events=app.events)
