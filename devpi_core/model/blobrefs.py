"""Reference counting of blobs, and the marks blob garbage collection works from.

Several files (on several indexes) may share one blob. A reference is the key
``blobref:<sha256>:<owner>``. Nothing is deleted when the last reference goes: the same
transaction marks the blob orphaned (``orphan:<sha256>`` = ``{"since": <time>}``), and the
sweeper (:mod:`devpi_core.blob_gc`) deletes blobs orphaned longer than the grace period.
:func:`add_ref` of a marked blob clears the mark (the blob is live again).

The sweeper never holds the writer lock while it talks to the blob store. Per batch it marks
the blobs it is about to delete *deleting* (``"deleting": <time>``) in one transaction, deletes
them outside, and records each deleted one as *gone* (``blobgone:<sha256>`` = ``{"at": <time>}``)
in a second transaction. So:

- a blob without a mark and without a gone record is stored (every writer puts content
  before the transaction that refers to it);
- a blob marked *deleting* may vanish at any moment: :func:`add_ref` refuses it with
  :class:`BlobCollecting` (409, retry); an uploader that still has its content re-puts it
  once the sweep is over instead (``devpi_core_stages.storing.NewBlobs``);
- a blob with a recent gone record may have been deleted after the caller's put (an object
  store checks the put time and deletes in two requests): :func:`add_ref` then asks the blob
  store whether it is there, under the writer lock, while no sweep can delete it.

So no transaction ever commits a reference to a missing blob.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from devpi_core.errors import Conflict

if TYPE_CHECKING:
    from devpi_core.interfaces import BlobStore, MetadataStore, ReadTransaction, WriteTransaction

ORPHAN_PREFIX = "orphan:"
GONE_PREFIX = "blobgone:"


class BlobCollecting(Conflict):
    """The content is being garbage-collected right now (409: the client may retry)."""

    def __init__(self, sha256: str) -> None:
        super().__init__(
            "the file's content is being garbage-collected while it was stored; please retry"
        )
        self.sha256 = sha256


def ref_key(sha256: str, owner: str) -> str:
    """The key recording that ``owner`` uses blob ``sha256``."""
    return f"blobref:{sha256}:{owner}"


def orphan_key(sha256: str) -> str:
    """The key marking blob ``sha256`` unreferenced (and maybe being deleted)."""
    return f"{ORPHAN_PREFIX}{sha256}"


def gone_key(sha256: str) -> str:
    """The key recording that the sweeper deleted blob ``sha256`` (kept for a while)."""
    return f"{GONE_PREFIX}{sha256}"


def orphan_mark(tx: ReadTransaction, sha256: str) -> dict[str, Any] | None:
    """The orphan mark of ``sha256`` (``since``, and ``deleting`` while a sweep deletes it)."""
    mark = tx.get(orphan_key(sha256))
    return dict(mark) if mark is not None else None


def is_deleting(tx: ReadTransaction, sha256: str) -> bool:
    """Whether a sweep may be deleting ``sha256`` right now."""
    mark = orphan_mark(tx, sha256)
    return mark is not None and mark.get("deleting") is not None


def maybe_missing(tx: WriteTransaction, blobs: BlobStore, sha256: str) -> bool:
    """Whether blob ``sha256`` may be missing although the caller put it: it is being deleted,
    or a sweep deleted it recently and the store does not have it (asked only then)."""
    if is_deleting(tx, sha256):
        return True
    return tx.get(gone_key(sha256)) is not None and not blobs.exists(sha256)


def add_ref(tx: WriteTransaction, blobs: BlobStore, sha256: str, owner: str) -> None:
    """Record that ``owner`` (for example ``alice/dev/pkg-1.0.tar.gz``) uses blob ``sha256``.

    The caller has put the content before (or it is referenced already). Raises
    :class:`BlobCollecting` when a sweep is deleting it, or deleted it after that put.
    """
    mark, gone = tx.get(orphan_key(sha256)), tx.get(gone_key(sha256))
    if (mark is not None and mark.get("deleting") is not None) or (
        gone is not None and not blobs.exists(sha256)
    ):
        raise BlobCollecting(sha256)
    # deleted only when there (a delete of an untouched key is a round trip on PostgreSQL)
    if mark is not None:
        tx.delete(orphan_key(sha256))  # live again
    if gone is not None:
        tx.delete(gone_key(sha256))  # stored again since
    tx.set(ref_key(sha256, owner), 1)


def drop_ref(
    tx: WriteTransaction,
    blobs: BlobStore,
    sha256: str,
    owner: str,
    *,
    store: MetadataStore | None = None,
) -> None:
    """Forget ``owner``'s use of ``sha256``; the last one marks the blob orphaned since now.

    The blob stays for the grace period (``storage.blob_gc_grace``); a later :func:`add_ref`
    (in this transaction or another) makes it live again. ``blobs`` and ``store`` are no
    longer needed and accepted for the callers written when deletion happened here.
    """
    tx.delete(ref_key(sha256, owner))
    mark_orphan(tx, sha256)


def mark_orphan(tx: WriteTransaction, sha256: str, *, since: float | None = None) -> bool:
    """Mark ``sha256`` orphaned since ``since`` (now) unless referenced or marked already;
    return whether it was marked."""
    if has_refs(tx, sha256) or tx.get(orphan_key(sha256)) is not None:
        return False
    tx.set(orphan_key(sha256), {"since": time.time() if since is None else since})
    return True


def has_refs(tx: ReadTransaction, sha256: str) -> bool:
    """Whether any owner still uses ``sha256``."""
    return next(tx.keys(f"blobref:{sha256}:"), None) is not None
