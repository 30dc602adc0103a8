"""Serving an app inside this process: the real broker and worker actors in threads, over ``inproc://``.

The same broker core and worker actors as a deployment, with no process, port or
daemon: what tests use to run tasks end to end in milliseconds (as dramatiq's
``stub_broker``/``stub_worker``), and what the test kit serves an app with::

    with InProcessStack(app, workers=2) as stack:
        assert add.add_task(1, 2, timeout=5).returning == 3
        stack.broker.core.stats()          # the broker's own view, in this process

Tasks run in this process: what needs a process of its own (kills, signals, a task that
forks or blocks its loop, per-process dependency scopes) belongs in a real deployment.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Optional

import anyio
import zmq
import zmq.asyncio

from broker_daemon.server import Broker
from qtasks.configs.config import broker_settings
from qtasks.current import set_current_app
from qtasks.worker.actor import WorkerActor

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class InProcessStack:
    def __init__(self, app: Any, *, workers: int = 1, concurrency: Optional[int] = None, grace: float = 5.0,
                 **broker_options: Any) -> None:
        """``broker_options``: ``heartbeat_interval``, ``heartbeat_liveness``, ``max_attempts``,
        ``max_message_size`` (default: the app's config)."""
        self.app = app
        self.url = f"inproc://qtasks-{app.name}-{os.urandom(4).hex()}"
        self.broker = Broker(self.url, context=zmq.Context.instance(),
                             **{**broker_settings(app.config), **broker_options})
        self.actors = [
            WorkerActor(app.worker.serve(app), url=self.url, index=index, grace=grace,
                        concurrency=concurrency or app.config.max_tasks_process,
                        context=zmq.asyncio.Context(zmq.Context.instance()))
            for index in range(workers)
        ]
        self._threads: list[threading.Thread] = []
        self._previous_url: Optional[str] = None

    def start(self) -> InProcessStack:
        """Bind the broker, start the workers, and point the app at them; returns once they registered."""
        self.broker.bind()
        self._thread(self.broker.serve_forever, "qtasks-broker")
        for actor in self.actors:
            self._thread(lambda actor=actor: anyio.run(actor.serve), f"qtasks-worker-{actor.index}")
        for actor in self.actors:
            if not actor.registered.wait(START_TIMEOUT):
                self.stop()
                raise RuntimeError(f"an in-process worker did not register within {START_TIMEOUT} s")
        self._previous_url = self.app.broker.url
        self.app.broker.use_url(self.url)
        set_current_app(self.app)
        self.app.events.fire_sync("starting", starter=self, worker=self.app.worker, broker=self.app.broker)
        return self

    def stop(self) -> None:
        """Stop the workers gracefully, then the broker; the app talks to its own URL again."""
        for actor in self.actors:
            actor.request_stop_threadsafe()
        for thread in self._threads[1:]:
            thread.join(STOP_TIMEOUT)
        self.broker.stop()
        if self._threads:
            self._threads[0].join(STOP_TIMEOUT)
        if self._previous_url is not None:
            self.app.events.fire_sync("stopping", starter=self, worker=self.app.worker, broker=self.app.broker)
            self.app.broker.use_url(self._previous_url)
            self._previous_url = None
        self._threads = []

    def __enter__(self) -> InProcessStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _thread(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
