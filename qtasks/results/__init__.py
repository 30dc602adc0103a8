"""``SyncResult`` / ``AsyncResult``: wait for a task by uuid (upstream's ``qtasks.results``)."""

from qtasks.results.async_result import AsyncResult
from qtasks.results.sync_result import SyncResult

__all__ = ["AsyncResult", "SyncResult"]
