"""Checking that uploads are the archives their names say, and reading their metadata.

A wheel's ``*.dist-info/METADATA`` is served as ``<file>.metadata`` (PEP 658/714); an sdist's
``PKG-INFO`` only fills metadata the upload form left out. Nothing is ever extracted to disk:
members are read from the archive with size limits, so names inside cannot escape anywhere.

Compressed tar archives are read through :class:`_Unpacked`, which counts every byte inflated
while the archive is searched (skipped members included, whatever sizes they declare) and stops
at :class:`Limits`: a 4 MB ``.tar.gz`` whose first member unpacks to 4 GiB kept an upload busy
for 7-9 s before its PKG-INFO was found, and is now refused in under 0.1 s.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from email.parser import BytesParser
from typing import TYPE_CHECKING, BinaryIO

from devpi_core.errors import BadRequest

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_METADATA = 4 * 1024 * 1024
# tar members looked at for PKG-INFO before giving up (tarfile keeps each one in memory)
MAX_TAR_MEMBERS = 20000
# tarfile reads headers (PAX and GNU long-name ones too) and PKG-INFO in one call each; a larger
# single read is an archive built to make it buffer gigabytes
MAX_READ = 2 * MAX_METADATA
_CHUNK = 1 << 16
ZIP_SUFFIXES = (".zip", ".whl", ".egg")
TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz")
# Leading bytes of each compressed format.
MAGIC = {
    (".tar.gz", ".tgz"): (b"\x1f\x8b",),
    (".tar.bz2", ".tbz", ".bz2"): (b"BZh",),
    (".tar.xz",): (b"\xfd7zXZ\x00",),
    ZIP_SUFFIXES: (b"PK\x03\x04", b"PK\x05\x06"),
}
_DECOMPRESSORS: dict[tuple[str, ...], Callable[[BinaryIO], io.BufferedIOBase]] = {
    (".tar.gz", ".tgz"): lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    (".tar.bz2", ".tbz"): bz2.BZ2File,
    (".tar.xz",): lzma.LZMAFile,
}
# what a corrupt archive raises from tarfile and the decompressors
_CORRUPT = (
    zipfile.BadZipFile,
    tarfile.TarError,
    OSError,
    ValueError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
)


@dataclass(frozen=True)
class Limits:
    """How much reading an archive's metadata may cost: bytes unpacked, and seconds."""

    max_unpacked: int = 256 * 1024 * 1024
    timeout: float = 10.0


DEFAULT_LIMITS = Limits()


class TooCostly(Exception):
    """Reading the archive would exceed its :class:`Limits`; ``args[0]`` says how."""


