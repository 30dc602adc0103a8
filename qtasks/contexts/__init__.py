"""``self.ctx`` of an ``echo=True`` task: who it is, and access to the running app.

``AsyncContext`` (async tasks) awaits where ``SyncContext`` (plain ``def`` tasks, which
run in a worker thread) blocks; both are bound to the worker's app (upstream left the
app unset, so ``get_config``/``get_task``/... failed inside a task).
"""

from __future__ import annotations

import time
from typing import Any, Callable, NoReturn, Optional
from uuid import UUID

import anyio

from qtasks.current import current_app
from qtasks.exc import TaskCancelError, TaskPluginTriggerError
from qtasks.logs import Logger


class BaseContext:
    def __init__(self, **kwargs: Any) -> None:
        self.task_name: Optional[str] = kwargs.get("task_name")
        self.task_uuid: Optional[UUID] = kwargs.get("task_uuid")
        self.generate_handler: Optional[Callable[..., Any]] = kwargs.get("generate_handler")
        self._app: Any = kwargs.get("app")
        """None: the current app, looked up when needed (``qtasks.current.current_app``)."""
        self._log: Optional[Logger] = kwargs.get("log")
        self._metadata: Any = None

    def _update(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)

    def get_logger(self, name: Optional[str] = None) -> Logger:
        """A logger whose lines carry this task's name and uuid."""
        app = current_app(self._app, required=False)
        base = self._log or (app.log if app is not None else Logger("QueueTasks"))
        label = name or self.task_name or type(self).__name__
        return base.with_subname(f"{label} {self.task_uuid}" if self.task_uuid else label)

    def get_config(self) -> Any:
        return self._require_app().config

    def get_component(self, name: str) -> Any:
        """``broker``, ``worker``, ``events``, ... of the running app (None if it has no such part)."""
        return getattr(self._require_app(), name, None)

    def cancel(self, reason: str = "") -> NoReturn:
        """End this task now with status ``cancel`` and ``cancel_reason``."""
        raise TaskCancelError(reason or f"{self.task_name}.cancel")

    def plugin_error(self, **kwargs: Any) -> NoReturn:
        raise TaskPluginTriggerError(**kwargs)

    def _require_app(self) -> Any:
        return current_app(self._app)

    def _require_uuid(self) -> UUID:
        if self.task_uuid is None:
            raise ValueError("Task UUID is not set.")
        return self.task_uuid


class AsyncContext(BaseContext):
    async def get_metadata(self, cache: bool = True) -> Any:
        """This task's own record, as the broker has it (cached after the first call)."""
        if cache and self._metadata is not None:
            return self._metadata
        metadata = await self._require_app()._get_call(self._require_uuid()).wait_async()
        if cache:
            self._metadata = metadata
        return metadata

    async def get_task(self, uuid: UUID | str) -> Any:
        return await self._require_app()._get_call(uuid).wait_async()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class SyncContext(BaseContext):
    def get_metadata(self, cache: bool = True) -> Any:
        """This task's own record, as the broker has it (cached after the first call)."""
        if cache and self._metadata is not None:
            return self._metadata
        metadata = self._require_app()._get_call(self._require_uuid()).result()
        if cache:
            self._metadata = metadata
        return metadata

    def get_task(self, uuid: UUID | str) -> Any:
        return self._require_app()._get_call(uuid).result()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


__all__ = ["AsyncContext", "BaseContext", "SyncContext"]
