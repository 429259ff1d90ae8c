"""Blob garbage collection: delete blobs that stayed unreferenced longer than a grace period.

Dropping a blob's last reference only marks it orphaned (:mod:`devpi_core.model.blobrefs`).
:class:`BlobCollector` sweeps: holding the ``gc`` lease (one process of all those sharing the
store sweeps at a time), it takes a batch of blobs orphaned before ``now - grace`` and marks
them *deleting* in one write transaction (re-checking each is still unreferenced), deletes
them from the blob store outside the writer lock (``older_than`` the orphan mark, so content
put again since is kept), and records the outcome in a second transaction: deleted blobs get
a *gone* record (kept :data:`GONE_KEEP` seconds), kept ones a fresh orphan mark.

The server sweeps on a background thread every ``storage.blob_gc_interval`` seconds;
``devpi-core gc`` sweeps on demand.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devpi_core.model.blobrefs import GONE_PREFIX, ORPHAN_PREFIX, gone_key, has_refs, orphan_key

if TYPE_CHECKING:
    from devpi_core.interfaces import BlobStore, MetadataStore

log = logging.getLogger(__name__)

LEASE = "gc"
LEASE_TTL = 120.0
# how long a gone record is kept: longer than any upload takes from its put to its commit
GONE_KEEP = 3600.0
BATCH = 200


@dataclass
class SweepReport:
    """What one :meth:`BlobCollector.sweep` did."""

    removed: list[tuple[str, int]] = field(default_factory=list)  # (sha256, size)
    kept: list[str] = field(default_factory=list)  # put again during the sweep
    lease_held_elsewhere: bool = False

    @property
    def bytes(self) -> int:
        """Bytes freed."""
        return sum(size for _sha256, size in self.removed)


@dataclass
class GcStats:
    """Totals of this process's sweeps (``devpi_blob_gc_*`` metrics)."""

    blobs: int = 0
    bytes: int = 0
    runs: int = 0
    last_run: float = 0.0


class BlobCollector:
    """Sweeps ``blobs`` for orphans marked in ``store``; :meth:`start` sweeps periodically."""

    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        *,
        grace: float,
        interval: float = 0.0,
        holder: str | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.grace = grace
        self.interval = interval
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.stats = GcStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one sweep at a time in this process

    def sweep(self, *, grace: float | None = None) -> SweepReport:
        """Delete the blobs orphaned longer than ``grace`` (default: the configured one)."""
        grace = self.grace if grace is None else grace
        report = SweepReport()
        with self._lock:
            if not self.store.acquire_lease(LEASE, self.holder, LEASE_TTL):
                report.lease_held_elsewhere = True
                return report
            try:
                self._sweep(time.time() - grace, report)
            finally:
                self.store.release_lease(LEASE, self.holder)
            self.stats.runs += 1
            self.stats.last_run = time.time()
            self.stats.blobs += len(report.removed)
            self.stats.bytes += report.bytes
        return report

    def _sweep(self, cutoff: float, report: SweepReport) -> None:
        done: set[str] = set()
        while not self._stop.is_set():
            claimed = self._claim(cutoff, done)
            if not claimed:
                return
            if not self.store.renew_lease(LEASE, self.holder, LEASE_TTL):
                log.warning("blob gc: lost the %r lease; stopping this sweep", LEASE)
                return  # the deleting marks are taken over by the next holder
            outcome: dict[str, int | None] = {}
            for sha256, since in claimed.items():
                try:
                    stat = self.blobs.stat(sha256)
                    removed = self.blobs.delete(sha256, older_than=since)
                except Exception:
                    self._abandon(outcome, report, claimed, sha256)
                    raise
                outcome[sha256] = (stat.size if stat is not None else 0) if removed else None
                if not removed and stat is None:
                    outcome[sha256] = 0  # already gone (a sweep killed before it recorded it)
            self._record(outcome, report)
            done.update(claimed)

    def _claim(self, cutoff: float, done: set[str]) -> dict[str, float]:
        """Mark up to :data:`BATCH` unreferenced blobs orphaned before ``cutoff`` deleting."""
        claimed: dict[str, float] = {}
        now = time.time()
        with self.store.write() as tx:
            for key, mark in list(tx.items(ORPHAN_PREFIX)):
                sha256 = key[len(ORPHAN_PREFIX):]
                since = float(mark.get("since", now))
                # a deleting mark left by a killed sweeper is taken over (only the lease
                # holder deletes)
                if sha256 in done or (since > cutoff and mark.get("deleting") is None):
                    continue
                if has_refs(tx, sha256):  # cannot happen (add_ref clears the mark); be safe
                    tx.delete(key)
                    continue
                tx.set(key, {"since": since, "deleting": now})
                claimed[sha256] = since
                if len(claimed) >= BATCH:
                    break
            for key, gone in list(tx.items(GONE_PREFIX)):
                if float(gone.get("at", 0)) < now - GONE_KEEP:
                    tx.delete(key)
        return claimed

    def _record(self, outcome: dict[str, int | None], report: SweepReport) -> None:
        now = time.time()
        with self.store.write() as tx:
            for sha256, size in outcome.items():
                if size is None:  # put again since it was orphaned: a fresh grace period
                    tx.set(orphan_key(sha256), {"since": now})
                    report.kept.append(sha256)
                else:
                    tx.delete(orphan_key(sha256))
                    tx.set(gone_key(sha256), {"at": now})
                    report.removed.append((sha256, size))

    def _abandon(
        self,
        outcome: dict[str, int | None],
        report: SweepReport,
        claimed: dict[str, float],
        failed: str,
    ) -> None:
        """The blob store failed on ``failed``: record what was done, and make the rest plain
        orphans again (the next sweep retries them), so no upload waits for this sweep."""
        self._record(outcome, report)
        with self.store.write() as tx:
            for sha256, since in claimed.items():
                if sha256 not in outcome:
                    tx.set(orphan_key(sha256), {"since": since})
            # maybe deleted: writers that put it before must check it is there
            tx.set(gone_key(failed), {"at": time.time()})

    # -- the background thread ----------------------------------------------------------
    def start(self) -> None:
        """Sweep every :attr:`interval` seconds on a daemon thread (none when 0)."""
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="blob-gc", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread (after the batch it is working on)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                report = self.sweep()
            except Exception:
                log.exception("blob gc: the sweep failed; trying again in %.0f s", self.interval)
                continue
            if report.removed:
                log.info("blob gc: removed %d blob(s), %d bytes",
                         len(report.removed), report.bytes)

    def metrics(self) -> list[tuple[str, str, float]]:
        """``(name, kind, value)`` for ``GET /+metrics``."""
        return [
            ("devpi_blob_gc_collected_blobs", "counter", float(self.stats.blobs)),
            ("devpi_blob_gc_collected_bytes", "counter", float(self.stats.bytes)),
            ("devpi_blob_gc_runs", "counter", float(self.stats.runs)),
            ("devpi_blob_gc_last_run_timestamp_seconds", "gauge", self.stats.last_run),
        ]
