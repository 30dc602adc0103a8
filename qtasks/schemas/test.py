"""``TestConfig``: which real components a test case keeps (spec §11).

A flag True keeps the real component; False puts an inert stub in its place::

    TestConfig.full()           everything real: tasks run end to end
    TestConfig.only_worker()    tasks run in this process through the executor pipeline, no broker
    TestConfig.only_broker()    submits are stored; nothing runs them
    TestConfig.full_broker()    broker, storage, global config and plugins; no worker
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TestConfig:
    __test__ = False  # not a pytest test class, whatever its name

    worker: bool = False
    broker: bool = False
    storage: bool = False
    global_config: bool = False
    plugins: bool = False

    @classmethod
    def full(cls) -> TestConfig:
        return cls(worker=True, broker=True, storage=True, global_config=True, plugins=True)

    @classmethod
    def only_worker(cls, plugins: bool = False) -> TestConfig:
        return cls(worker=True, plugins=plugins)

    @classmethod
    def only_broker(cls, plugins: bool = False) -> TestConfig:
        return cls(broker=True, plugins=plugins)

    @classmethod
    def full_broker(cls) -> TestConfig:
        return cls(broker=True, storage=True, global_config=True, plugins=True)
