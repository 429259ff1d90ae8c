"""Reference counting of blobs: several files (on several indexes) may share one blob.

A reference is the key ``blobref:<sha256>:<owner>``; the blob is deleted after the commit that
drops its last reference, while the store still holds the writer lock, so an upload of the same
content cannot slip in between (its :func:`add_ref` checks the blob still exists).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devpi_core.errors import Conflict

if TYPE_CHECKING:
    from devpi_core.interfaces import BlobStore, WriteTransaction


def _key(sha256: str, owner: str) -> str:
    return f"blobref:{sha256}:{owner}"


def _doomed(tx: WriteTransaction) -> set[str]:
    # Blobs this transaction left without references so far. A later add_ref in the same
    # transaction (a file moved to another version, a rebuilt wheel with the same METADATA)
    # rescues its blob: the deletion is decided by the transaction's final state.
    doomed: set[str] = tx.__dict__.setdefault("_blobrefs_doomed", set())
    return doomed


def add_ref(tx: WriteTransaction, blobs: BlobStore, sha256: str, owner: str) -> None:
    """Record that ``owner`` (for example ``alice/dev/pkg-1.0.tar.gz``) uses blob ``sha256``."""
    if not blobs.exists(sha256):
        raise Conflict("the file was deleted while it was being stored; please retry")
    tx.set(_key(sha256, owner), 1)
    _doomed(tx).discard(sha256)


def drop_ref(tx: WriteTransaction, blobs: BlobStore, sha256: str, owner: str) -> None:
    """Forget ``owner``'s use of ``sha256``; delete the blob after commit if still unused then."""
    tx.delete(_key(sha256, owner))
    if next(tx.keys(f"blobref:{sha256}:"), None) is None:
        doomed = _doomed(tx)
        if sha256 not in doomed:
            doomed.add(sha256)

            def delete_if_still_unused(_serial: int) -> None:
                if sha256 in doomed:
                    blobs.delete(sha256)

            tx.after_commit(delete_if_still_unused)


def has_refs(tx: WriteTransaction, sha256: str) -> bool:
    """Whether any owner still uses ``sha256``."""
    return next(tx.keys(f"blobref:{sha256}:"), None) is not None
