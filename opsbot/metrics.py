"""Prometheus metrics with ``prometheus_client``: counters, histograms, and gauges read at scrape.

Each process counts in its own ``Metrics`` (the runtime holds one). Under
gunicorn the counters live in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode): every worker writes its own files and a scrape of any
worker sums them all, so a counter is exact across workers and survives a
worker's restart. ``opsbot serve`` and ``opsbot run`` prepare that directory
in the gunicorn master (``prepare_multiprocess``): the one named by the
variable, wiped at start as the client's documentation asks, or a private one
made for the server's lifetime when the variable is unset.

Labels are bounded: route templates, not paths; a method opsbot does not serve
is ``other``; no label ever takes a sender-chosen value as it comes.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics import disable_created_metrics
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Methods a route can answer; anything else a client sends is counted as "other".
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# name -> (help, label names). Label names are sorted: the exposition shows them in this order.
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "opsbot_deliveries_total": ("Deliveries by channel and outcome.", ("channel", "outcome")),
    "opsbot_alerts_total": ("Alerts parsed, by source and decision.", ("decision", "source")),
    "opsbot_outbox_total": ("Outbox sends by target and outcome.", ("outcome", "target")),
    "opsbot_jira_errors_total": ("Jira calls refused, by kind.", ("kind",)),
    "opsbot_slack_errors_total": ("Slack Web API errors, by error code.", ("error",)),
    "opsbot_sns_subscriptions_refused_total": ("SNS subscriptions refused.", ("reason",)),
}
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "opsbot_http_request_duration_seconds": (
        "HTTP request latency by route template, method and status code.",
        ("endpoint", "method", "status"),
    ),
}
IN_FLIGHT = "opsbot_http_requests_in_flight"


def multiprocess_dir() -> str | None:
    """Return the multiprocess directory in force, or None for a single process."""
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess() -> str | None:
    """Put this process (and the workers it forks) in multiprocess mode; return a dir it made.

    With ``PROMETHEUS_MULTIPROC_DIR`` set, its ``*.db`` files from an earlier
    run are removed; unset, a private directory is made and named in the
    variable (the caller removes it at exit with ``remove_multiprocess_dir``).
    """
    given = multiprocess_dir()
    made = None
    if given:
        os.makedirs(given, exist_ok=True)
        for stale in glob.glob(os.path.join(given, "*.db")):
            os.remove(stale)
    else:
        made = tempfile.mkdtemp(prefix="opsbot-metrics-")
        os.environ[MULTIPROC_ENV] = made
    # The client picks its value class when imported, before opsbot could set the variable.
    values.ValueClass = values.get_value_class()
    return made


def remove_multiprocess_dir(path: str) -> None:
    """Remove a private multiprocess directory made by ``prepare_multiprocess``."""
    shutil.rmtree(path, ignore_errors=True)


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay in the sums)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


def http_method_label(method: str) -> str:
    """Return the method as a label value: one opsbot serves, else ``other``."""
    return method if method in HTTP_METHODS else "other"


class _Own:
    """A collector over a registry (so one registry's metrics join another's scrape)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


class Metrics:
    """This process's counters and histograms, in a registry of its own."""

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: one number per counter, as before
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._counters: dict[str, Counter] = {}
        self._histograms: dict[str, Histogram] = {}
        for name, (doc, labels) in COUNTERS.items():
            self._counter(name, labels, doc)
        for name, (doc, labels) in HISTOGRAMS.items():
            self._histogram(name, labels, doc)
        self.in_flight = Gauge(
            IN_FLIGHT,
            "HTTP requests being served now.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter (one not in ``COUNTERS`` is made on first use)."""
        counter = self._counter(name, tuple(sorted(labels)), name)
        (counter.labels(**labels) if labels else counter).inc(amount)

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one observation in a histogram."""
        histogram = self._histogram(name, tuple(sorted(labels)), name)
        (histogram.labels(**labels) if labels else histogram).observe(value)

    def value(self, name: str, **labels: str) -> float:
        """Return this process's count of a counter (0 when never incremented)."""
        found = self.registry.get_sample_value(name, labels)
        return float(found or 0.0)

    def render(self, collectors: Sequence[Collector] = ()) -> bytes:
        """Return every metric in the Prometheus text format, with the given collectors' too.

        In multiprocess mode the counters are the sums over every process's files.
        """
        registry = CollectorRegistry(auto_describe=False)
        if multiprocess_dir():
            multiprocess.MultiProcessCollector(registry)
        else:
            registry.register(_Own(self.registry))
        for collector in collectors:
            registry.register(collector)
        return generate_latest(registry)

    def _counter(self, name: str, labels: Iterable[str], doc: str) -> Counter:
        with self._lock:
            found = self._counters.get(name)
            if found is None:
                found = Counter(name, doc, tuple(labels), registry=self.registry)
                self._counters[name] = found
            return found

    def _histogram(self, name: str, labels: Iterable[str], doc: str) -> Histogram:
        with self._lock:
            found = self._histograms.get(name)
            if found is None:
                found = Histogram(
                    name, doc, tuple(labels), registry=self.registry, buckets=LATENCY_BUCKETS
                )
                self._histograms[name] = found
            return found
