from __future__ import annotations

from typing import Iterator

import pytest

from qtasks import QueueTasks
from qtasks.inprocess import InProcessStack
from tests.apps import basic
from tests.support import broker_process


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    """One broker daemon for the module's tests (100 ms heartbeats, 3 attempts)."""
    with broker_process() as (endpoint, _):
        yield endpoint


@pytest.fixture(scope="module")
def basic_stack() -> Iterator[InProcessStack]:
    """``tests.apps.basic`` served in this process: the broker and two worker actors in threads."""
    with InProcessStack(basic.app, workers=2) as stack:
        yield stack


@pytest.fixture()
def app(basic_stack: InProcessStack) -> Iterator[QueueTasks]:
    """The basic test app, served in-process for the module."""
    yield basic.app
