"""Counters a mirror reports in ``GET /+status`` (through the ``devpi_metrics`` hook)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


@dataclass
class Counters:
    """Process-wide mirror counters; increments are locked (they happen per upstream call)."""

    upstream_page_requests: int = 0
    upstream_file_requests: int = 0
    upstream_list_requests: int = 0
    upstream_errors: int = 0
    stale_served: int = 0
    page_cache_hits: int = 0
    files_cached: int = 0
    bytes_cached: int = 0
    fills_led: int = 0  # downloads this process stored under the fill lease
    fills_followed: int = 0  # served from the store after another process's fill
    fills_passed_through: int = 0  # streamed past fill_follow_wait without storing
    fills_taken_over: int = 0  # fills whose lease holder died (its lease expired)
    waiting: int = 0  # a gauge: requests waiting for a page or file another request fetches
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int = 1) -> None:
        """Increase counter ``name``."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def report(self) -> list[tuple[str, str, float]]:
        """``(name, kind, value)`` triples, names prefixed with ``devpi_mirror_``."""
        return [
            (
                f"devpi_mirror_{f.name}",
                "gauge" if f.name in GAUGES else "counter",
                float(getattr(self, f.name)),
            )
            for f in fields(self)
            if not f.name.startswith("_")
        ]


GAUGES = ("waiting",)
