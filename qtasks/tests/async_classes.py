"""The stubs an async test case puts in place of the components its ``TestConfig`` turns off."""

from qtasks.tests.stubs import AsyncTestGlobalConfig, AsyncTestWorker, TestBroker, TestStorage

AsyncTestBroker = TestBroker
AsyncTestStorage = TestStorage

__all__ = ["AsyncTestBroker", "AsyncTestGlobalConfig", "AsyncTestStorage", "AsyncTestWorker"]
