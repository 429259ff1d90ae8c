"""Prometheus metrics of one server process, exposed at ``GET /+metrics`` (prometheus_client).

Each app has its own :class:`~prometheus_client.CollectorRegistry` (never the library's global
one: tests build many apps in one process). devpi-core serves from one process with threads,
so the registry holds everything this server counted; several nodes or processes each expose
their own numbers, and Prometheus adds them up across its targets (``sum by (route)``). Plugin
numbers come from the ``devpi_metrics`` hook at scrape time, as ``/+status`` shows them.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

log = logging.getLogger(__name__)
# environ key naming the route of a response made without Pyramid's routing (warm simple pages)
ROUTE_KEY = "devpi_core.route"
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
# methods a client may invent are counted together, so label values stay a small set
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# simple pages and small files take milliseconds; big uploads and cold mirror fills minutes
# remembered label combinations (routes x methods x statuses seen; more are still counted)
MAX_CHILDREN = 1000
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class _HookCollector(Collector):
    """Turns ``(name, "counter"|"gauge", value)`` triples into metric families at scrape time."""

    def __init__(self, read: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        for name, kind, value in self.read():
            if not _NAME.match(name):
                log.warning("devpi_metrics: %r is not a Prometheus metric name; skipped", name)
            elif kind == "counter":
                yield CounterMetricFamily(name, f"{name} (devpi_metrics hook)", value=value)
            else:
                yield GaugeMetricFamily(name, f"{name} (devpi_metrics hook)", value=value)


class Metrics:
    """The metrics of one app: HTTP requests by route, method and status, their latency, and
    whatever ``sources`` report (the serial, plugins' ``devpi_metrics``) when scraped."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "devpi_http_requests",
            "HTTP requests answered, by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "devpi_http_request_duration_seconds",
            "time to produce the response (not to send its body), by route",
            ["route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        # the labelled children per (route, method, status): labels() validates and locks on
        # every call, which was a fifth of a warm page's answer; the set of keys is small
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            label = method if method in _METHODS else "other"
            children = (self.requests.labels(route, label, str(status)), self.latency.labels(route))
            if len(self._children) < MAX_CHILDREN:  # odd methods and routes: not remembered
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def add_source(self, read: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        """Report what ``read()`` returns on every scrape (``(name, kind, value)`` triples)."""
        self.registry.register(_HookCollector(read))

    def exposition(self) -> bytes:
        """Everything in the Prometheus text format."""
        return generate_latest(self.registry)
