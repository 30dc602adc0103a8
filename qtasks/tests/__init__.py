"""The test kit: ``SyncTestCase`` / ``AsyncTestCase`` and, for pytest, the ``qtasks_serve`` fixture.

::

    from qtasks.schemas.test import TestConfig
    from qtasks.tests import SyncTestCase

    case = SyncTestCase(app)
    case.settings(TestConfig.full())
    assert case.add_task("add", 1, 2, timeout=5).returning == 3   # no daemon needed
    case.stop()
"""

from qtasks.tests.async_testcase import AsyncTestCase
from qtasks.tests.base import BaseTestCase
from qtasks.tests.sync_testcase import SyncTestCase

__all__ = ["AsyncTestCase", "BaseTestCase", "SyncTestCase"]
