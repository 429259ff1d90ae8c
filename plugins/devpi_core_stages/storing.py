"""Storing new content for one change so that a failed change leaves no blob behind, and the
one way files arrive on a stage: the upload gate before, the upload event after.

Blobs are handed to the blob store before the metadata transaction (a crash in between leaves
at most an unreferenced blob, never metadata pointing at nothing). When the transaction itself
fails (409, a bad request found late, a disconnect), the blobs this change added are deleted
again unless something references them, under the writer lock.

Every file that arrives (an upload, a documentation zip, a push, a tox result) is first shown
to the upload gate (:meth:`NewBlobs.admit`, the ``devpi_check_upload`` hook) before any of it
is stored, and is recorded with :meth:`NewBlobs.add_file`, which fires ``devpi_on_upload``
once the transaction committed, outside the writer lock.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from devpi_core.blobs import BlobIngest
from devpi_core.model.blobrefs import has_refs
from devpi_core.records import UploadCheck, UploadEvent

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from devpi_core.indextypes import IndexEnv
    from devpi_core.interfaces import WriteTransaction
    from devpi_core_stages.stage import StageIndex


class NewBlobs:
    """The blobs one change stored, removed again if its transaction fails."""

    def __init__(self, env: IndexEnv) -> None:
        self.env = env
        self.digests: list[str] = []
        self._arrived: list[tuple[str, str, str, str, str, str | None]] = []

    def admit(  # noqa: PLR0913 - the fields of the check, all keyword-only
        self,
        stage: StageIndex,
        *,
        project: str,
        version: str,
        filename: str,
        rel: str,
        action: str,
        username: str | None,
        metadata: Mapping[str, Any],
        size: int | None = None,
        sha256: str | None = None,
        source: str | None = None,
    ) -> None:
        """Ask the upload gate (``devpi_check_upload``); a refusal propagates to the client."""
        self.env.check_upload(
            UploadCheck(
                stage.name, project, version, filename, rel, action, username,
                metadata, size, sha256, source,
            )
        )

    def add_file(
        self,
        tx: WriteTransaction,
        stage: StageIndex,
        project: str,
        version: str,
        rec: dict[str, Any],
        *,
        who: str | None,
    ) -> bool:
        """Record a file on ``stage`` (see ``StageIndex.add_file``); once the transaction
        committed, ``devpi_on_upload`` fires for it. False: an identical file was there."""
        stored = stage.add_file(tx, project, version, rec)
        if stored:
            self._arrived.append((stage.name, project, version, rec["filename"], rec["rel"], who))
        return stored

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
        serials: list[int] = []
        try:
            with self.env.store.write() as tx:
                tx.after_commit(serials.append)
                yield tx
        except BaseException:
            self._arrived.clear()
            self.discard()
            raise
        arrived, self._arrived = self._arrived, []
        serial = serials[0] if serials else self.env.store.current_serial()
        for index, project, version, filename, rel, who in arrived:
            self.env.emit(UploadEvent(index, project, version, filename, rel, who, serial))

    def discard(self) -> None:
        """Delete the blobs this change added that nothing references."""
        if not self.digests:
            return
        with self.env.store.write() as tx:
            for digest in self.digests:
                if not has_refs(tx, digest):
                    self.env.blobs.delete(digest)
        self.digests.clear()
