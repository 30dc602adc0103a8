from __future__ import annotations

from qtasks.schemas.task_cls import SyncTaskCls
from qtasks.utils.tasks.chains import SyncChain


class SyncTaskUtils:
    @staticmethod
    def chain(*task_cls: SyncTaskCls) -> SyncChain:
        """``SyncTaskUtils.chain(add(2, 2), add(4), add(8)).get()`` → results 4, 8, 16."""
        return SyncChain(*task_cls)
