"""The stubs a sync test case puts in place of the components its ``TestConfig`` turns off."""

from qtasks.tests.stubs import SyncTestGlobalConfig, SyncTestWorker, TestBroker, TestStorage

SyncTestBroker = TestBroker
SyncTestStorage = TestStorage

__all__ = ["SyncTestBroker", "SyncTestGlobalConfig", "SyncTestStorage", "SyncTestWorker"]
