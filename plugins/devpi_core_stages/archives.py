"""Checking that uploads are the archives their names say, and reading their metadata.

A wheel's ``*.dist-info/METADATA`` is served as ``<file>.metadata`` (PEP 658/714); an sdist's
``PKG-INFO`` only fills metadata the upload form left out. Nothing is ever extracted to disk:
members are read from the archive with size limits, so names inside cannot escape anywhere.
"""

from __future__ import annotations

import tarfile
import zipfile
from email.parser import BytesParser
from typing import BinaryIO

from devpi_core.errors import BadRequest

MAX_METADATA = 4 * 1024 * 1024
# tar members looked at for PKG-INFO before giving up (it is near the front in practice)
MAX_TAR_MEMBERS = 5000
ZIP_SUFFIXES = (".zip", ".whl", ".egg")
TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz")
# Leading bytes of each compressed format.
MAGIC = {
    (".tar.gz", ".tgz"): (b"\x1f\x8b",),
    (".tar.bz2", ".tbz", ".bz2"): (b"BZh",),
    (".tar.xz",): (b"\xfd7zXZ\x00",),
    ZIP_SUFFIXES: (b"PK\x03\x04", b"PK\x05\x06"),
}
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


def check_archive(filename: str, f: BinaryIO) -> None:
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
            with tarfile.open(fileobj=f, mode="r:*") as tf:
                tf.next()
    except (zipfile.BadZipFile, tarfile.TarError, OSError, ValueError, EOFError):
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
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError):
        return None
    finally:
        f.seek(0)


def sdist_metadata(filename: str, f: BinaryIO) -> bytes | None:
    """The top-level ``PKG-INFO`` of an sdist (``.tar.gz``, ``.zip``...), or None."""
    lower = filename.lower()
    try:
        if lower.endswith(TAR_SUFFIXES):
            return _tar_pkg_info(f)
        if lower.endswith(".zip"):
            with zipfile.ZipFile(f) as zf:
                for info in zf.infolist():
                    if _is_top_pkg_info(info.filename) and info.file_size <= MAX_METADATA:
                        return zf.read(info)
    except (zipfile.BadZipFile, tarfile.TarError, OSError, ValueError, EOFError):
        return None
    finally:
        f.seek(0)
    return None


def _tar_pkg_info(f: BinaryIO) -> bytes | None:
    with tarfile.open(fileobj=f, mode="r:*") as tf:
        for _n, member in zip(range(MAX_TAR_MEMBERS), tf, strict=False):
            if member.isfile() and _is_top_pkg_info(member.name) and member.size <= MAX_METADATA:
                extracted = tf.extractfile(member)
                return extracted.read() if extracted is not None else None
    return None


def _is_top_pkg_info(name: str) -> bool:
    parts = name.strip("/").split("/")
    return len(parts) == 2 and parts[1] == "PKG-INFO"


def archive_metadata(filename: str, f: BinaryIO) -> bytes | None:
    """The metadata file inside a wheel or sdist, if it has one."""
    return wheel_metadata(filename, f) or sdist_metadata(filename, f)


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
