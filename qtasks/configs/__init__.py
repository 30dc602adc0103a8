from qtasks.configs.config import QueueConfig

__all__ = ["QueueConfig"]
