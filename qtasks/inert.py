"""What upstream QTasks code may set that has no effect in this engine, in one list.

Each is accepted so upstream code keeps running; setting one (to anything but its
default) logs one warning naming it and saying why, so nothing pretends to work.
"""

from __future__ import annotations

import logging

log = logging.getLogger("qtasks")

INERT: dict[str, str] = {
    "QueueConfig.running_older_tasks":
        "the broker always requeues the tasks of a worker process it lost; there is nothing to turn on",
    "QueueConfig.delete_finished_tasks":
        "task records live in the broker, which keeps them as it is configured to",
    "QueueConfig.task_default_decode":
        "upstream never used it either; give the task decode= instead",
    "QueueConfig.logs_default_level_client":
        "client calls log through the 'qtasks.client' logger: set its level with logging",
    "QueueConfig.logs_format":
        "the serving commands log in one format; configure logging in your program to use another",
    "QueueConfig.result_time_interval":
        "results are pushed to waiting clients, never polled",
    "QueueConfig.result_statuses_end":
        "a wait ends at success, error or cancel (a retry chain's last task)",
    "add_plugin(component=\"storage\")":
        "task records are kept by the broker daemon, which loads no app plugins; hook storage "
        "operations with a storage of your own (qtasks-broker --storage module:factory)",
    "run_forever(loop=)":
        "the serving process runs no event loop of its own; each worker process runs one",
}

_warned: set[str] = set()


def warn_inert(name: str) -> None:
    """Log, once per process, that ``name`` was set but does nothing here."""
    if name in _warned:
        return
    _warned.add(name)
    log.warning("%s has no effect in this engine: %s", name, INERT[name])
