from __future__ import annotations

from qtasks.schemas.task_cls import AsyncTaskCls
from qtasks.utils.tasks.chains import AsyncChain


class AsyncTaskUtils:
    @staticmethod
    def chain(*task_cls: AsyncTaskCls) -> AsyncChain:
        """``await AsyncTaskUtils.chain(add(2, 2), add(4), add(8)).get()`` → results 4, 8, 16."""
        return AsyncChain(*task_cls)
