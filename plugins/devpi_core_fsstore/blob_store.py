"""File contents on the local filesystem, addressed by sha256: ``<root>/ab/cd/<sha256>``."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from typing import TYPE_CHECKING, BinaryIO

from devpi_core.errors import StartupError
from devpi_core.interfaces import BlobStat, BlobStore

if TYPE_CHECKING:
    from collections.abc import Iterator

_LOCK_NAME = ".gc.lock"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _checked(sha256: str) -> str:
    # Digests come from our own hashing, but a path must never be built from anything else.
    if not _HEX64.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


class FileBlobStore(BlobStore):
    """Blobs as files; ``put_file`` is a rename, so the temp dir must be on the same filesystem.

    A file's mtime is its last put time. Puts hold a shared ``flock`` on ``<root>/.gc.lock`` and
    a collecting :meth:`delete` an exclusive one, so across every process on this host a put
    that refreshes the mtime and a delete that checks it cannot interleave.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        try:
            os.makedirs(root, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"cannot create {root}: {exc.strerror}") from None

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        fd = os.open(os.path.join(self.root, _LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _path(self, sha256: str) -> str:
        digest = _checked(sha256)
        return os.path.join(self.root, digest[:2], digest[2:4], digest)

    def put_file(self, path: str, sha256: str) -> None:
        final = self._path(sha256)
        with self._locked(fcntl.LOCK_SH):
            self._put(path, final)

    def _put(self, path: str, final: str) -> None:
        try:
            os.utime(final)  # already stored: only the put time changes
        except FileNotFoundError:
            pass
        else:
            os.unlink(path)
            return
        directory = os.path.dirname(final)
        os.makedirs(directory, exist_ok=True)
        os.chmod(path, 0o644)
        os.replace(path, final)
        if self.deferred_sync:
            return  # made durable at the end of the batch
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)  # make the rename itself durable
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Blobs put inside are made durable by one ``sync()`` at the end."""
        self.deferred_sync = True
        try:
            yield
        finally:
            self.deferred_sync = False
            os.sync()

    def exists(self, sha256: str) -> bool:
        return os.path.exists(self._path(sha256))

    def size(self, sha256: str) -> int | None:
        found = self.stat(sha256)
        return None if found is None else found.size

    def stat(self, sha256: str) -> BlobStat | None:
        try:
            result = os.stat(self._path(sha256))
        except FileNotFoundError:
            return None
        return BlobStat(result.st_size, result.st_mtime)

    def open(self, sha256: str) -> BinaryIO:
        return open(self._path(sha256), "rb")

    def local_path(self, sha256: str) -> str | None:
        return self._path(sha256)

    def check(self) -> None:
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise OSError(f"{self.root} is not a writable directory")

    def delete(self, sha256: str, *, older_than: float | None = None) -> bool:
        path = self._path(sha256)
        if older_than is None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            return True
        with self._locked(fcntl.LOCK_EX):
            found = self.stat(sha256)
            if found is None or found.mtime >= older_than:
                return False
            os.unlink(path)
            return True

    def iter_blobs(self) -> Iterator[str]:
        for _dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if _HEX64.match(name):
                    yield name
