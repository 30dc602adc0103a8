"""Upstream's import path of ``ArgMeta`` (the ``args_info`` of ``task_executor_args_replace``)."""

from qtasks.executors.arguments import ArgMeta

__all__ = ["ArgMeta"]
