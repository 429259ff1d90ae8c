"""Checking that uploads are the archives their names say, and reading wheel METADATA."""

from __future__ import annotations

import zipfile
from email.parser import BytesHeaderParser
from typing import BinaryIO

from devpi_core.errors import BadRequest

MAX_METADATA = 4 * 1024 * 1024
# Leading bytes of each compressed format.
MAGIC = {
    (".tar.gz", ".tgz"): (b"\x1f\x8b",),
    (".tar.bz2", ".tbz", ".bz2"): (b"BZh",),
    (".tar.xz",): (b"\xfd7zXZ\x00",),
    (".zip", ".whl", ".egg"): (b"PK\x03\x04", b"PK\x05\x06"),
}


def check_archive(filename: str, f: BinaryIO) -> None:
    """Raise a 400 unless ``f`` starts like the archive format ``filename`` names."""
    lower = filename.lower()
    f.seek(0)
    head = f.read(8)
    for suffixes, magics in MAGIC.items():
        if lower.endswith(suffixes):
            if not any(head.startswith(magic) for magic in magics):
                raise BadRequest(f"{filename} is not a valid {suffixes[0][1:]} archive")
            break
    if lower.endswith((".whl", ".zip", ".egg")):
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as zf:
                zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError):
            raise BadRequest(f"{filename} is not a valid zip archive") from None
    f.seek(0)


def wheel_metadata(filename: str, f: BinaryIO) -> bytes | None:
    """The ``<name>.dist-info/METADATA`` of a wheel (PEP 658), or None if it has none."""
    if not filename.lower().endswith(".whl"):
        return None
    f.seek(0)
    try:
        with zipfile.ZipFile(f) as zf:
            candidates = [
                info for info in zf.infolist()
                if info.filename.count("/") == 1
                and info.filename.split("/")[0].endswith(".dist-info")
                and info.filename.endswith("/METADATA")
            ]
            if len(candidates) != 1 or candidates[0].file_size > MAX_METADATA:
                return None
            return zf.read(candidates[0])
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        return None
    finally:
        f.seek(0)


def metadata_fields(raw: bytes) -> dict[str, str | list[str]]:
    """The header fields of a METADATA file that devpi stores (names lower-cased)."""
    message = BytesHeaderParser().parsebytes(raw)
    fields: dict[str, str | list[str]] = {}
    for key in ("Name", "Version", "Summary", "Requires-Python", "License", "Author"):
        value = message.get(key)
        if value is not None:
            fields[key.lower().replace("-", "_")] = str(value)
    requires = message.get_all("Requires-Dist")
    if requires:
        fields["requires_dist"] = [str(r) for r in requires]
    return fields
