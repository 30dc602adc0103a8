"""The supervisor: starts N worker processes (and a broker when none listens), restarts
the one that dies — only that one — and stops them all gracefully on SIGTERM/SIGINT.

It owns no ZeroMQ context and no threads, so forking a replacement is always safe
(DESIGN: nothing ZeroMQ crosses a fork). It sleeps in one ``wait`` on the
processes' sentinels and a wake pipe, so it does no work between events::

    supervisor ──fork──▶ embedded broker (only if nothing listens at the URL, the URL is a
        │                 loopback one and the app has no CURVE keys: a hosted broker has none)
        │      ──fork──▶ worker 0 … worker N-1      (each: WorkerActor.run(), its own process group)
        └─ wait(sentinels + liveness pipes + wake pipe)
              ├─ a worker died → kill what is left of its process group, fork a replacement
              │                  that tells the broker which pid it replaces and why it ended
              └─ a worker's event loop stopped ticking (its liveness pipe went quiet past the
                 bound it announced) → SIGKILL it, so its tasks run elsewhere, not in two places

Each worker gets SIGTERM from the kernel if the supervisor dies (``PR_SET_PDEATHSIG``), so
orphans all begin their graceful stop at once.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Optional

import multiprocess
from multiprocess.connection import wait as wait_for

from qtasks.configs.config import broker_settings
from qtasks.exc import NotABrokerError
from qtasks.logs import configure_process_logging
from qtasks.plugins.base import BasePlugin, run_to_end
from qtasks.plugins.triggers import Plugins, all_plugins, fire_sync
from qtasks.security import ClientKeys, config_keys
from qtasks.urls import NOTHING, STRANGER, is_loopback, probe
from qtasks.worker.base import BaseStarter
from qtasks.worker.process import LIVENESS_RECORD
from qtasks.worker.signals import start_with_stop_signals_blocked, stop_when_parent_dies, unblock_stop_signals

log = logging.getLogger("qtasks.supervisor")

FAST_DEATH = 2.0
"""A process that dies sooner than this after starting counts towards a crash loop."""
FREE_RESTARTS = 3
"""Fast deaths in a row restarted at once (a poison task is retried max-attempts times, and the
replacement's first READY tells the broker at once which pid died and how)."""
MAX_RESTART_DELAY = 10.0
BROKER_START_TIMEOUT = 10.0
STOP_MARGIN = 5.0
"""Seconds past the grace period before stragglers are killed."""


def describe_exit(exitcode: Optional[int]) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown signal"
        return f"signal {-exitcode}, {name}"
    return f"exit code {exitcode}"


class _Slot:
    __slots__ = ("index", "process", "started_at", "fast_deaths", "restart_at", "last_cause",
                 "liveness", "silent_deadline", "silent_bound", "killed_because")

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: Any = None
        self.started_at = 0.0
        self.fast_deaths = 0
        self.restart_at: Optional[float] = None
        self.last_cause: Optional[str] = None
        self.liveness: Optional[int] = None
        """Read end of the pipe the worker's event loop ticks on."""
        self.silent_deadline: Optional[float] = None
        self.silent_bound = 0.0
        self.killed_because: Optional[str] = None

    def heard(self, now: float) -> None:
        """Read the worker's ticks; each one pushes the deadline its loop must tick again by."""
        assert self.liveness is not None
        try:
            data = os.read(self.liveness, 4096)
        except (BlockingIOError, OSError):
            return
        size = LIVENESS_RECORD.size
        end = len(data) - len(data) % size
        if end:
            (bound,) = LIVENESS_RECORD.unpack(data[end - size:end])  # the latest tick
            self.silent_bound = bound
            self.silent_deadline = now + bound

    def close_liveness(self) -> None:
        if self.liveness is not None:
            os.close(self.liveness)
            self.liveness = None
        self.silent_deadline = None


class Supervisor(BaseStarter):
    """The default starter (``qtasks.starters.SyncStarter``/``AsyncStarter``).

    Options left None come from the app when serving starts: ``processes`` from
    ``num_workers``, ``url`` from the app's broker, ``concurrency`` from
    ``config.max_tasks_process``, ``grace`` from ``config.shutdown_grace``.
    """

    def __init__(self, app: Any = None, *, processes: Optional[int] = None, url: Optional[str] = None,
                 concurrency: Optional[int] = None, grace: Optional[float] = None,
                 log_level: Optional[int] = None, name: Optional[str] = None, broker: Any = None,
                 worker: Any = None, log: Any = None, config: Any = None, events: Any = None) -> None:
        super().__init__(name or getattr(app, "name", None), broker, worker, log, config, events)
        if processes is not None and processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.app = app
        self.processes = processes
        self.url = url
        self.concurrency = concurrency
        self.grace = grace
        self.log_level = log_level
        self.broker_process: Any = None
        self.curve: Optional[ClientKeys] = None
        """The app's CURVE keys, which its worker processes connect with."""
        self._context = multiprocess.get_context("fork")
        self._slots: list[_Slot] = []
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stop_requests = 0

    # ------------------------------------------------------------------ public

    def start(self, num_workers: int = 4, reset_config: bool = True, plugins: Any = None) -> int:
        """Serve the app with ``num_workers`` worker processes until asked to stop; returns the exit
        code (0 = every worker stopped cleanly)."""
        app = self.app
        if app is None:
            raise RuntimeError("a starter serves an app: start it with app.run_forever(starter=...)")
        config = app.config
        self.broker, self.worker = self.broker or app.broker, self.worker or app.worker
        self.events = self.events or app.events
        self.processes = self.processes or num_workers
        if self.processes < 1:
            raise ValueError(f"processes must be at least 1, got {self.processes}")
        self.url = self.url or app.broker.url
        self.concurrency = self.concurrency or config.max_tasks_process
        self.grace = config.shutdown_grace if self.grace is None else self.grace
        self.log_level = config.logs_default_level_server if self.log_level is None else self.log_level
        if reset_config:
            self.update_configs(config)
        self.curve = config_keys(config)  # a bad key file stops serving here, naming the file
        self._slots = [_Slot(i) for i in range(self.processes)]
        return self.run(plugins or {})

    def run(self, plugins: Plugins) -> int:
        assert self.url is not None and self.log_level is not None, "start() fills these in"
        configure_process_logging(self.log_level)
        restore = self._install_signal_handlers()
        app, events = self.app, self.events
        every = all_plugins(app.plugins, plugins, self.plugins, app.broker.plugins, app.global_config.plugins)
        try:
            found, detail = probe(self.url)
            if found == NOTHING and self.curve is not None:
                log.warning("nothing listens at %s yet; this app has CURVE keys, so it does not host a broker "
                            "(a hosted one has no keys): its %d worker process(es) wait for `qtasks-broker "
                            "--curve-secret-key ...` there", self.url, self.processes)
            elif found == NOTHING and not is_loopback(self.url):
                log.warning("nothing listens at %s yet; a broker hosted here would have no keys, so it is only "
                            "hosted on a loopback address: the %d worker process(es) wait for a broker there "
                            "(qtasks-broker --bind %s --curve-secret-key ...)", self.url, self.processes,
                            self.url)
            elif found == NOTHING:
                self._start_broker()
            elif found == STRANGER:
                raise NotABrokerError(self.url, detail)
            else:
                log.info("connecting %d worker process(es) to the broker at %s", self.processes, self.url)
            app.broker.use_url(self.url)  # the app's own calls, here and in every worker, go there too
            self._fire("starter_start", plugins)
            _each(every, "start")
            events.fire_sync("starting", starter=self, worker=self.worker, broker=self.broker)
            run_to_end(self.broker.start(self.worker))
            run_to_end(app.global_config.start())
            for slot in self._slots:
                self._start_worker(slot)
            self._supervise()
            code = self._shutdown()
            self._fire("starter_stop", plugins)
            run_to_end(self.broker.stop())
            run_to_end(app.global_config.stop())
            events.fire_sync("stopping", starter=self, worker=self.worker, broker=self.broker)
            _each(every, "stop")
            return code
        finally:
            self._stop_broker()
            restore()

    def _fire(self, trigger: str, plugins: Plugins) -> None:
        for found in (self.app.plugins, plugins, self.plugins):
            if found:
                fire_sync(found, trigger, starter=self)

    def stop(self) -> None:
        """Ask for a graceful stop (a second call makes it a hard one). Thread- and signal-safe."""
        self._stop_requests += 1
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass

    # ------------------------------------------------------------------ processes

    def _start_broker(self) -> None:
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_broker_main, args=(self.url, broker_settings(self.app.config),
                                                                   sender, self._wake_fds()),
                                        name="qtasks-broker", daemon=False)
        start_with_stop_signals_blocked(process)
        sender.close()
        if not receiver.poll(BROKER_START_TIMEOUT):
            process.kill()
            raise RuntimeError(f"the embedded broker did not start within {BROKER_START_TIMEOUT} s")
        status, detail = receiver.recv()
        receiver.close()
        if status == "in-use":
            process.join()
            log.info("a broker started at %s meanwhile; connecting to it", self.url)
            return
        if status != "ok":
            process.join()
            raise RuntimeError(f"could not host a broker at {self.url}: {detail}")
        self.broker_process = process
        self.url = detail
        log.info("no broker was listening at %s, so this process hosts one (pid %d): embedded broker "
                 "listening at %s; it keeps tasks in memory and stops with these workers",
                 self.app.broker.url, process.pid, detail)

    def _stop_broker(self) -> None:
        process, self.broker_process = self.broker_process, None
        if process is None or not process.is_alive():
            return
        process.terminate()
        process.join(STOP_MARGIN)
        if process.is_alive():
            process.kill()
            process.join()

    def _start_worker(self, slot: _Slot, replaces: Optional[int] = None, cause: Optional[str] = None) -> None:
        liveness_r, liveness_w = os.pipe()
        options = dict(url=self.url, concurrency=self.concurrency, grace=self.grace,
                       replaces=replaces, cause=cause, index=slot.index, curve=self.curve)
        inherited = (*self._wake_fds(), liveness_r)
        process = self._context.Process(target=_worker_main,
                                        args=(self.app, options, liveness_w, os.getpid(), inherited),
                                        name=f"qtasks-worker-{slot.index}", daemon=False)
        start_with_stop_signals_blocked(process)
        os.close(liveness_w)
        os.set_blocking(liveness_r, False)
        slot.process = process
        slot.liveness = liveness_r
        slot.silent_deadline = None
        slot.killed_because = None
        slot.started_at = time.monotonic()
        slot.restart_at = None

    def _wake_fds(self) -> tuple[int, ...]:
        """Descriptors a child must close: the wake pipe, and the other workers' liveness pipes."""
        return (self._wake_r, self._wake_w, *(s.liveness for s in self._slots if s.liveness is not None))

    # ------------------------------------------------------------------ the loop

    def _supervise(self) -> None:
        while not self._stop_requests:
            running = [s for s in self._slots if s.restart_at is None]
            waitables = [self._wake_r] + [s.process.sentinel for s in running]
            waitables += [s.liveness for s in running if s.liveness is not None]
            if self.broker_process is not None:
                waitables.append(self.broker_process.sentinel)
            ready = set(wait_for(waitables, self._next_deadline_in()))
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            if self._stop_requests:
                break
            now = time.monotonic()
            for slot in running:
                if slot.liveness in ready:
                    slot.heard(now)
            self._check_broker()
            self._kill_blocked(now)
            self._reap_and_restart()

    def _next_deadline_in(self) -> Optional[float]:
        """Seconds until a restart is due or a worker's loop must have ticked again."""
        pending = [s.restart_at for s in self._slots if s.restart_at is not None]
        pending += [s.silent_deadline for s in self._slots
                    if s.restart_at is None and s.silent_deadline is not None]
        return max(0.0, min(pending) - time.monotonic()) if pending else None

    def _kill_blocked(self, now: float) -> None:
        """R3: a worker whose event loop stopped ticking gets no more chances; its tasks run elsewhere."""
        for slot in self._slots:
            deadline = slot.silent_deadline
            if slot.restart_at is not None or deadline is None or now < deadline:
                continue
            slot.silent_deadline = None
            if not slot.process.is_alive():
                continue
            blocked = slot.silent_bound + (now - deadline)
            slot.killed_because = (f"its event loop was blocked for {blocked:.1f} s (a blocking call in an "
                                   "async def task?); the supervisor killed it")
            log.error("worker process %d (pid %d): %s; its tasks go to other processes", slot.index,
                      slot.process.pid, slot.killed_because)
            _signal(slot.process, signal.SIGKILL)

    def _check_broker(self) -> None:
        process = self.broker_process
        if process is not None and not process.is_alive():
            log.error("the embedded broker (pid %d) died (%s); starting a new one — tasks it held "
                      "in memory are lost", process.pid, describe_exit(process.exitcode))
            self.broker_process = None
            self._start_broker()

    def _reap_and_restart(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            process = slot.process
            if slot.restart_at is None and not process.is_alive():
                process.join()
                _kill_group(process.pid)  # what its tasks forked and left behind
                slot.close_liveness()
                slot.last_cause = slot.killed_because or describe_exit(process.exitcode)
                lived = now - slot.started_at
                slot.fast_deaths = slot.fast_deaths + 1 if lived < FAST_DEATH else 0
                loop = slot.fast_deaths - FREE_RESTARTS
                delay = min(0.5 * 2 ** (loop - 1), MAX_RESTART_DELAY) if loop > 0 else 0.0
                slot.restart_at = now + delay
                log.warning("worker process %d (pid %d) ended (%s) after %.1f s; starting a replacement%s",
                            slot.index, process.pid, slot.last_cause, lived,
                            f" in {delay:.1f} s" if delay else "")
            if slot.restart_at is not None and slot.restart_at <= now:
                self._start_worker(slot, replaces=process.pid, cause=slot.last_cause)

    def _shutdown(self) -> int:
        live = [s.process for s in self._slots if s.restart_at is None and s.process.is_alive()]
        log.info("stopping %d worker process(es) (grace %g s)", len(live), self.grace)
        forwarded = self._stop_requests
        for process in live:
            _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + (self.grace or 0.0) + STOP_MARGIN
        while True:
            running = [p for p in live if p.is_alive()]  # one check: a later exit still wakes the wait
            remaining = deadline - time.monotonic()
            if not running or remaining <= 0:
                break
            ready = wait_for([self._wake_r] + [p.sentinel for p in running], remaining)
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            if self._stop_requests > forwarded:  # asked again: make it a hard stop
                forwarded = self._stop_requests
                log.warning("asked again to stop: telling the workers to stop now (SIGQUIT)")
                for process in running:
                    _signal(process, signal.SIGQUIT)
        for slot in self._slots:
            slot.close_liveness()
        code = 0
        for process in live:
            if process.is_alive():
                log.error("worker pid %d did not stop in time; killing it", process.pid)
                process.kill()
            process.join()
            _kill_group(process.pid)
            if process.exitcode != 0:
                log.warning("worker pid %d ended with %s", process.pid, describe_exit(process.exitcode))
                code = 1
        return code

    def _install_signal_handlers(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # embedded in a thread: stop() is the way to end it
        previous = {s: signal.signal(s, lambda *_: self.stop()) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

        return restore


def _each(plugins: list[BasePlugin], method: str) -> None:
    """``start()`` or ``stop()`` every plugin once; a failing one is logged, the rest carry on."""
    for plugin in plugins if method == "start" else reversed(plugins):
        try:
            run_to_end(getattr(plugin, method)())
        except Exception:
            log.exception("plugin %s failed to %s", plugin.name, method)


def _signal(process: Any, signum: int) -> None:
    try:
        os.kill(process.pid, signum)
    except ProcessLookupError:
        pass


def _kill_group(pgid: int) -> None:
    """SIGKILL whatever is left in an exited worker's process group (children its tasks forked)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _child_setup(inherited_fds: tuple[int, ...]) -> None:
    """In a fresh child (stop signals still blocked): drop the supervisor's signal handling and pipes.

    SIGINT is ignored: Ctrl+C reaches the supervisor's process group and the supervisor decides.
    SIGTERM is ignored until the child's own handler is in place (and again after it is
    removed during teardown), so a SIGTERM arriving next to the supervisor's own forwarded
    one can never kill a child halfway. The kernel sends SIGTERM when the supervisor dies.
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    stop_when_parent_dies()
    for fd in inherited_fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _worker_main(app: Any, options: dict[str, Any], liveness_fd: int, parent_pid: int,
                 inherited_fds: tuple[int, ...]) -> None:
    os.setpgid(0, 0)  # a group of its own: what its tasks fork is killed with it
    _child_setup(inherited_fds)
    from qtasks.worker.output import write_whole_lines
    from qtasks.worker.process import run_worker_process

    write_whole_lines()
    sys.exit(run_worker_process(app.worker.serve(app), options, liveness_fd=liveness_fd, parent_pid=parent_pid))


def _broker_main(url: str, settings: dict[str, Any], report: Any, inherited_fds: tuple[int, ...]) -> None:
    _child_setup(inherited_fds)
    import zmq

    from broker_daemon.server import Broker

    broker = Broker(url, **settings)
    try:
        endpoint = broker.bind()
    except zmq.ZMQError as exc:
        unblock_stop_signals()
        report.send(("in-use" if exc.errno == errno.EADDRINUSE else "error", exc.strerror))
        sys.exit(2)
    for signum in (signal.SIGTERM, signal.SIGQUIT):
        signal.signal(signum, lambda *_: broker.stop())
    unblock_stop_signals()
    report.send(("ok", endpoint))
    report.close()
    broker.serve_forever()
