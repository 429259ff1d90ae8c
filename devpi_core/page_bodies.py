"""Bodies of rendered simple pages: small ones in memory, large ones in unlinked temp files.

A mirror's pages run to megabytes (3 MB for a big project, twice with the JSON form); kept in
the Python heap they made most of the server's resident memory. A large body is written once
to a temp file that is unlinked at once, read with ``pread`` by any number of concurrent
responses, and its descriptor closed when the last page object referring to it is gone, so an
evicted page never disappears under a response that is still sending it.
"""

from __future__ import annotations

import io
import os
import tempfile
import weakref
from typing import TYPE_CHECKING, BinaryIO, cast

if TYPE_CHECKING:
    from collections.abc import Iterator

SPILL_MIN = 256 * 1024
CHUNK = 256 * 1024


class Body:
    """Bytes of a page, in memory (``data``) or in a file (``data`` is None)."""

    size: int
    data: bytes | None = None

    @property
    def memory(self) -> int:
        """Bytes this body holds in memory."""
        return len(self.data) if self.data is not None else 0

    @property
    def disk(self) -> int:
        """Bytes this body holds on disk."""
        return 0 if self.data is not None else self.size

    def reader(self) -> BinaryIO:
        """A fresh, seekable reader (for ``wsgi.file_wrapper``)."""
        raise NotImplementedError


class MemoryBody(Body):
    """A body kept as bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def reader(self) -> BinaryIO:
        assert self.data is not None
        return io.BytesIO(self.data)


class SpilledBody(Body):
    """A body in an unlinked temp file, read concurrently with ``pread``."""

    def __init__(self, data: bytes, directory: str) -> None:
        fd, path = tempfile.mkstemp(dir=directory, prefix="page-")
        try:
            os.unlink(path)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.size = len(data)
        weakref.finalize(self, os.close, fd)

    def reader(self) -> BinaryIO:
        return cast("BinaryIO", _PreadReader(self))


class _PreadReader:
    """read/seek/tell over a :class:`SpilledBody`; keeps the body (and its fd) alive."""

    def __init__(self, body: SpilledBody) -> None:
        self.body = body
        self.pos = 0

    def read(self, size: int = -1) -> bytes:
        remaining = self.body.size - self.pos
        if size < 0 or size > remaining:
            size = remaining
        if size <= 0:
            return b""
        data = os.pread(self.body.fd, size, self.pos)
        self.pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.body.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release: the body closes its descriptor when it is unreferenced."""

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk


def make_body(data: bytes, spill_dir: str | None) -> Body:
    """A :class:`SpilledBody` for large ``data`` when a directory is given, else in memory."""
    if spill_dir is not None and len(data) >= SPILL_MIN:
        return SpilledBody(data, spill_dir)
    return MemoryBody(data)
