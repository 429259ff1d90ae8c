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
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from contextlib import AbstractContextManager
    from types import TracebackType

    from devpi_core.interfaces import MetadataStore

log = logging.getLogger(__name__)
# environ key naming the route of a response made without Pyramid's routing (warm simple pages)
ROUTE_KEY = "devpi_core.route"
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
# methods a client may invent are counted together, so label values stay a small set
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# remembered label combinations (routes x methods x statuses seen; more are still counted)
MAX_CHILDREN = 1000
# simple pages and small files take milliseconds; big uploads and cold mirror fills minutes
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# metadata transactions take from tens of microseconds (a SQLite read) to seconds (a lock wait)
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                 0.5, 1, 2.5, 5, 10, 30)


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


class _TimedTransaction:
    """Wraps one ``store.read()``/``store.write()`` context manager: observes how long opening
    took (for writes: the wait for the writer lock, which every backend takes on entering) and
    how long the whole transaction took, from asking to closing."""

    __slots__ = ("_cm", "_start", "_total", "_wait")

    def __init__(
        self, cm: AbstractContextManager[Any], total: Histogram, wait: Histogram | None
    ) -> None:
        self._cm = cm
        self._total = total
        self._wait = wait
        self._start = 0.0

    def __enter__(self) -> Any:
        self._start = start = time.perf_counter()
        tx = self._cm.__enter__()
        if self._wait is not None:
            self._wait.observe(time.perf_counter() - start)
        return tx

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            return self._cm.__exit__(kind, exc, tb)
        finally:
            self._total.observe(time.perf_counter() - self._start)


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
        self.transactions = Histogram(
            "devpi_store_transaction_duration_seconds",
            "metadata store transactions from opening to closing (a write's lock wait, body, "
            "commit and after-commit callbacks included), by backend and kind (read, write)",
            ["backend", "kind"],
            buckets=STORE_BUCKETS,
            registry=self.registry,
        )
        self.write_wait = Histogram(
            "devpi_store_write_wait_seconds",
            "time a write transaction took to open: the writer lock every process sharing the "
            "store takes in turn (and a connection), by backend",
            ["backend"],
            buckets=STORE_BUCKETS,
            registry=self.registry,
        )
        # the labelled children per (route, method, status): labels() validates and locks on
        # every call, which was a fifth of a warm page's answer; the set of keys is small
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def time_store(self, store: MetadataStore, backend: str) -> None:
        """Time every ``store.read()`` and ``store.write()`` from now on (in core, for every
        backend). Wraps the class's methods, so timing a store again replaces the wrapping."""
        read, write = type(store).read.__get__(store), type(store).write.__get__(store)
        reads = self.transactions.labels(backend, "read")
        writes = self.transactions.labels(backend, "write")
        wait = self.write_wait.labels(backend)

        def timed_read() -> _TimedTransaction:
            return _TimedTransaction(read(), reads, None)

        def timed_write() -> _TimedTransaction:
            return _TimedTransaction(write(), writes, wait)

        setattr(store, "read", timed_read)  # noqa: B010 - an instance attribute, on purpose
        setattr(store, "write", timed_write)  # noqa: B010

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
