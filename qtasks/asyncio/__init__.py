from qtasks.asyncio.qtasks import QueueTasks

__all__ = ["QueueTasks"]
