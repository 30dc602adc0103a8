"""The test case core: a ``TestConfig`` decides which components stay real (spec §11).

``settings(TestConfig...)`` swaps the components it turns off for inert stubs (and puts
back the real ones of an earlier ``settings``). ``add_task``/``get`` then go where the
config says:

- broker on: the app's own calls. With nothing listening at the app's broker URL, the
  test case serves the app in this process first (:class:`~qtasks.inprocess.InProcessStack`:
  the real broker core, and a worker actor when the worker is on), so ``add_task(...,
  timeout=)`` returns a finished task with no daemon running. A broker that listens
  (a server a fixture started) is used as it is.
- worker on, broker off: the task runs here through the worker's pipeline
  (:mod:`qtasks.tests.direct`) and its finished ``Task`` comes back.
- neither: a notice, and None.

``plugins=False`` removes the plugins the user added to the app and its components; the
built-in ones stay (they are how ``retry=``, ``Depends``, ``State`` and pydantic arguments
work, not something around the task). ``stop()`` stops what the test case started and puts
the real components back.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional

import qtasks.tests.stubs as stubs
from qtasks.exc import NotABrokerError
from qtasks.schemas.test import TestConfig

log = logging.getLogger("qtasks.tests")

_COMPONENTS = ("broker", "worker", "storage", "global_config")


class BaseTestCase:
    awaiting = False
    """Which stubs ``settings`` uses by default: async ones for the async test case."""

    def __init__(self, app: Any, name: Optional[str] = None) -> None:
        self.app = app
        self.name = name
        self.config = app.config
        self.test_config = TestConfig()
        self._real = {"broker": app.broker, "worker": app.worker, "storage": app.broker.storage,
                      "global_config": app.global_config}
        self._real_plugins: Optional[list[tuple[Any, dict[str, list[Any]]]]] = None
        self._stack: Any = None
        self._background: Optional[threading.Thread] = None

    # ------------------------------------------------------------------ configuring

    def update_config(self, config: Any) -> None:
        """Use ``config`` for the app under test and every component."""
        self.config = config
        self.app.update_config(config)

    def settings(self, test_config: Optional[TestConfig] = None, awaiting: Optional[bool] = None) -> None:
        """Keep the components ``test_config`` turns on; put stubs in place of the others."""
        self._restore()
        self.test_config = test_config if test_config is not None else TestConfig()
        awaiting = self.awaiting if awaiting is None else awaiting
        app, real, wanted = self.app, self._real, self.test_config
        component = dict(log=app.log, config=app.config, events=app.events)
        broker = real["broker"] if wanted.broker else stubs.TestBroker(app.name, **component)
        app.broker = broker
        app.worker = real["worker"] if wanted.worker else (
            stubs.AsyncTestWorker if awaiting else stubs.SyncTestWorker)(app.name, broker, **component)
        broker.storage = real["storage"] if wanted.storage else stubs.TestStorage(app.name, **component)
        app.global_config = real["global_config"] if wanted.global_config else (
            stubs.AsyncTestGlobalConfig if awaiting else stubs.SyncTestGlobalConfig)(app.name, **component)
        if not wanted.plugins:
            self._drop_user_plugins()

    def _drop_user_plugins(self) -> None:
        holders = [self.app, self.app.broker, self.app.worker, self.app.broker.storage, self.app.global_config,
                   self.app.starter]
        self._real_plugins = [(h, h.plugins) for h in holders if isinstance(getattr(h, "plugins", None), dict)]
        for holder, plugins in self._real_plugins:
            builtin = getattr(holder, "builtin_plugins", ())
            holder.plugins = {trigger: [p for p in found if p in builtin] for trigger, found in plugins.items()}

    def _restore(self) -> None:
        app, real = self.app, self._real
        app.broker, app.worker, app.global_config = real["broker"], real["worker"], real["global_config"]
        real["broker"].storage = real["storage"]
        for holder, plugins in self._real_plugins or ():
            holder.plugins = plugins
        self._real_plugins = None

    # ------------------------------------------------------------------ where calls go

    def _route(self) -> str:
        """"broker", "direct" or "nowhere", serving the app in this process if the broker needs it."""
        if self.test_config.broker:
            self._serve_if_nothing_listens()
            return "broker"
        return "direct" if self.test_config.worker else "nowhere"

    def _serve_if_nothing_listens(self) -> None:
        from qtasks.urls import NOTHING, STRANGER, probe

        url = self.app.broker.url
        if self._stack is not None or url.startswith("inproc://"):
            return
        found, detail = probe(url)
        if found == STRANGER:
            raise NotABrokerError(url, detail)
        if found == NOTHING:
            from qtasks.inprocess import InProcessStack

            self._stack = InProcessStack(self.app, workers=1 if self.test_config.worker else 0).start()
            log.info("[%s: %s] nothing listens at %s: serving the app in this process", type(self).__name__,
                     self.name, url)

    def _nowhere(self) -> None:
        print(f"[{type(self).__name__}: {self.name}] Be sure to enable Worker or Broker!")

    def _no_broker(self) -> None:
        print(f"[{type(self).__name__}: {self.name}] Be sure to enable Broker!")

    # ------------------------------------------------------------------ serving

    def start_in_background(self, starter: Any = None, num_workers: int = 4, reset_config: bool = True) -> None:
        """Serve the app while the test runs, without blocking: ``num_workers`` worker actors in this
        process (or, given a ``starter``, that starter in a thread)."""
        if starter is not None:
            self._background = threading.Thread(
                target=self.app._serve, args=(num_workers,),
                kwargs=dict(starter=starter, reset_config=reset_config), name="qtasks-test-starter", daemon=True)
            self._background.start()
            return
        if self._stack is None:
            from qtasks.inprocess import InProcessStack

            if reset_config:
                self.app.update_config(self.app.config)
            self._stack = InProcessStack(self.app, workers=num_workers).start()

    def _stop(self) -> None:
        if self._stack is not None:
            self._stack.stop()
            self._stack = None
        if self._background is not None:
            self.app._stop()
            self._background.join(30)
            self._background = None
        self._restore()

