"""The warm-file shortcut: stored release files of public indexes answered before Pyramid.

An installer downloads every file of a lock after reading its page. For a plain ``GET`` of a
file that is in a blob store on this machine, of a public index, the answer is the blob and a
few headers; Pyramid's request, routing, tweens and webob's response cost several times what
reading the file does. :class:`FileShortcut` answers those with the bytes and headers
:func:`devpi_core.views.files.blob_response` sends (through waitress's ``wsgi.file_wrapper``,
which :mod:`devpi_core.connections` hands to ``os.sendfile``, as for the full path), and
leaves everything else to the full path: ``HEAD``, ``Range``, any conditional request,
``Accept: application/json``, a query, a file not stored yet, a withheld (quarantined or
removed) file, a held version, an index or base that is not public, a blob store that is not
local or redirects.

The execution policy of :mod:`devpi_core.page_shortcut` asks it; it stands aside where that
policy does (a docs origin, other tweens or subscribers), but not for absolute links.
"""

from __future__ import annotations

import os
import re
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, BinaryIO

from pyramid.response import FileIter

from devpi_core import services
from devpi_core.content_policy import file_content_type, file_headers
from devpi_core.model.names import normalize
from devpi_core.simple_pages import SimplePages
from devpi_core.views.files import BLOCK, IMMUTABLE

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable

    from pyramid.registry import Registry

    from devpi_core.indextypes import FileRef
    from devpi_core.records import IndexRecord

# /<user>/<index>/<kind>/<relpath>, as the core routes file_f, file_f_alias, file_e, file_e_alias
FILE_PATH = re.compile(r"^/([^+/][^/]*)/([^+/][^/]*)/([+_][fe])/(.+)$")
# files remembered per serial (about a kilobyte each; a lock file has a hundred or so)
MAX_REFS = 4096
ROUTES = {"+f": "file_f", "_f": "file_f_alias", "+e": "file_e", "_e": "file_e_alias"}
# any of these and the full path answers: ranges, conditions, a query, devpi's file JSON
_ASIDE = (
    "QUERY_STRING",
    "HTTP_RANGE",
    "HTTP_IF_RANGE",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
)


class NeedsIdentity(Exception):
    """The answer depends on who asks: the full path authenticates."""


class _Anonymous:
    """A reader for orders that are public throughout; anything else needs the full path."""

    def key(self) -> Hashable:
        raise NeedsIdentity

    def can_read(self, record: IndexRecord) -> bool:
        raise NeedsIdentity


def plain_get(environ: dict[str, Any]) -> tuple[str, ...] | None:
    """``(user, index, kind, relpath)`` of a plain GET of a file URL, else None."""
    if environ.get("REQUEST_METHOD") != "GET" or any(environ.get(k) for k in _ASIDE):
        return None
    if "json" in environ.get("HTTP_ACCEPT", ""):
        return None
    path = environ.get("PATH_INFO", "")
    match = FILE_PATH.match(path)
    # '%', dot segments, NUL, non-ASCII: the full path answers them (a 400, or what they are)
    if match is None or "%" in path or "/." in path or "\x00" in path or not path.isascii():
        return None
    return match.groups()


class FileAnswer:
    """A ready WSGI answer sending an open blob."""

    __slots__ = ("f", "headers", "size")

    def __init__(self, headers: list[tuple[str, str]], f: BinaryIO, size: int) -> None:
        self.headers = headers
        self.f = f
        self.size = size

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        start_response("200 OK", self.headers)
        wrapper = environ.get("wsgi.file_wrapper") or FileIter
        sent: Iterable[bytes] = wrapper(self.f, BLOCK)
        return sent


class FileShortcut:
    """Answers plain GETs of stored files of public indexes (see the module's docstring)."""

    def __init__(self, registry: Registry) -> None:
        self.pages = services.lookup(registry, SimplePages)
        self.indexes = services.indexes(registry)
        self.blobs = services.blob_store(registry)
        self.store = services.metadata_store(registry)
        self.reader = _Anonymous()
        self.fixed = list(file_headers().items())
        self._refs: dict[tuple[str, str], tuple[int, FileRef]] = {}

    def answer(self, environ: dict[str, Any]) -> tuple[str, int, FileAnswer] | None:
        """``(route, serial, answer)`` for a plain GET of a stored public file, else None.

        Raises whatever a lookup raises (the caller hands the request to the full path)."""
        parts = plain_get(environ)
        if parts is None:
            return None
        user, index, kind, rest = parts
        serial = self.store.current_serial()
        resolver = self.pages.resolver
        gen = resolver.sync(serial)
        record = resolver.record(gen, f"{user}/{index}")
        if record is None or resolver.public_order(gen, record) is None:
            return None
        ref = self._ref(record, f"{record.fullname}/+{kind[1]}/{rest}", serial)
        if ref is None or ref.sha256 is None:
            return None
        # a held version is refused (403) by the full path; deciding needs no identity here
        self.pages.check_file(record, normalize(ref.project), ref.version, reader=self.reader)
        content_type = (
            "application/json" if ref.rel == "toxresult" else file_content_type(ref.filename)
        )
        local = self.blobs.local_path(ref.sha256)
        if local is None or self.blobs.url(
            ref.sha256, filename=ref.filename, content_type=content_type
        ) is not None:
            return None
        f = open(local, "rb")  # noqa: SIM115 - the answer's file wrapper closes it
        try:
            size = os.fstat(f.fileno()).st_size
        except BaseException:
            f.close()
            raise
        headers = [("Content-Type", content_type), *self.fixed]
        headers += [
            ("ETag", f'"{ref.sha256}"'),
            ("Accept-Ranges", "bytes"),
            ("Cache-Control", IMMUTABLE),
        ]
        if ref.last_modified:
            headers.append(("Last-Modified", formatdate(ref.last_modified, usegmt=True)))
        headers.append(("Content-Length", str(size)))
        return ROUTES[kind], serial, FileAnswer(headers, f, size)

    def _ref(self, record: IndexRecord, relpath: str, serial: int) -> FileRef | None:
        """The servable file at ``relpath`` (the aliases _f, _e name the files of +f, +e).

        Looked up once per serial: what an index serves changes only with a write, which moves
        the serial on (stale entries are never used, and dropped when the cache is full).
        """
        key = (record.fullname, relpath)
        found = self._refs.get(key)
        if found is not None and found[0] == serial:
            return found[1]
        ref = self.indexes.type_of(record).get_file(relpath)
        if ref is None or ref.withheld is not None or ref.sha256 is None:
            return None  # the full path answers these; nothing remembered
        if len(self._refs) >= MAX_REFS:
            self._refs.clear()
        self._refs[key] = (serial, ref)
        return ref
