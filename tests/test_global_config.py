"""The global config is one store for every process of a deployment, on both faces."""

from __future__ import annotations

import asyncio
import os
import subprocess

import qtasks.asyncio
from qtasks import QueueTasks
from tests.support import broker_process, wait_for_workers, worker_pids, worker_process


def test_worker_processes_and_clients_share_the_global_config_sync():
    with broker_process() as (url, _):
        with worker_process("tests.apps.globals_app:sync_app", url, processes=2, stderr=subprocess.DEVNULL):
            client = QueueTasks(name="globals-sync", broker_url=url)
            try:
                wait_for_workers(client, 2)
                client.global_config.set("main", "mode", "maintenance")
                pid, seen = client.add_task("read", "main", "mode", timeout=20).returning
                assert seen == "maintenance" and pid != os.getpid()
                writer = client.add_task("write", "flags", "beta", True, timeout=20).returning
                assert client.global_config.get("flags", "beta") is True
                assert client.global_config.get_all("flags") == {"beta": True}
                assert client.global_config.get_match("ma*") == {"main": {"mode": "maintenance"}}
                assert client.global_config.get("flags", "missing") is None
                assert writer in worker_pids(client)
            finally:
                client.close()


def test_worker_processes_and_clients_share_the_global_config_async():
    with broker_process() as (url, _):
        with worker_process("tests.apps.globals_app:async_app", url, stderr=subprocess.DEVNULL):
            observer = QueueTasks(name="globals-async", broker_url=url)
            wait_for_workers(observer, 1)
            observer.close()

            async def scenario() -> None:
                client = qtasks.asyncio.QueueTasks(name="globals-async", broker_url=url)
                try:
                    await client.global_config.set("main", "mode", "on")
                    assert (await client.add_task("read_async", "main", "mode", timeout=20)).returning[1] == "on"
                    await client.add_task("write_async", "main", "mode", "off", timeout=20)
                    assert await client.global_config.get("main", "mode") == "off"
                    assert await client.global_config.get_all("main") == {"mode": "off"}
                finally:
                    client.close()

            asyncio.run(scenario())


def test_apps_of_different_names_do_not_share_it(basic_stack):
    from tests.apps import basic

    basic.app.global_config.set("main", "owner", "basic")
    other = QueueTasks(name="someone-else", broker_url=basic_stack.url)
    try:
        assert other.global_config.get("main", "owner") is None
    finally:
        other.close()
