"""Batch jobs: ``task.map``, ``imap``, ``imap_unordered`` and ``starmap`` (see :mod:`qtasks.batch.mapping`)."""

from qtasks.batch.mapping import MapRun, iterate, iterate_async

__all__ = ["MapRun", "iterate", "iterate_async"]
