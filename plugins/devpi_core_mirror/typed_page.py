"""The usual PEP 691 project page read in one typed pass.

An upstream index answers pages whose every entry has a plain absolute (or plainly relative)
URL, exactly one sha256, and well-typed fields. msgspec decodes such a page straight into
structs, and each entry then needs a few string checks instead of the general path's dict
lookups and regular expressions. Anything else (a type the structs refuse, a second hash, an
odd URL) makes :func:`read_plain_page` answer None, and :func:`~devpi_core_mirror.pages.
parse_json` reads the page the general way, which gives the same files for a plain page (a
test compares them).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import msgspec

from devpi_core.records import UpstreamFile

if TYPE_CHECKING:
    from collections.abc import Callable

Hashes = dict[str, str]


class _Entry(msgspec.Struct, gc=False):
    filename: str
    url: str
    hashes: Hashes = {}
    requires_python: str | None = msgspec.field(name="requires-python", default=None)
    yanked: bool | str = False
    # absent and null differ: "core-metadata" wins over "dist-info-metadata" when present
    core_metadata: bool | Hashes | msgspec.UnsetType | None = msgspec.field(
        name="core-metadata", default=msgspec.UNSET
    )
    dist_info_metadata: bool | Hashes | msgspec.UnsetType | None = msgspec.field(
        name="dist-info-metadata", default=msgspec.UNSET
    )
    size: Annotated[int, msgspec.Meta(ge=0)] | None = None
    upload_time: str | None = msgspec.field(name="upload-time", default=None)


class _Meta(msgspec.Struct, frozen=True):
    api_version: str = msgspec.field(name="api-version", default="")


class _Page(msgspec.Struct):
    files: list[_Entry]
    meta: _Meta = _Meta()


_DECODER = msgspec.json.Decoder(_Page)
is_sha256 = re.compile(r"[0-9a-f]{64}").fullmatch  # 64 lowercase hex digits (or None)


def _is_plain_hashes(hashes: Hashes) -> bool:
    """Exactly one hash, a sha256 of 64 lowercase hex digits."""
    sha256 = hashes.get("sha256")
    return len(hashes) == 1 and sha256 is not None and is_sha256(sha256) is not None


def is_plain_url(url: str) -> bool:
    """What nearly every link looks like, checked with string methods: ``http(s)://``, a host
    without userinfo, a path, printable ASCII without spaces or a fragment."""
    if url.startswith("https://"):
        rest = url[8:]
    elif url.startswith("http://"):
        rest = url[7:]
    else:
        return False
    netloc, slash, _path = rest.partition("/")
    return (
        bool(slash and netloc)
        and "@" not in netloc
        and url.isascii()
        and url.isprintable()
        and " " not in url
        and "#" not in url
    )


def read_plain_page(
    body: bytes,
    belongs: Callable[[str], bool],
    join: Callable[[str], str | None],
) -> tuple[UpstreamFile, ...] | None:
    """The files of a page whose every entry is plain (see the module docstring), or None.

    ``belongs`` tells a file of the project (others are left out), ``join`` resolves a
    relative link (None: not a plain one). Per file name the first entry wins, as with devpi
    when all carry a hash.
    """
    try:
        page = _DECODER.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if not page.meta.api_version.startswith("1."):
        return None
    chosen: dict[str, UpstreamFile] = {}
    unset = msgspec.UNSET
    for entry in page.files:
        url = entry.url if entry.url.startswith(("https://", "http://")) else join(entry.url)
        hashes = entry.hashes
        if url is None or not _is_plain_hashes(hashes) or not is_plain_url(url):
            return None
        core = entry.core_metadata
        if core is unset:
            core = entry.dist_info_metadata
        if type(core) is not dict:  # absent, null, true or false: no hashes to check it by
            core = None
        elif not _is_plain_hashes(core):
            return None
        filename = entry.filename
        if filename in chosen or not belongs(filename):
            continue
        chosen[filename] = UpstreamFile(
            filename,
            url,
            hashes,
            entry.requires_python or None,
            entry.yanked,
            core,
            entry.size,
            entry.upload_time,
        )
    return tuple(chosen.values())
