"""Depends and State beyond the seeds: scopes, provider kinds, teardown on failure, contention."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import anyio

from qtasks import Depends, QueueTasks
from qtasks.exc import TaskCancelError
from qtasks.plugins.depends import ScopeEnum
from qtasks.plugins.states import AsyncState, SyncState

app = QueueTasks(name="deps")

PROVIDED = {"calls": 0}


def shared_resource():
    """Worker-scoped: made once per process; its teardown records that the process closed it."""
    PROVIDED["calls"] += 1
    resource = {"id": uuid.uuid4().hex, "pid": os.getpid()}
    yield resource
    marker_dir = os.environ.get("QTASKS_TEST_MARKERS")
    if marker_dir:
        Path(marker_dir, f"worker-closed-{os.getpid()}").write_text(resource["id"])


@app.task
async def which_resource(resource=Depends(shared_resource, scope=ScopeEnum.WORKER)):
    await anyio.sleep(0.01)
    return [os.getpid(), resource["id"], PROVIDED["calls"]]


@contextmanager
def marker(path: str, label: str):
    yield label
    with open(path, "a") as handle:
        handle.write(f"closed {label}\n")


def task_marker():
    return marker(os.environ["QTASKS_TEST_MARKER_FILE"], "task")


@app.task
def fails_after_dependency(value: Annotated[str, Depends(task_marker)]):
    raise RuntimeError(f"failed holding {value}")


@app.task
async def cancels_after_dependency(value=Depends(task_marker)):
    raise TaskCancelError(f"cancelled holding {value}")


@app.task
async def succeeds_with_dependency(value: Depends(task_marker)):
    return value


class Counter(AsyncState):
    pass


@app.task
async def count(i: int, state: Counter):
    await state.incr("counter")
    await state.set(f"key-{i}", i)
    return os.getpid()


class Memo(SyncState):
    pass


@app.task
def remember(key: str, value, memo: Memo):
    memo.set(key, value)
    return os.getpid()


@app.task
def recall(key: str, memo: Memo):
    return [os.getpid(), memo.get(key)]
