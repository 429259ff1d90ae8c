"""Reference counting of blobs: several files (on several indexes) may share one blob.

A reference is the key ``blobref:<sha256>:<owner>``. After the commit that drops a blob's last
reference, a new write transaction checks it is still unused and deletes it while holding the
writer lock (of every process sharing the store): an upload of the same content cannot slip in
between, as its :func:`add_ref` checks, under the same lock, that the blob still exists.
``after_commit`` callbacks themselves run outside the lock, so the check cannot be done there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devpi_core.errors import Conflict
from devpi_core.interfaces import StashKey

if TYPE_CHECKING:
    from collections.abc import Callable

    from devpi_core.interfaces import BlobStore, MetadataStore, WriteTransaction

# Blobs this transaction left without references so far (and has a clean-up registered for).
_DOOMED = StashKey[set[str]]()


def _key(sha256: str, owner: str) -> str:
    return f"blobref:{sha256}:{owner}"


def _doomed(tx: WriteTransaction) -> set[str]:
    # Blobs this transaction left without references so far. A later add_ref in the same
    # transaction (a file moved to another version, a rebuilt wheel with the same METADATA)
    # rescues its blob: the deletion is decided by the transaction's final state.
    return tx.stash.setdefault(_DOOMED, set())


def add_ref(
    tx: WriteTransaction, blobs: BlobStore, sha256: str, owner: str, *, stored: bool = False
) -> None:
    """Record that ``owner`` (for example ``alice/dev/pkg-1.0.tar.gz``) uses blob ``sha256``.

    ``stored``: the caller itself stored the blob in this run, and nothing can have deleted it
    since (``devpi-core import`` into a new server): the check that it still exists (a
    request per blob on S3) is skipped. Uploads keep the check: it guards against a
    concurrent clean-up.
    """
    if not stored and not blobs.exists(sha256):
        raise Conflict("the file was deleted while it was being stored; please retry")
    tx.set(_key(sha256, owner), 1)
    _doomed(tx).discard(sha256)


def drop_ref(
    tx: WriteTransaction,
    blobs: BlobStore,
    sha256: str,
    owner: str,
    *,
    store: MetadataStore | None = None,
) -> None:
    """Forget ``owner``'s use of ``sha256``; delete the blob after commit if still unused then.

    Pass the ``store`` the transaction belongs to: the deletion then re-checks under the
    writer lock. Without it the blob is deleted in the ``after_commit`` callback, which is
    only safe while no other writer can add a reference meanwhile (one thread, one process).
    """
    tx.delete(_key(sha256, owner))
    if next(tx.keys(f"blobref:{sha256}:"), None) is None:
        doomed = _doomed(tx)
        if sha256 not in doomed:
            doomed.add(sha256)
            tx.after_commit(_collector(doomed, blobs, sha256, store))


def _collector(
    doomed: set[str], blobs: BlobStore, sha256: str, store: MetadataStore | None
) -> Callable[[int], None]:
    def collect(_serial: int) -> None:
        if sha256 not in doomed:  # referenced again later in the same transaction
            return
        if store is None:
            blobs.delete(sha256)
            return
        with store.write() as tx:
            if not has_refs(tx, sha256):
                blobs.delete(sha256)

    return collect


def has_refs(tx: WriteTransaction, sha256: str) -> bool:
    """Whether any owner still uses ``sha256``."""
    return next(tx.keys(f"blobref:{sha256}:"), None) is not None
