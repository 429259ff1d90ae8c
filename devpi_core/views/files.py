"""Release files: ``GET``/``HEAD``/``DELETE /<user>/<index>/+f/...`` (and ``+e/`` for mirrors).

Stored files are streamed from the blob store with ETag, Last-Modified, immutable caching and
single ``Range`` requests; a mirror's uncached file streams while it is being cached. Every file
response has an allowlisted type, ``nosniff`` and a CSP sandbox (see ``content_policy``).
"""

from __future__ import annotations

import re
from email.utils import formatdate
from typing import TYPE_CHECKING, BinaryIO

from pyramid.httpexceptions import HTTPFound
from pyramid.response import FileIter, Response
from pyramid.view import view_config

from devpi_core import services
from devpi_core.content_policy import file_content_type, file_headers
from devpi_core.errors import Forbidden, Gone, NotFound
from devpi_core.model.names import normalize
from devpi_core.records import DeleteEvent
from devpi_core.simple_pages import SimplePages
from devpi_core.web import (
    RequestReader,
    api_reply,
    changeable_index,
    flag,
    identity,
    index_from_url,
    require_index_permission,
    wants_json,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyramid.request import Request

    from devpi_core.indextypes import FileRef, FileStream, IndexType
    from devpi_core.interfaces import BlobStore
    from devpi_core.records import IndexRecord

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
BLOCK = 1 << 18
IMMUTABLE = "public, max-age=365000000, immutable"
# route name -> devpi's path segment of the files it serves
_KINDS = {"file_f": "+f", "file_f_alias": "+f", "file_e": "+e", "file_e_alias": "+e"}


def _file_ref(request: Request, permission: str) -> tuple[IndexRecord, IndexType, FileRef]:
    # the permission is checked before the lookup, so unreadable indexes reveal no file names
    if permission == "pkg_read":
        record = index_from_url(request)
        require_index_permission(request, permission, record)
    else:
        record = changeable_index(request, permission)
    kind = _KINDS[request.matched_route.name]
    relpath = f"{record.fullname}/{kind}/{request.matchdict['relpath']}"
    itype = services.indexes(request).type_of(record)
    ref = itype.get_file(relpath)
    if ref is None:
        raise NotFound(f"no such file: {relpath}")
    if permission == "pkg_read":  # a held version is refused under every URL of its files
        services.lookup(request.registry, SimplePages).check_file(
            record, normalize(ref.project), ref.version, reader=RequestReader(request)
        )
    return record, itype, ref


def _file_response(content_type: str) -> Response:
    response = Response(content_type=content_type, charset=None)
    response.headers.update(file_headers())
    return response


def parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """``(start, stop)`` for a satisfiable single range, None for none, False if unsatisfiable."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        return None  # multiple or malformed ranges: ignore, send everything (RFC 9110)
    first, last = match.groups()
    if first == "":
        length = int(last)
        if length == 0:
            return False
        return max(0, size - length), size
    start = int(first)
    stop = size if last == "" else min(int(last) + 1, size)
    if start >= size or stop <= start:
        return False
    return start, stop


def _limited(f: BinaryIO, start: int, stop: int) -> Iterator[bytes]:
    try:
        f.seek(start)
        remaining = stop - start
        while remaining > 0:
            chunk = f.read(min(BLOCK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        f.close()


def blob_response(
    request: Request, blobs: BlobStore, ref: FileRef, size: int | None = None
) -> Response:
    """Serve a stored blob with validators and Range support (``size`` if already known).

    A blob store that is not on this machine (``local_path`` is None) is read in the worker
    thread, never in waitress's event loop; one that gives a :meth:`~BlobStore.url` gets the
    client redirected there instead.
    """
    assert ref.sha256 is not None
    if size is None:
        size = blobs.size(ref.sha256)
    if size is None:
        raise NotFound(f"no such file: {ref.relpath}")
    content_type = "application/json" if ref.rel == "toxresult" else file_content_type(ref.filename)
    response = _file_response(content_type)
    etag = f'"{ref.sha256}"'
    response.headers.update({"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": IMMUTABLE})
    if ref.last_modified:
        response.headers["Last-Modified"] = formatdate(ref.last_modified, usegmt=True)
    if ref.sha256 in request.if_none_match:
        response.status = 304
        del response.headers["Content-Type"]  # a 304 has no content to type
        return response
    wanted = parse_range(request.headers.get("Range"), size)
    if_range = request.headers.get("If-Range")
    if wanted is not None and if_range and if_range != etag:
        wanted = None
    if wanted is False:
        response.status = 416
        response.headers["Content-Range"] = f"bytes */{size}"
        return response
    elsewhere = blobs.url(ref.sha256, filename=ref.filename, content_type=content_type)
    if elsewhere is not None:
        return _redirect(elsewhere)
    if request.method == "HEAD":
        response.content_length = size
        return response
    f = blobs.open(ref.sha256)
    if isinstance(wanted, tuple):
        start, stop = wanted
        response.status = 206
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        response.app_iter = _limited(f, start, stop)
        response.content_length = stop - start
        return response
    # waitress reads a file_wrapper from its event loop: only for files on local disk
    local = blobs.local_path(ref.sha256) is not None
    wrapper = request.environ.get("wsgi.file_wrapper") if local else None
    response.app_iter = wrapper(f, BLOCK) if wrapper else FileIter(f, BLOCK)
    response.content_length = size
    return response


def _redirect(location: str) -> Response:
    # no content headers on the 302 (a client could take them for the file's), and no caching:
    # the presigned URL expires
    response = Response(status=302, location=location, cache_control="no-store")
    del response.content_type
    return response


def stream_response(request: Request, ref: FileRef, stream: FileStream) -> Response:
    """Serve a file while it is fetched from upstream (no Range: it is not complete yet).

    The upstream's content type is not passed on: the first download must be as inert as the
    cached file served later.
    """
    response = _file_response(file_content_type(ref.filename))
    response.headers["X-Accel-Buffering"] = "no"
    if stream.last_modified:
        response.headers["Last-Modified"] = formatdate(stream.last_modified, usegmt=True)
    if stream.size is not None:
        response.content_length = stream.size
    if request.method == "HEAD":
        stream.close()
        return response
    response.app_iter = _ClosingIter(stream)
    return response


class _ClosingIter:
    """WSGI iterable that tells the stream when the client is done (or gone)."""

    def __init__(self, stream: FileStream) -> None:
        self.stream = stream

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.stream.chunks)

    def close(self) -> None:
        self.stream.close()


@view_config(route_name="file_f", request_method=("GET", "HEAD"))
@view_config(route_name="file_e", request_method=("GET", "HEAD"))
@view_config(route_name="file_f_alias", request_method=("GET", "HEAD"))
@view_config(route_name="file_e_alias", request_method=("GET", "HEAD"))
def get_file(request: Request) -> Response:
    """A release file, or its metadata as JSON for ``Accept: application/json``."""
    _record, itype, ref = _file_ref(request, "pkg_read")
    if ref.withheld is not None:  # quarantined or removed upstream: kept, never served
        raise Gone(ref.withheld)
    if wants_json(request):
        return api_reply(request, "releasefilemeta", dict(ref.meta))
    blobs = services.blob_store(request)
    # one call (one HEAD request for an object store) for existence and size
    found = blobs.stat(ref.sha256) if ref.sha256 is not None else None
    if found is not None:
        return blob_response(request, blobs, ref, found.size)
    stream = itype.open_uncached(ref)
    if stream is None:
        raise NotFound(f"file {ref.relpath} is not available")
    if stream.redirect is not None:
        return HTTPFound(location=stream.redirect)
    return stream_response(request, ref, stream)


@view_config(route_name="file_f", request_method="DELETE")
@view_config(route_name="file_e", request_method="DELETE")
@view_config(route_name="file_f_alias", request_method="DELETE")
@view_config(route_name="file_e_alias", request_method="DELETE")
def delete_file(request: Request) -> Response:
    """Remove one file (``?force`` needed on non-volatile indexes)."""
    record, itype, ref = _file_ref(request, "del_entry")
    if not itype.may_delete(force=flag(request, "force")):
        raise Forbidden(f"{record.fullname} is non-volatile; add ?force to delete")
    who = identity(request)
    itype.delete_file(ref, username=who.username if who else None)
    serial = services.metadata_store(request).current_serial()
    services.plugins(request).emit(
        DeleteEvent(record.fullname, ref.project, ref.version, ref.filename,
                    who.username if who else None, serial),
        services.ServiceRegistry.of(request),
    )
    return api_reply(request, message=f"deleted {ref.relpath}")
