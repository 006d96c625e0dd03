"""In-process Prometheus metrics: counters and latency histograms, rendered as text.

Counters live in each process; under gunicorn each worker keeps its own and a
scrape sees the worker that answered it. State gauges (incidents, outbox
depth) are read from the database at scrape time, so they are exact on every
replica.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HELP = {
    "opsbot_deliveries_total": "Inbound deliveries by channel and outcome.",
    "opsbot_alerts_total": "Alerts parsed, by source and decision.",
    "opsbot_outbox_total": "Outbox sends by target and outcome.",
    "opsbot_http_request_duration_seconds": "HTTP request latency by endpoint.",
    "opsbot_incidents": "Incidents by status.",
    "opsbot_outbox_backlog": "Outbox rows not yet delivered.",
    "opsbot_outbox_oldest_seconds": "Age of the oldest undelivered outbox row.",
    "opsbot_outbox_dead": "Dead-lettered outbox rows by target (replay: opsbot outbox retry).",
    "opsbot_integration_up": "1 when an integration works, 0 when failing or stopped.",
}

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """A thread-safe registry of counters and histograms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._hist: dict[str, dict[Labels, list[float]]] = defaultdict(dict)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._counters[name]
            series[key] = series.get(key, 0.0) + amount

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one observation in a histogram."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            slots = self._hist[name].setdefault(key, [0.0] * (len(LATENCY_BUCKETS) + 2))
            for i, bound in enumerate(LATENCY_BUCKETS):
                if value <= bound:
                    slots[i] += 1
            slots[-2] += 1  # count
            slots[-1] += value  # sum

    def value(self, name: str, **labels: str) -> float:
        """Return a counter's current value (0 when never incremented)."""
        with self._lock:
            return self._counters[name].get(tuple(sorted(labels.items())), 0.0)

    def render(self, gauges: Mapping[str, Mapping[Labels, float]] | None = None) -> str:
        """Return every metric in the Prometheus text exposition format."""
        with self._lock:
            lines = _render_counters(self._counters) + _render_histograms(self._hist)
        for name, series in (gauges or {}).items():
            lines += _header(name, "gauge")
            lines += [f"{name}{_labels(k)} {_num(v)}" for k, v in series.items()]
        return "\n".join(lines) + "\n"


def _render_counters(counters: Mapping[str, Mapping[Labels, float]]) -> list[str]:
    lines: list[str] = []
    for name, series in sorted(counters.items()):
        lines += _header(name, "counter")
        lines += [f"{name}{_labels(k)} {_num(v)}" for k, v in sorted(series.items())]
    return lines


def _render_histograms(hists: Mapping[str, Mapping[Labels, list[float]]]) -> list[str]:
    lines: list[str] = []
    for name, series in sorted(hists.items()):
        lines += _header(name, "histogram")
        for key, slots in sorted(series.items()):
            for bound, n in zip(LATENCY_BUCKETS, slots, strict=False):
                lines.append(f"{name}_bucket{_labels((*key, ('le', str(bound))))} {_num(n)}")
            lines.append(f"{name}_bucket{_labels((*key, ('le', '+Inf')))} {_num(slots[-2])}")
            lines.append(f"{name}_count{_labels(key)} {_num(slots[-2])}")
            lines.append(f"{name}_sum{_labels(key)} {slots[-1]:.6f}")
    return lines


def _header(name: str, kind: str) -> list[str]:
    return [f"# HELP {name} {HELP.get(name, name)}", f"# TYPE {name} {kind}"]


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    items = [f'{k}="{_escape(v)}"' for k, v in pairs]
    return "{" + ",".join(items) + "}" if items else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)
