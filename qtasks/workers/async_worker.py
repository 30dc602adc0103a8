"""Upstream's import path of ``AsyncWorker``."""

from qtasks.workers import AsyncWorker

__all__ = ["AsyncWorker"]
