"""Documentation zips: checked at upload, served unpacked straight from the zip.

Serving from the zip (never extracting to disk) means no entry can escape its directory;
uploads with unsafe names, too many entries, too much uncompressed data or compression other
than deflate are refused.

Serving never trusts the sizes the zip declares to bound memory: a member is decompressed in
chunks of :data:`CHUNK` (Python's zip reader decompresses deflate at most about as much as
asked for per read, never returns more than the declared size, and checks the CRC at the end),
so one GET holds about 3 MiB whatever the member's size, and decompresses at most the declared
size, which is at most :data:`MAX_MEMBER`. A member up to :data:`BUFFER_LIMIT` is decompressed
and checked whole before the answer starts, so a corrupt one is a clean 404. A larger one
streams with the declared length: if the content turns out not to match, the stream stops
short and the server closes the connection (waitress does when a body is shorter than its
Content-Length), so a client never takes a cut-off body for a complete one. Spooling large
members to a temp file first would also turn that into a 404, but costs a full decompression
and disk write before the first byte of every large page.
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
import zipfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from devpi_core.errors import BadRequest, NotFound

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator

log = logging.getLogger(__name__)
MAX_ENTRIES = 20000
MAX_UNCOMPRESSED = 512 * 1024 * 1024
MAX_RATIO = 200
# the most one documentation GET decompresses (a member declared larger is a 404)
MAX_MEMBER = MAX_UNCOMPRESSED
# members up to this size are decompressed and verified before the answer starts
BUFFER_LIMIT = 1024 * 1024
# Measured with four concurrent GETs of a 503 MiB member (waitress, 16 threads): 64 KiB chunks
# grew the server by 57 MiB and took 14 s, 1 MiB chunks by 22 MiB in 6-20 s (a loaded
# machine): blocks of 1 MiB are above the mmap threshold set in devpi_core.serving, so they go
# back to the system when freed instead of fragmenting the heap. Reading the whole member (the
# old way) took 4 GB.
CHUNK = 1024 * 1024
# Deflate is decompressed in bounded steps by the zip reader; bzip2 and lzma are not (one
# compressed block can expand to gigabytes in one call), so they are not accepted.
METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError)


def _unsafe(name: str) -> bool:
    if name.startswith(("/", "\\")) or "\\" in name or "\x00" in name:
        return True
    parts = name.split("/")
    return ".." in parts or (len(parts[0]) == 2 and parts[0][1] == ":")


def check_doczip(f: BinaryIO) -> None:
    """Raise a 400 unless ``f`` is a zip that is safe to serve (no escapes, no bombs)."""
    try:
        with zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise BadRequest("documentation must be a zip file") from None
    finally:
        f.seek(0)
    if len(infos) > MAX_ENTRIES:
        raise BadRequest(f"documentation zip has more than {MAX_ENTRIES} entries")
    total = 0
    for info in infos:
        if _unsafe(info.filename):
            raise BadRequest(f"unsafe path in documentation zip: {info.filename!r}")
        if info.compress_type not in METHODS:
            raise BadRequest(
                f"documentation zip entry {info.filename!r} uses compression method "
                f"{info.compress_type}; only stored and deflated entries are supported"
            )
        total += info.file_size
        if (
            info.compress_size
            and info.file_size / info.compress_size > MAX_RATIO
            and info.file_size > 1 << 20
        ):
            raise BadRequest(
                f"documentation zip entry {info.filename!r} is compressed suspiciously well"
            )
    if total > MAX_UNCOMPRESSED:
        raise BadRequest(f"documentation unpacks to more than {MAX_UNCOMPRESSED} bytes")


def _top_prefix(names: list[str]) -> str:
    # Sphinx zips often put everything in one directory; serve its content at the root.
    tops = {name.split("/", 1)[0] for name in names if name}
    if len(tops) == 1 and all("/" in name for name in names if name):
        return tops.pop() + "/"
    return ""


@dataclass
class DocFile:
    """One documentation file, ready to send: ``body`` is None for HEAD."""

    content_type: str
    size: int
    body: Iterable[bytes] | None


def open_member(blob: BinaryIO, relpath: str, *, head: bool = False) -> DocFile:
    """The file ``relpath`` of the docs zip ``blob`` (directories give their ``index.html``).

    Takes ``blob`` over: it is closed when the returned body is (or before returning, if the
    file is answered whole or not at all).
    """
    try:
        zf = zipfile.ZipFile(blob)
    except _CORRUPT:
        blob.close()
        raise NotFound("the documentation zip is corrupt") from None
    streaming = False
    try:
        info = _find(zf, relpath)
        content_type = mimetypes.guess_type(info.filename)[0] or "application/octet-stream"
        if head:
            return DocFile(content_type, info.file_size, None)
        if info.file_size <= BUFFER_LIMIT:
            return DocFile(content_type, info.file_size, [_read_whole(zf, info)])
        streaming = True
        return DocFile(content_type, info.file_size, MemberStream(zf, info, blob))
    finally:
        if not streaming:
            zf.close()
            blob.close()


def _find(zf: zipfile.ZipFile, relpath: str) -> zipfile.ZipInfo:
    names = zf.namelist()
    prefix = _top_prefix(names)
    path = posixpath.normpath(relpath.strip("/")) if relpath.strip("/") else ""
    if path.startswith("..") or _unsafe(path):
        raise NotFound("no such documentation file")
    candidates = (
        [prefix + path, prefix + posixpath.join(path, "index.html")]
        if path
        else [prefix + "index.html"]
    )
    for candidate in candidates:
        if candidate in names:
            info = zf.getinfo(candidate)
            if info.file_size > MAX_MEMBER:
                raise NotFound(f"documentation file {relpath!r} is too large to serve")
            if info.compress_type not in METHODS or info.flag_bits & 0x1:
                raise NotFound(f"documentation file {relpath!r} is stored in an unsupported way")
            return info
    raise NotFound(f"no documentation file {relpath!r}")


def _read_whole(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    # read(n) decompresses at most about n bytes, whatever the zip claims; the reader checks
    # the CRC once it reached the declared size
    try:
        with zf.open(info) as member:
            content = member.read(info.file_size)
            extra = member.read(1)
    except _CORRUPT:
        content, extra = b"", b"?"
    if len(content) != info.file_size or extra:
        log.warning("documentation file %s does not match its zip entry", info.filename)
        raise NotFound(f"documentation file {info.filename!r} is corrupt")
    return content


class MemberStream:
    """WSGI body of a large documentation file, decompressed ``CHUNK`` bytes at a time.

    Stops early (so the server closes the connection) if the content does not match the size
    and CRC the zip declares; never yields more than the declared size.
    """

    def __init__(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, blob: BinaryIO) -> None:
        self.zf = zf
        self.info = info
        self.blob = blob
        self.sent = 0
        self._chunks = self._generate()

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def _generate(self) -> Generator[bytes, None, None]:
        declared = self.info.file_size
        try:
            with self.zf.open(self.info) as member:
                while self.sent < declared:
                    chunk = member.read(min(CHUNK, declared - self.sent))
                    if not chunk:
                        break
                    self.sent += len(chunk)
                    yield chunk
                member.read(1)  # reaches the end: the reader checks the CRC
        except _CORRUPT as exc:
            log.warning("documentation file %s is corrupt (%s); transfer cut short after %s "
                        "of %s bytes", self.info.filename, exc, self.sent, declared)
            return
        if self.sent != declared:
            log.warning("documentation file %s is shorter than its zip entry says; transfer "
                        "cut short after %s of %s bytes", self.info.filename, self.sent, declared)

    def close(self) -> None:
        """Release the zip and the blob (the client is done or gone)."""
        self._chunks.close()
        self.zf.close()
        self.blob.close()
