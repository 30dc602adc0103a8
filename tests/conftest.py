from __future__ import annotations

from typing import Iterator

import pytest

from qtasks import QueueTasks
from qtasks.brokers import ZmqBroker
from tests.apps import basic
from tests.support import broker_process, wait_for_workers, worker_process


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    """One broker daemon for the module's tests (100 ms heartbeats, 3 attempts)."""
    with broker_process() as (endpoint, _):
        yield endpoint


@pytest.fixture(scope="module")
def basic_workers(broker_url: str) -> Iterator[None]:
    """``qtasks -A tests.apps.basic:app run --processes 2`` against the module's broker."""
    with worker_process("tests.apps.basic:app", broker_url, processes=2):
        client = QueueTasks(name="tests", broker_url=broker_url)
        wait_for_workers(client, 2)
        client.close()
        yield


@pytest.fixture()
def app(broker_url: str, basic_workers: None) -> Iterator[QueueTasks]:
    """The basic test app, its task objects pointed at the module's broker."""
    basic.app.broker = ZmqBroker(broker_url, connect_timeout=5.0)
    yield basic.app
    basic.app.close()
