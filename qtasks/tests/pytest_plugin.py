"""The pytest plugin QTasks installs (entry point ``pytest11``): the ``qtasks_serve`` fixture.

``qtasks_serve(app, workers=1)`` serves ``app`` in the test's process (the real broker core
and worker actors over ``inproc://``) and stops it when the test ends::

    def test_add(qtasks_serve):
        qtasks_serve(app)
        assert app.add_task("add", 1, 2, timeout=5).returning == 3
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional

import pytest


@pytest.fixture()
def qtasks_serve() -> Iterator[Callable[..., Any]]:
    stacks: list[Any] = []

    def serve(app: Any, workers: int = 1, concurrency: Optional[int] = None) -> Any:
        from qtasks.inprocess import InProcessStack

        stack = InProcessStack(app, workers=workers, concurrency=concurrency).start()
        stacks.append(stack)
        return stack

    yield serve
    for stack in reversed(stacks):
        stack.stop()
