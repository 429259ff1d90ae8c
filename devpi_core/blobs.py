"""Streaming file contents into the blob store: temp file, hashing, limits, fsync, hand-over."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from typing import TYPE_CHECKING, BinaryIO

from devpi_core.errors import BadRequest, PayloadTooLarge

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from devpi_core.interfaces import BlobStore

CHUNK = 256 * 1024


class HashMismatch(BadRequest):
    """Content did not match the expected size or hash."""


class BlobIngest:
    """Write bytes to a temp file while hashing; :meth:`commit` hands it to the blob store.

    Use as a context manager: leaving the block without a commit deletes the temp file, so a
    failed or interrupted transfer leaves nothing behind.
    """

    def __init__(self, blobs: BlobStore, tmpdir: str, *, limit: int | None = None) -> None:
        self.blobs = blobs
        self.limit = limit
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._extra: dict[str, hashlib._Hash] = {}
        fd, self.path = tempfile.mkstemp(dir=tmpdir, prefix="blob-")
        self._file: BinaryIO = os.fdopen(fd, "w+b")
        self.committed = False

    def __enter__(self) -> BlobIngest:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()

    def also_hash(self, name: str) -> None:
        """Compute hash ``name`` (e.g. ``md5``) too, for checking an upstream's hash."""
        if name != "sha256" and name not in self._extra:
            self._extra[name] = hashlib.new(name)

    def write(self, data: bytes) -> None:
        """Append ``data``; raises :class:`PayloadTooLarge` past the limit."""
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            raise PayloadTooLarge(f"file exceeds the size limit of {self.limit} bytes")
        self._sha256.update(data)
        for h in self._extra.values():
            h.update(data)
        self._file.write(data)

    def write_from(self, stream: BinaryIO | Iterable[bytes], *, length: int | None = None) -> None:
        """Copy everything from a file object or an iterable of chunks."""
        if hasattr(stream, "read"):
            remaining = length
            while remaining is None or remaining > 0:
                chunk = stream.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    break
                self.write(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
            if remaining:
                raise BadRequest(f"request body ended {remaining} bytes early")
            return
        for chunk in stream:
            self.write(chunk)

    def flush(self) -> None:
        """Make everything written so far visible to readers of :attr:`path`."""
        self._file.flush()

    @property
    def sha256(self) -> str:
        """Hex digest of what was written so far."""
        return self._sha256.hexdigest()

    def hexdigest(self, name: str) -> str:
        """Hex digest for hash ``name`` (sha256 or one requested with :meth:`also_hash`)."""
        return self.sha256 if name == "sha256" else self._extra[name].hexdigest()

    def reader(self) -> BinaryIO:
        """A fresh read handle on the temp file (for extracting metadata before commit)."""
        self._file.flush()
        return open(self.path, "rb")  # the caller closes it

    def check(self, *, size: int | None = None, hashes: dict[str, str] | None = None) -> None:
        """Raise :class:`HashMismatch` unless size and every given hash match."""
        if size is not None and size != self.size:
            raise HashMismatch(f"expected {size} bytes, got {self.size}")
        for name, expected in (hashes or {}).items():
            if name == "sha256" or name in self._extra:
                got = self.hexdigest(name)
                if got != expected.lower():
                    raise HashMismatch(f"{name} mismatch: expected {expected}, got {got}")

    def commit(self) -> str:
        """fsync and hand the file to the blob store; return its sha256."""
        self._file.flush()
        if not self.blobs.deferred_sync:  # else the store syncs at the end of its batch
            os.fsync(self._file.fileno())
        self._file.close()
        digest = self.sha256
        self.blobs.put_file(self.path, digest)
        self.committed = True
        return digest

    def discard(self) -> None:
        """Delete the temp file unless it was committed."""
        if not self._file.closed:
            self._file.close()
        if not self.committed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
