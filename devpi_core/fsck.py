"""``devpi-core fsck``: check that the metadata and the blobs agree, and repair what is safe.

Checked: every blob reference (``blobref:<sha256>:<owner>``) names a blob the blob store has,
whose content hashes to that name and whose size is what the store reports; the metadata
store's own bookkeeping (its serial sequence and changelog, :meth:`MetadataStore.problems`);
and orphans, blobs nothing refers to. Only the public ``BlobStore`` API is used (``iter_blobs``,
``size``, ``open``; ``stat``, or ``local_path`` where the store has files, for an orphan's age).

An orphan marked by garbage collection (its last reference went, :mod:`devpi_core.blob_gc`)
is not a problem: it is noted, and collected once its grace period is over. An orphan without
a mark is a problem, unless it is younger than the grace period: most likely an upload between
its blob and its metadata commit.

Repair is limited to what cannot lose data: unmarked orphans older than the grace period are
marked, and a garbage collection sweep with that grace period deletes every orphan past it
(re-checking in a write transaction that each is still unreferenced, so an upload of the same
content is never left with a reference to a missing blob).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devpi_core.blob_gc import BlobCollector
from devpi_core.model.blobrefs import mark_orphan, orphan_mark

if TYPE_CHECKING:
    from devpi_core.interfaces import BlobStore, MetadataStore, ReadTransaction

DEFAULT_GRACE = 3600.0
_CHUNK = 1 << 20


@dataclass
class FsckReport:
    """What :func:`check` found: ``problems`` make the command fail; ``notes`` do not."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    references: int = 0
    blobs: int = 0


def _referenced(store: MetadataStore) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    with store.read() as tx:
        for key in tx.keys("blobref:"):
            _prefix, sha256, owner = key.split(":", 2)
            owners.setdefault(sha256, []).append(owner)
    return owners


def _check_blob(blobs: BlobStore, sha256: str, owners: list[str]) -> str | None:
    size = blobs.size(sha256)
    used_by = ", ".join(owners[:3]) + (" ..." if len(owners) > 3 else "")
    if size is None:
        return f"missing blob {sha256} (used by {used_by})"
    digest, length = hashlib.sha256(), 0
    try:
        with blobs.open(sha256) as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                length += len(chunk)
    except FileNotFoundError:
        return f"missing blob {sha256} (used by {used_by})"
    if digest.hexdigest() != sha256:
        return f"corrupt blob {sha256}: its content hashes to {digest.hexdigest()}"
    if length != size:
        return f"blob {sha256}: the store reports {size} bytes, the content has {length}"
    return None


def _age(blobs: BlobStore, sha256: str, now: float) -> float | None:
    """Seconds since the blob was last put: its stat time (an object store's, too), else its
    file's; None when the store knows neither."""
    stat = blobs.stat(sha256)
    if stat is not None and stat.mtime > 0:
        return now - stat.mtime
    path = blobs.local_path(sha256)
    if path is None:
        return None
    try:
        return now - os.stat(path).st_mtime
    except FileNotFoundError:
        return None


def _orphans(store: MetadataStore, blobs: BlobStore, referenced: set[str]) -> list[str]:
    candidates = [sha256 for sha256 in blobs.iter_blobs() if sha256 not in referenced]
    if not candidates:
        return []
    # an upload that committed after the first snapshot refers to its blob by now
    with store.read() as tx:
        return [sha256 for sha256 in candidates if not _has_ref(tx, sha256)]


def _has_ref(tx: ReadTransaction, sha256: str) -> bool:
    return next(tx.keys(f"blobref:{sha256}:"), None) is not None


def _mark(store: MetadataStore, orphans: dict[str, float]) -> None:
    with store.write() as tx:
        for sha256, since in orphans.items():
            mark_orphan(tx, sha256, since=since)


def check(
    store: MetadataStore,
    blobs: BlobStore,
    *,
    repair: bool = False,
    grace: float = DEFAULT_GRACE,
) -> FsckReport:
    """Check ``store`` against ``blobs``; with ``repair``, delete orphans older than ``grace``."""
    report = FsckReport(problems=list(store.problems()))
    owners = _referenced(store)
    report.references = sum(len(names) for names in owners.values())
    for sha256, names in sorted(owners.items()):
        problem = _check_blob(blobs, sha256, names)
        if problem is not None:
            report.problems.append(problem)
    now = time.time()
    unmarked: dict[str, float] = {}
    with store.read() as tx:
        orphans = [(sha256, orphan_mark(tx, sha256))
                   for sha256 in _orphans(store, blobs, set(owners))]
    for sha256, mark in orphans:
        if mark is not None:
            ago = now - float(mark.get("since", now))
            report.notes.append(
                f"orphan blob {sha256}: garbage collection removes it after the grace period "
                f"(unreferenced for {ago:.0f} s)"
            )
            continue
        age = _age(blobs, sha256, now)
        if age is not None and age < grace:
            report.notes.append(f"young orphan blob {sha256} ({age:.0f} s old): left alone")
        elif repair and (age is not None or grace <= 0):
            unmarked[sha256] = now - grace  # older_than for its delete: put before that
        else:
            known = "age unknown" if age is None else f"{age:.0f} s old"
            report.problems.append(f"orphan blob {sha256} ({known})")
    if repair:
        _mark(store, unmarked)
        swept = BlobCollector(store, blobs, grace=grace).sweep()
        if swept.lease_held_elsewhere:
            report.notes.append("garbage collection is running elsewhere: nothing deleted now")
        report.repaired.extend(f"deleted orphan blob {sha256}" for sha256, _ in swept.removed)
    report.blobs = sum(1 for _sha256 in blobs.iter_blobs())
    return report
