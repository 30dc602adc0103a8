"""Prometheus metrics of a broker (``qtasks-broker --metrics 127.0.0.1:9464``), made at scrape time.

A custom collector reads the broker's telemetry and tables when Prometheus asks, from the
HTTP server's thread; routing pays nothing for it beyond the telemetry updates it does
anyway. It copies each table first (one C-level call, atomic under the GIL) and retries the
rare scrape that meets a table in the middle of a change. Names::

    qtasks_tasks_total{task, status}          counter; status: submitted, succeeded, failed,
                                              retried, cancelled, lost
    qtasks_queue_wait_seconds{task}           histogram: submit to the delivery that ran it
    qtasks_run_seconds{task}                  histogram: that delivery to its result
    qtasks_queue_depth{queue, priority}       gauge: tasks waiting in line
    qtasks_delayed_tasks                      gauge: tasks held until a retry delay ends
    qtasks_in_flight_tasks                    gauge: deliveries running on workers
    qtasks_workers                            gauge: worker processes connected
    qtasks_worker_slots                       gauge: tasks they may run at once, together
    qtasks_broker_uptime_seconds              gauge
    process_*                                 the broker process (CPU, memory, open files)

Task names past ``telemetry.MAX_TASK_NAMES`` share the label ``other``, and queues past
``MAX_QUEUES`` are left out, so the number of series stays bounded.

The broker's routing loop and the HTTP thread share one interpreter lock, so scrapes are
bounded in what they may take from routing: one thread answers them one at a time, and a
scrape that comes sooner than ``MIN_INTERVAL`` after the last one waits (sleeping, which
holds no lock) until then. Prometheus scrapes every 15 s or so; a client scraping in a loop
gets ``1 / MIN_INTERVAL`` answers a second and routing hardly notices (see the README).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, ProcessCollector, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from broker_daemon.telemetry import OUTCOMES

if TYPE_CHECKING:
    from broker_daemon.core import BrokerCore


MAX_QUEUES = 100
MIN_INTERVAL = 1.0
"""Seconds between the starts of two scrapes, at least."""
REQUEST_TIMEOUT = 10.0
"""Seconds a scraper may take to send its request (one slow client holds up only other scrapes)."""
_TRIES = 5


class BrokerCollector(Collector):
    def __init__(self, core: BrokerCore) -> None:
        self.core = core

    def collect(self) -> Iterator[Metric]:
        for attempt in range(_TRIES):
            try:
                metrics = self._metrics()
            except RuntimeError:  # a table changed size while it was copied: read it again
                if attempt == _TRIES - 1:
                    raise
                continue
            yield from metrics
            return

    def _metrics(self) -> list[Metric]:
        core = self.core
        telemetry = core.telemetry
        tasks = CounterMetricFamily("qtasks_tasks", "Tasks per task name and outcome.", labels=["task", "status"])
        wait = HistogramMetricFamily("qtasks_queue_wait_seconds", "Seconds from submit to the delivery that ran it.",
                                     labels=["task"])
        run = HistogramMetricFamily("qtasks_run_seconds", "Seconds from that delivery to its result.",
                                    labels=["task"])
        for name, stats in list(telemetry.tasks.items()):
            for status, count in zip(OUTCOMES, list(stats.outcomes), strict=True):
                tasks.add_metric([name, status], count)
            for family, histogram in ((wait, stats.wait), (run, stats.run)):
                family.add_metric([name], histogram.cumulative(), histogram.total)
        depth = GaugeMetricFamily("qtasks_queue_depth", "Tasks waiting in line, per queue and priority.",
                                  labels=["queue", "priority"])
        for queue_name, queue in list(core.dispatcher.queues.items())[:MAX_QUEUES]:
            for priority, count in queue.levels().items():
                depth.add_metric([queue_name, str(priority)], count)
        workers = list(core.workers.values())
        return [
            tasks, wait, run, depth,
            GaugeMetricFamily("qtasks_delayed_tasks", "Tasks held until their retry delay ends.",
                              value=len(core.delayed)),
            GaugeMetricFamily("qtasks_in_flight_tasks", "Deliveries running on workers.", value=len(core.inflight)),
            GaugeMetricFamily("qtasks_workers", "Worker processes connected.", value=len(workers)),
            GaugeMetricFamily("qtasks_worker_slots", "Tasks the connected workers may run at once, together.",
                              value=sum(w.concurrency for w in workers)),
            GaugeMetricFamily("qtasks_broker_uptime_seconds", "Seconds since the broker started.",
                              value=time.time() - core.started_at),
        ]


class _Quiet(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        """No line per scrape."""


class _Spaced:
    """WSGI middleware: each request starts at least ``MIN_INTERVAL`` after the one before (one thread
    serves them, so they never overlap)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self._last = float("-inf")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        wait = self._last + MIN_INTERVAL - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last = time.monotonic()
        return self.app(environ, start_response)


class MetricsServer:
    """The HTTP endpoint (``/metrics``) in a thread of its own."""

    def __init__(self, core: BrokerCore, host: str, port: int) -> None:
        registry = CollectorRegistry()
        registry.register(BrokerCollector(core))
        ProcessCollector(registry=registry)
        server_class = type("MetricsHTTPServer", (WSGIServer,),
                            {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
        self._server: WSGIServer = make_server(host, port, _Spaced(make_wsgi_app(registry)), server_class, _Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, name="qtasks-metrics", daemon=True)
        self._thread.start()
        self.host = host
        self.port: int = self._server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
