"""Apps whose tasks read and write the global config from their worker processes."""

from __future__ import annotations

import os
from typing import Any

import qtasks.asyncio
from qtasks import QueueTasks

sync_app = QueueTasks(name="globals-sync")
async_app = qtasks.asyncio.QueueTasks(name="globals-async")


@sync_app.task
def read(group: str, key: str) -> list[Any]:
    return [os.getpid(), sync_app.global_config.get(group, key)]


@sync_app.task
def write(group: str, key: str, value: Any) -> int:
    sync_app.global_config.set(group, key, value)
    return os.getpid()


@async_app.task
async def read_async(group: str, key: str) -> list[Any]:
    return [os.getpid(), await async_app.global_config.get(group, key)]


@async_app.task
async def write_async(group: str, key: str, value: Any) -> int:
    await async_app.global_config.set(group, key, value)
    return os.getpid()
