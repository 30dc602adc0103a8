"""A worker process: the worker actor, plus what only a process has.

- **signals**: SIGTERM asks for a graceful stop, SIGQUIT (the supervisor's second request)
  for a stop now. Plain handlers rather than the loop's: asyncio puts the default action
  back when its handlers are removed at shutdown, and a SIGTERM arriving then would kill
  the process halfway through handing its work back.
- **the parent**: the kernel sends SIGTERM when the supervisor dies (``PR_SET_PDEATHSIG``,
  armed in the child before this runs); a death before that was armed shows in the
  parent pid. Elsewhere than Linux, the parent's sentinel pipe is watched.
- **liveness**: every heartbeat of the actor's loop writes its silence bound to a pipe the
  supervisor reads; if the ticks stop, the supervisor kills the process (R3).
- **threads**: plain ``def`` tasks run in a pool of daemon threads (anyio's are not daemon
  threads and kept stopped workers alive); the process ends without joining them when a
  task's thread never came back or the stop was not clean.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import struct
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import anyio
import multiprocess

from qtasks.worker.actor import WorkerActor
from qtasks.worker.component import ServedApp
from qtasks.worker.signals import unblock_stop_signals

log = logging.getLogger("qtasks.worker")

SWITCH_INTERVAL = 0.001
"""Seconds a thread holds the interpreter lock before another waiting for it gets a turn, in worker
processes (Python's default is 0.005)."""
LIVENESS_RECORD = struct.Struct("d")
"""What a worker's event loop writes to its liveness pipe at every tick: the seconds of
silence after which its supervisor may consider the loop blocked."""


def run_worker_process(served: ServedApp, options: dict[str, Any], *, liveness_fd: Optional[int] = None,
                       parent_pid: Optional[int] = None) -> int:
    """Serve as a worker process until stopped; returns the exit code (or never returns, when
    task threads that nobody waits for must not be joined)."""
    # The event loop hands results on and takes the next task while plain `def` tasks compute in
    # threads; it waits for the interpreter lock each time, by default up to 5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL)
    threads = ThreadPoolExecutor(max(32, 4 * options["concurrency"]), thread_name_prefix="qtasks-task")
    actor = WorkerActor(served, on_tick=_ticker(liveness_fd), **options)
    code: int = anyio.run(_serve, actor, threads, parent_pid, backend="asyncio")
    if code or actor.recycle:
        # Task threads may still run functions nobody waits for any more: don't join them.
        logging.shutdown()
        os._exit(code)
    threads.shutdown(wait=True)
    return code


async def _serve(actor: WorkerActor, threads: ThreadPoolExecutor, parent_pid: Optional[int]) -> int:
    asyncio.get_running_loop().set_default_executor(threads)  # threads start on demand; slots bound their use
    _handle_stop_signals(actor, parent_pid)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_watch_parent, actor, parent_pid)
        code = await actor.serve()
        tg.cancel_scope.cancel()
    return code


def _ticker(fd: Optional[int]) -> Any:
    if fd is None:
        return None

    def tick(bound: float) -> None:
        try:
            os.write(fd, LIVENESS_RECORD.pack(bound))
        except OSError:  # a full pipe (the supervisor is busy) or a gone supervisor: nothing to tell
            pass

    return tick


def _handle_stop_signals(actor: WorkerActor, parent_pid: Optional[int]) -> None:
    def on_signal(signum: int, frame: Any) -> None:
        if signum == signal.SIGTERM and parent_pid is not None and os.getppid() != parent_pid:
            log.warning("worker process %d: its supervisor is gone; stopping", actor.pid)
        actor.request_stop_threadsafe(now=signum == signal.SIGQUIT)

    for signum in (signal.SIGTERM, signal.SIGQUIT):
        signal.signal(signum, on_signal)
    unblock_stop_signals()  # a stop signal that came during start-up is delivered now


async def _watch_parent(actor: WorkerActor, parent_pid: Optional[int]) -> None:
    if parent_pid is not None and os.getppid() != parent_pid:
        log.warning("worker process %d: its supervisor is gone; stopping", actor.pid)
        actor.request_stop()
        return
    parent = multiprocess.parent_process()
    if sys.platform.startswith("linux") or parent is None or parent.sentinel is None:
        return
    await anyio.wait_readable(parent.sentinel)
    log.warning("worker process %d: its supervisor is gone; stopping", actor.pid)
    actor.request_stop()
