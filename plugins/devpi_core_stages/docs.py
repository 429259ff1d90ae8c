"""Documentation zips: checked at upload, served unpacked straight from the zip.

Serving from the zip (never extracting to disk) means no entry can escape its directory;
uploads with unsafe names, too many entries or too much uncompressed data are refused.
"""

from __future__ import annotations

import mimetypes
import posixpath
import zipfile
from typing import BinaryIO

from devpi_core.errors import BadRequest, NotFound

MAX_ENTRIES = 20000
MAX_UNCOMPRESSED = 512 * 1024 * 1024
MAX_RATIO = 200


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


def read_member(f: BinaryIO, relpath: str) -> tuple[bytes, str]:
    """``(content, content type)`` of ``relpath`` inside the docs zip; directories give
    their ``index.html``."""
    with zipfile.ZipFile(f) as zf:
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
                if info.file_size > MAX_UNCOMPRESSED:
                    raise NotFound("documentation file too large")
                content_type = mimetypes.guess_type(candidate)[0] or "application/octet-stream"
                return zf.read(info), content_type
    raise NotFound(f"no documentation file {relpath!r}")
