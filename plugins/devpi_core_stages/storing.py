"""Storing new content for one change so that a failed change leaves no blob behind.

Blobs are handed to the blob store before the metadata transaction (a crash in between leaves
at most an unreferenced blob, never metadata pointing at nothing). When the transaction itself
fails (409, a bad request found late, a disconnect), the blobs this change added are deleted
again unless something references them, under the writer lock.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from devpi_core.blobs import BlobIngest
from devpi_core.model.blobrefs import has_refs

if TYPE_CHECKING:
    from collections.abc import Iterator

    from devpi_core.indextypes import IndexEnv
    from devpi_core.interfaces import WriteTransaction


class NewBlobs:
    """The blobs one change stored, removed again if its transaction fails."""

    def __init__(self, env: IndexEnv) -> None:
        self.env = env
        self.digests: list[str] = []

    def commit(self, blob: BlobIngest) -> str:
        """Hand a finished temp blob to the store; return its sha256."""
        existed = self.env.blobs.exists(blob.sha256)
        digest = blob.commit()
        if not existed:
            self.digests.append(digest)
        return digest

    def put_bytes(self, data: bytes) -> str:
        """Store small content (core metadata, a tox result); return its sha256."""
        with BlobIngest(self.env.blobs, self.env.tmpdir) as blob:
            blob.write(data)
            return self.commit(blob)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[WriteTransaction]:
        """The metadata transaction of this change; on failure the new blobs go."""
        try:
            with self.env.store.write() as tx:
                yield tx
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Delete the blobs this change added that nothing references."""
        if not self.digests:
            return
        with self.env.store.write() as tx:
            for digest in self.digests:
                if not has_refs(tx, digest):
                    self.env.blobs.delete(digest)
        self.digests.clear()
