from qtasks.configs.config import QueueConfig

__all__ = ["QueueConfig"]


def __getattr__(name: str) -> object:
    if name in ("AsyncRedisGlobalConfig", "SyncRedisGlobalConfig"):
        raise ImportError(
            f"{name} is upstream's Redis global config; this engine keeps the global config in its own "
            "broker daemon, beside State: use app.global_config (qtasks.configs.global_config)"
        )
    raise AttributeError(f"module 'qtasks.configs' has no attribute {name!r}")
