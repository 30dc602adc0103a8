"""The supervisor: starts N worker processes (and a broker when none listens), restarts
the one that dies — only that one — and stops them all gracefully on SIGTERM/SIGINT.

It owns no ZeroMQ context and no threads, so forking a replacement is always safe
(DESIGN: nothing ZeroMQ crosses a fork). It sleeps in one ``wait`` on the
processes' sentinels and a wake pipe, so it does no work between events::

    supervisor ──fork──▶ embedded broker (only if nothing listens at the URL)
        │      ──fork──▶ worker 0 … worker N-1      (each: WorkerActor.run())
        └─ wait(sentinels + wake pipe) ─▶ a worker died → fork a replacement that tells the
                                          broker which pid it replaces and why it ended
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

from qtasks.logs import configure_process_logging
from qtasks.urls import is_listening
from qtasks.worker.signals import start_with_stop_signals_blocked, unblock_stop_signals

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
    __slots__ = ("index", "process", "started_at", "fast_deaths", "restart_at", "last_cause")

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: Any = None
        self.started_at = 0.0
        self.fast_deaths = 0
        self.restart_at: Optional[float] = None
        self.last_cause: Optional[str] = None


class Supervisor:
    def __init__(self, app: Any, *, processes: int, url: str, concurrency: int, grace: float) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.app = app
        self.processes = processes
        self.url = url
        self.concurrency = concurrency
        self.grace = grace
        self.broker_process: Any = None
        self._context = multiprocess.get_context("fork")
        self._slots = [_Slot(i) for i in range(processes)]
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stop_requests = 0

    # ------------------------------------------------------------------ public

    def run(self) -> int:
        """Serve until asked to stop; returns the exit code (0 = every worker stopped cleanly)."""
        configure_process_logging(self.app.config.logs_default_level_server)
        restore = self._install_signal_handlers()
        try:
            if not is_listening(self.url):
                self._start_broker()
            else:
                log.info("connecting %d worker process(es) to the broker at %s", self.processes, self.url)
            events = self.app.events
            events.fire_sync("starting", starter=self, worker=self.app.worker, broker=self.app.broker)
            for slot in self._slots:
                self._start_worker(slot)
            self._supervise()
            code = self._shutdown()
            events.fire_sync("stopping", starter=self, worker=self.app.worker, broker=self.app.broker)
            return code
        finally:
            self._stop_broker()
            restore()

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
        process = self._context.Process(target=_broker_main, args=(self.url, sender, self._wake_fds()),
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
        log.info("no broker was listening at %s, so this process hosts one (pid %d) at %s; "
                 "it keeps tasks in memory and stops with these workers",
                 self.app.broker.url, process.pid, detail)
        print(f"qtasks: embedded broker listening at {detail}", flush=True)

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
        options = dict(url=self.url, concurrency=self.concurrency, grace=self.grace,
                       replaces=replaces, cause=cause, index=slot.index)
        process = self._context.Process(target=_worker_main,
                                        args=(self.app, options, self._wake_fds()),
                                        name=f"qtasks-worker-{slot.index}", daemon=False)
        start_with_stop_signals_blocked(process)
        slot.process = process
        slot.started_at = time.monotonic()
        slot.restart_at = None

    def _wake_fds(self) -> tuple[int, int]:
        return (self._wake_r, self._wake_w)

    # ------------------------------------------------------------------ the loop

    def _supervise(self) -> None:
        while not self._stop_requests:
            timeout = self._next_restart_in()
            waitables = [self._wake_r] + [s.process.sentinel for s in self._slots if s.restart_at is None]
            if self.broker_process is not None:
                waitables.append(self.broker_process.sentinel)
            ready = wait_for(waitables, timeout)
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            if self._stop_requests:
                break
            self._check_broker()
            self._reap_and_restart()

    def _next_restart_in(self) -> Optional[float]:
        pending = [s.restart_at for s in self._slots if s.restart_at is not None]
        return max(0.0, min(pending) - time.monotonic()) if pending else None

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
                slot.last_cause = describe_exit(process.exitcode)
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
        deadline = time.monotonic() + self.grace + STOP_MARGIN
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
        code = 0
        for process in live:
            if process.is_alive():
                log.error("worker pid %d did not stop in time; killing it", process.pid)
                process.kill()
            process.join()
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


def _signal(process: Any, signum: int) -> None:
    try:
        os.kill(process.pid, signum)
    except ProcessLookupError:
        pass


def _child_setup(inherited_fds: tuple[int, ...]) -> None:
    """In a fresh child (stop signals still blocked): drop the supervisor's signal handling and wake pipe.

    SIGINT is ignored: Ctrl+C reaches the whole process group and the supervisor decides.
    SIGTERM is ignored until the child's own handler is in place (and again after it is
    removed during teardown), so the copy a group-wide kill delivers next to the
    supervisor's own forwarded SIGTERM can never kill a child halfway.
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    for fd in inherited_fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _worker_main(app: Any, options: dict[str, Any], inherited_fds: tuple[int, ...]) -> None:
    _child_setup(inherited_fds)
    from qtasks.worker.actor import WorkerActor

    sys.exit(WorkerActor(app, **options).run())


def _broker_main(url: str, report: Any, inherited_fds: tuple[int, ...]) -> None:
    _child_setup(inherited_fds)
    import zmq

    from broker_daemon.server import Broker

    broker = Broker(url)
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