class _Unpacked:
    """The inflated bytes of a compressed tar, for ``tarfile``, within :class:`Limits`.

    Forward seeks (how tarfile skips a member) read and count the bytes they pass; a skip
    past the limit fails before inflating anything.
    """

    def __init__(self, stream: io.BufferedIOBase, limits: Limits) -> None:
        self.stream = stream
        self.limits = limits
        self.deadline = time.monotonic() + limits.timeout
        self.pos = 0

    def tell(self) -> int:
        """Bytes handed out (or skipped) so far."""
        return self.pos

    def read(self, size: int | None = -1) -> bytes:
        """At most ``size`` bytes; one read may not exceed :data:`MAX_READ`."""
        if size is None or size < 0 or size > MAX_READ:
            raise TooCostly(f"a header or PKG-INFO larger than {MAX_READ} bytes")
        self._reserve(size)
        data = self.stream.read(size)
        self.pos += len(data)
        self._check_time()
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Skip forward to ``offset`` by inflating (tarfile never seeks back while scanning)."""
        if whence != io.SEEK_SET or offset < self.pos:
            raise io.UnsupportedOperation("only forward seeks")
        self._reserve(offset - self.pos)
        while self.pos < offset:
            data = self.stream.read(min(_CHUNK, offset - self.pos))
            if not data:
                break
            self.pos += len(data)
            self._check_time()
        return self.pos

    def write(self, data: bytes) -> int:
        """Never: the archive is only read."""
        raise io.UnsupportedOperation("read only")

    def close(self) -> None:
        """Close the decompressor (the upload's file stays open)."""
        self.stream.close()

    def _reserve(self, size: int) -> None:
        if self.pos + size > self.limits.max_unpacked:
            raise TooCostly(f"it unpacks to more than {self.limits.max_unpacked} bytes")

    def _check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TooCostly(f"unpacking took longer than {self.limits.timeout:g} s")


def too_costly(filename: str, reason: str) -> BadRequest:
    """The 400 for an archive whose metadata would cost too much to read."""
    return BadRequest(
        f"could not read metadata from {filename}: archive too large to inspect ({reason}; "
        "see plugins.stages.metadata_max_unpacked and metadata_timeout)"
    )


def _open_tar(filename: str, f: BinaryIO, limits: Limits) -> tarfile.TarFile:
    lower = filename.lower()
    for suffixes, decompressor in _DECOMPRESSORS.items():
        if lower.endswith(suffixes):
            return tarfile.TarFile(fileobj=_Unpacked(decompressor(f), limits), mode="r")
    raise BadRequest(f"{filename} is not a tar archive")


# METADATA headers whose devpi key is not simply the lower-cased, underscored header name.
_HEADER_KEYS = {
    "classifier": "classifiers",
    "project_url": "project_urls",
    "provides_extra": "provides_extras",
}
MULTI_KEYS = frozenset(
    (
        "platform",
        "classifiers",
        "supported_platform",
        "provides",
        "requires",
        "obsoletes",
        "project_urls",
        "provides_dist",
        "obsoletes_dist",
        "requires_dist",
        "requires_external",
        "provides_extras",
        "dynamic",
        "license_file",
    )
)


def check_archive(filename: str, f: BinaryIO, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise a 400 unless ``f`` is the kind of archive ``filename`` names."""
    lower = filename.lower()
    f.seek(0)
    head = f.read(8)
    f.seek(0)
    for suffixes, magics in MAGIC.items():
        if lower.endswith(suffixes):
            if not any(head.startswith(magic) for magic in magics):
                raise BadRequest(f"{filename} is not a valid {suffixes[0][1:]} archive")
            break
    try:
        if lower.endswith(ZIP_SUFFIXES):
            with zipfile.ZipFile(f) as zf:
                zf.infolist()
        elif lower.endswith(TAR_SUFFIXES):
            with _open_tar(filename, f, limits) as tf:
                tf.next()
    except TooCostly as exc:
        raise too_costly(filename, str(exc)) from None
    except _CORRUPT:
        raise BadRequest(f"{filename} is not a valid archive") from None
    finally:
        f.seek(0)


def wheel_metadata(filename: str, f: BinaryIO) -> bytes | None:
    """The ``<name>.dist-info/METADATA`` of a wheel (PEP 658), or None if it has none."""
    if not filename.lower().endswith(".whl"):
        return None
    try:
        with zipfile.ZipFile(f) as zf:
            candidates = [
                info
                for info in zf.infolist()
                if info.filename.count("/") == 1
                and info.filename.split("/")[0].endswith(".dist-info")
                and info.filename.endswith("/METADATA")
            ]
            if len(candidates) != 1 or candidates[0].file_size > MAX_METADATA:
                return None
            return zf.read(candidates[0])
    except (*_CORRUPT, KeyError):
        return None
    finally:
        f.seek(0)


def sdist_metadata(filename: str, f: BinaryIO, limits: Limits = DEFAULT_LIMITS) -> bytes | None:
    """The top-level ``PKG-INFO`` of an sdist (``.tar.gz``, ``.zip``...), or None.

    Raises a 400 when finding it would unpack more than ``limits`` allow.
    """
    lower = filename.lower()
    try:
        if lower.endswith(TAR_SUFFIXES):
            return _tar_pkg_info(filename, f, limits)
        if lower.endswith(".zip"):
            # zip members are found by name and read up to the size they declare
            with zipfile.ZipFile(f) as zf:
                for info in zf.infolist():
                    if _is_top_pkg_info(info.filename) and info.file_size <= MAX_METADATA:
                        return zf.read(info)
    except TooCostly as exc:
        raise too_costly(filename, str(exc)) from None
    except _CORRUPT:
        return None
    finally:
        f.seek(0)
    return None


def _tar_pkg_info(filename: str, f: BinaryIO, limits: Limits) -> bytes | None:
    with _open_tar(filename, f, limits) as tf:
        for _n in range(MAX_TAR_MEMBERS):
            member = tf.next()
            if member is None:
                return None
            if member.isfile() and _is_top_pkg_info(member.name) and member.size <= MAX_METADATA:
                extracted = tf.extractfile(member)
                return extracted.read() if extracted is not None else None
    raise TooCostly(f"more than {MAX_TAR_MEMBERS} files before its PKG-INFO")


def _is_top_pkg_info(name: str) -> bool:
    parts = name.strip("/").split("/")
    return len(parts) == 2 and parts[1] == "PKG-INFO"


def archive_metadata(filename: str, f: BinaryIO, limits: Limits = DEFAULT_LIMITS) -> bytes | None:
    """The metadata file inside a wheel or sdist, if it has one (400 if too costly to find)."""
    if filename.lower().endswith(".whl"):
        return wheel_metadata(filename, f)
    return sdist_metadata(filename, f, limits)


def metadata_fields(raw: bytes) -> dict[str, str | list[str]]:
    """A METADATA/PKG-INFO file as devpi's metadata keys (``Home-page`` -> ``home_page``,
    ``Classifier`` -> ``classifiers``, repeated headers as lists, the body as ``description``)."""
    message = BytesParser().parsebytes(raw)
    fields: dict[str, str | list[str]] = {}
    for header in dict.fromkeys(message.keys()):
        key = header.lower().replace("-", "_")
        key = _HEADER_KEYS.get(key, key)
        values = [str(v) for v in message.get_all(header) or ()]
        fields[key] = values if key in MULTI_KEYS else values[0]
    body = message.get_payload()
    if isinstance(body, str) and body.strip() and not fields.get("description"):
        fields["description"] = body
    return fields
