"""The usual PEP 691 project page read in one typed pass.

An upstream index answers pages whose every entry has a plain absolute (or plainly relative)
URL, exactly one sha256, and well-typed fields. msgspec decodes such a page straight into
structs. When all links share one plain origin and the file names are unique (what an index
of a few hundred thousand projects answers), the checks run once per column: the URLs joined
into one string, the digests into another, the files made at C level; otherwise each entry gets
a few string checks. Anything else (a type the structs refuse, a second hash, an odd URL) makes
:func:`read_plain_page` answer None, and :func:`~devpi_core_mirror.pages.parse_json` reads the
page the general way, which gives the same files for a plain page (a test compares them).
"""

from __future__ import annotations

import os.path
import re
from itertools import compress, repeat
from typing import TYPE_CHECKING, Annotated, Protocol

import msgspec

from devpi_core.records import UpstreamFile

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


class Belongs(Protocol):
    """Whether a file name is an archive of the page's project, one name or all at once."""

    def __call__(self, filename: str) -> bool: ...

    def each(self, filenames: Sequence[str]) -> list[bool]: ...

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
_HEX_DIGITS = b"0123456789abcdef"
# printable ASCII but space and "#": what a plain URL consists of
_URL_CHARACTERS = bytes(c for c in range(0x21, 0x7F) if c != ord("#"))
# scheme, a host without userinfo, a slash: what every URL of a page starts with
_PLAIN_ORIGIN = re.compile(r'https?://[!"$-.0-?A-~]+/')


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
    belongs: Belongs,
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
    by_columns = _read_columns(page.files, belongs)
    if by_columns is not None:
        return by_columns
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


def _only(allowed: bytes, text: str, left: bytes = b"") -> bool:
    """Whether ``text`` is ASCII and, with the ``allowed`` characters taken out, ``left``
    (one C-level pass over a whole column joined)."""
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        return False
    return data.translate(None, allowed) == left


def _all_plain_hashes(column: list[Hashes]) -> bool:
    """Every mapping is exactly ``{"sha256": <64 lowercase hex digits>}``, checked at C level
    (the digests joined, and nothing left once hex digits are taken out)."""
    if set(map(len, column)) != {1}:
        return False
    digests = [hashes.get("sha256", "") for hashes in column]
    return set(map(len, digests)) == {64} and _only(_HEX_DIGITS, "".join(digests))


def _read_columns(entries: list[_Entry], belongs: Belongs) -> tuple[UpstreamFile, ...] | None:
    """The files of a page whose links all share one plain origin and whose file names are
    unique, checked column by column; None for any other page."""
    if not entries:
        return ()
    urls = [entry.url for entry in entries]
    filenames = [entry.filename for entry in entries]
    # the common prefix of all: one comparison per character of the shortest
    origin = _PLAIN_ORIGIN.match(os.path.commonprefix(urls))  # noqa: RUF071
    if (
        origin is None
        or len(set(filenames)) != len(filenames)
        # joined by spaces, nothing but the spaces left once URL characters are taken out
        or not _only(_URL_CHARACTERS, " ".join(urls), left=b" " * (len(urls) - 1))
    ):
        return None
    hashes = [entry.hashes for entry in entries]
    unset = msgspec.UNSET
    stated = [
        entry.core_metadata if entry.core_metadata is not unset else entry.dist_info_metadata
        for entry in entries
    ]
    cores: list[Hashes | None] = [core if isinstance(core, dict) else None for core in stated]
    given = [core for core in cores if core is not None]
    if not _all_plain_hashes(hashes) or (given and not _all_plain_hashes(given)):
        return None
    rows = zip(
        filenames,
        urls,
        hashes,
        [entry.requires_python or None for entry in entries],
        [entry.yanked for entry in entries],
        cores,
        [entry.size for entry in entries],
        [entry.upload_time for entry in entries],
        strict=True,
    )
    files = map(tuple.__new__, repeat(UpstreamFile), rows)
    return tuple(compress(files, belongs.each(filenames)))
