"""Storing new content for one change so that a failed change leaves no blob behind, and the
one way files arrive on a stage: the upload gate before, the upload event after.

Blobs are handed to the blob store before the metadata transaction (a crash in between leaves
at most an unreferenced blob, never metadata pointing at nothing). When the transaction itself
fails (409, a bad request found late, a disconnect), the blobs this change added are marked
orphaned unless something references them, and garbage collection removes them after its
grace period.

Blob garbage collection may delete content of the same digest while this change stores it
(:mod:`devpi_core.model.blobrefs`). So until the transaction ends, every blob put keeps a hard
link to its temp file; the transaction first checks, under the writer lock, that none of them
is being or has just been deleted, and otherwise waits for the sweep to finish, puts the
content again and starts over, instead of answering 409.

Every file that arrives (an upload, a documentation zip, a push, a tox result) is first shown
to the upload gate (:meth:`NewBlobs.admit`, the ``devpi_check_upload`` hook) before any of it
is stored, and is recorded with :meth:`NewBlobs.add_file`, which fires ``devpi_on_upload``
once the transaction committed, outside the writer lock.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any

from devpi_core.blobs import BlobIngest
from devpi_core.model.blobrefs import BlobCollecting, is_deleting, mark_orphan, maybe_missing
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
        self._kept: dict[str, str] = {}  # sha256 -> a hard link to the content put
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
        keep = f"{blob.path}.keep"
        try:
            os.link(blob.path, keep)  # put_file takes the temp file; this keeps the content
        except OSError:
            keep = ""
        try:
            digest = blob.commit()
        except BaseException:
            _unlink(keep)
            raise
        if keep:
            _unlink(self._kept.pop(digest, ""))
            self._kept[digest] = keep
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
        """The metadata transaction of this change; on failure the new blobs are orphaned."""
        serials: list[int] = []
        try:
            for _attempt in range(REPUT_ATTEMPTS):
                with self.env.store.write() as tx:
                    collected = [d for d in self._kept if maybe_missing(tx, self.env.blobs, d)]
                    if not collected:
                        tx.after_commit(serials.append)
                        yield tx
                        break
                self._put_again(collected)  # outside the writer lock, then start over
            else:
                raise BlobCollecting(next(iter(self._kept)))
        except BaseException:
            self._arrived.clear()
            self.discard()
            raise
        finally:
            self._release()
        arrived, self._arrived = self._arrived, []
        serial = serials[0] if serials else self.env.store.current_serial()
        for index, project, version, filename, rel, who in arrived:
            self.env.emit(UploadEvent(index, project, version, filename, rel, who, serial))

    def _put_again(self, digests: list[str]) -> None:
        """Wait until no sweep is deleting ``digests``, then store their content again."""
        deadline = time.monotonic() + SWEEP_WAIT
        while True:
            with self.env.store.read() as tx:
                busy = [d for d in digests if is_deleting(tx, d)]
            if not busy:
                break
            if time.monotonic() > deadline:
                raise BlobCollecting(busy[0])
            time.sleep(0.05)  # a sweep deletes a batch, then records it
        for digest in digests:
            again = f"{self._kept[digest]}.again"
            os.link(self._kept[digest], again)
            try:
                self.env.blobs.put_file(again, digest)
            finally:
                _unlink(again)

    def _release(self) -> None:
        for keep in self._kept.values():
            _unlink(keep)
        self._kept.clear()

    def discard(self) -> None:
        """Mark the blobs this change added that nothing references orphaned (collected
        after the grace period)."""
        if not self.digests:
            return
        with self.env.store.write() as tx:
            for digest in self.digests:
                mark_orphan(tx, digest)
        self.digests.clear()


# how often a change stores content again that a sweep deleted meanwhile before it answers 409,
# and how long it waits for a sweep to finish deleting
REPUT_ATTEMPTS = 3
SWEEP_WAIT = 30.0


def _unlink(path: str) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
