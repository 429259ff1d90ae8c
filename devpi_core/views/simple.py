"""The Simple API: ``+simple/`` and ``+simple/<project>/`` in PEP 503 HTML and PEP 691 JSON."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from pyramid.httpexceptions import HTTPFound
from pyramid.response import Response
from pyramid.view import view_config

from devpi_core import services, simple_render
from devpi_core.errors import BadRequest
from devpi_core.metrics import ROUTE_KEY
from devpi_core.model.names import normalize
from devpi_core.proxies import outside_url_header
from devpi_core.simple_pages import HTML, JSON, Served, SimplePages
from devpi_core.tweens import SERIAL_KEY
from devpi_core.web import (
    RequestReader,
    best_offer,
    is_installer,
    require_index_permission,
    server_url,
)

if TYPE_CHECKING:
    from pyramid.registry import Registry
    from pyramid.request import Request

    from devpi_core.records import IndexRecord

HTML_OFFERS = (
    "text/html",
    "application/vnd.pypi.simple.v1+html",
    "application/vnd.pypi.simple.latest+html",
)
JSON_OFFERS = ("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.latest+json")
SIMPLE_OFFERS = (*HTML_OFFERS, *JSON_OFFERS)


def pages(request: Request) -> SimplePages:
    """The simple page service."""
    return services.lookup(request.registry, SimplePages)


Handler = Callable[["Request"], Response]
_NEGOTIATED: dict[str, tuple[str, str]] = {}
LARGE_BODY = 256 * 1024


def negotiate(request: Request) -> tuple[str, str]:
    """``(format, content type)`` for the request's Accept header (HTML if nothing fits).

    Installers send a handful of distinct Accept headers; the answer for each is remembered.
    """
    return negotiate_accept(request.environ.get("HTTP_ACCEPT"))


def negotiate_accept(accept: str | None) -> tuple[str, str]:
    """:func:`negotiate` for an Accept header's value (None: no header)."""
    header = accept or ""
    found = _NEGOTIATED.get(header)
    if found is None:
        found = _negotiate(accept)
        if len(_NEGOTIATED) < 1000:
            _NEGOTIATED[header] = found
    return found


def _negotiate(header: str | None) -> tuple[str, str]:
    best = best_offer(header, SIMPLE_OFFERS)
    if best is None:
        return HTML, "text/html; charset=utf-8"
    if best in JSON_OFFERS:
        return JSON, simple_render.JSON_TYPE
    if best == "text/html":
        return HTML, "text/html; charset=utf-8"
    return HTML, best


def wants_simple_list(request: Request) -> bool:
    """Whether a GET of an index URL is an installer or PEP 691 client asking for the list."""
    return negotiate(request)[0] == JSON or is_installer(request)


def link_prefix(request: Request) -> str:
    """How links climb from this page to the server root, or the absolute root URL.

    Absolute when asked for, or when the server knows the URL clients use (``outside_url``,
    or a trusted proxy's ``X-Outside-Url``): installers take absolute links as they are, while every
    relative one costs them a URL join (a fifth of pip's time on a big page). Without that
    knowledge links stay relative, which works behind any proxy.
    """
    environ = request.environ
    server = services.settings(request).server
    if (
        outside_url_header(request) is not None
        or server.outside_url
        or server.absolute_urls
        or "HTTP_X_DEVPI_ABSOLUTE_URLS" in environ
    ):
        return server_url(request) + "/"
    path: str = environ.get("PATH_INFO", "")
    return "../" * (path.count("/") - 1)


def _index(request: Request, serial: int | None = None) -> IndexRecord:
    fullname = f"{request.matchdict['user']}/{request.matchdict['index']}"
    record = pages(request).lookup(fullname, serial)
    require_index_permission(request, "pkg_read", record)
    return record


def _respond(request: Request, served: Served, content_type: str) -> Response:
    page = served.page
    max_age = services.settings(request).server.simple_max_age
    if served.max_age is not None:  # a held version becomes eligible: no cache may outlive it
        max_age = max(0, min(max_age, int(served.max_age)))
    headers = [
        ("Content-Type", content_type),
        ("ETag", page.etag),
        ("Vary", "Accept, Accept-Encoding"),
        ("Cache-Control", "no-cache" if served.warnings else f"max-age={max_age}"),
    ]
    headers += [("Warning", f'110 devpi-core "{warning}"') for warning in served.warnings]
    environ = request.environ
    environ[SERIAL_KEY] = served.serial
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    # strong ETags of 32 hex digits: a substring test is an exact list-member test
    if if_none_match and (page.etag in if_none_match or if_none_match.strip() == "*"):
        return Response(status=304, headerlist=headers[1:])
    body = page.body
    if page.gzipped is not None and "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
        body = page.gzipped
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(body.size)))
    if body.data is not None and body.size <= LARGE_BODY:
        return Response(body=body.data, headerlist=headers)
    # waitress copies bodies over 1 MB into a temp file before sending; a file wrapper is
    # sent straight from the cached bytes or the page's own temp file
    wrapper = environ.get("wsgi.file_wrapper")
    reader = body.reader()
    return Response(app_iter=wrapper(reader, LARGE_BODY) if wrapper else reader, headerlist=headers)


def project_page_response(
    request: Request, record: IndexRecord, project: str, serial: int | None = None
) -> Response:
    """The simple page of ``project`` on ``record``, negotiated, cached, with ETag and gzip."""
    fmt, content_type = negotiate(request)
    served = pages(request).project_page(
        record,
        project,
        fmt=fmt,
        prefix=link_prefix(request),
        reader=RequestReader(request),
        serial=serial,
    )
    return _respond(request, served, content_type)


def project_list_response(request: Request, record: IndexRecord) -> Response:
    """Every project on ``record`` and its bases, streamed."""
    fmt, content_type = negotiate(request)
    names, etag = pages(request).project_names(record, reader=RequestReader(request))
    response = Response(content_type=content_type.split(";")[0])
    if fmt == JSON:
        response.app_iter = simple_render.list_json(names)
    else:
        response.charset = "utf-8"
        response.app_iter = simple_render.list_html(f"{record.fullname}: simple list", names)
    response.headers["Vary"] = "Accept, Accept-Encoding"
    if etag is not None:
        response.headers["ETag"] = etag
        if etag.strip('"') in request.if_none_match:
            response.status = 304
            response.app_iter = []
            del response.headers["Content-Type"]
    return response


def _checked_project(request: Request) -> str:
    name: str = request.matchdict["project"]
    if not name.isascii():
        raise BadRequest(f"invalid project name {name!r}")
    return name


@view_config(route_name="simple_list", request_method=("GET", "HEAD"))
def simple_list(request: Request) -> Response:
    """``/<user>/<index>/+simple/``."""
    if not request.path_info.endswith("/") and not wants_simple_list(request):
        return HTTPFound(location=request.path_url + "/")
    return project_list_response(request, _index(request))


PAGE_PATH = re.compile(r"^/([^/+][^/]*)/([^/+][^/]*)/\+simple/([a-z0-9][a-z0-9-]*)/$")


def cached_page_tween_factory(handler: Handler, registry: Registry) -> Handler:
    """Answer warm simple pages of public indexes before routing.

    Installers ask for the same pages over and over; when the page cache holds a valid page
    for a normalized URL of a public index, Pyramid's routing and view machinery are skipped.
    Anything else (a miss, a stale mirror, a restricted index) takes the normal view.
    """
    service = services.lookup(registry, SimplePages)

    def tween(request: Request) -> Response:
        environ = request.environ
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            match = PAGE_PATH.match(environ.get("PATH_INFO", ""))
            if match is not None and normalize(match.group(3)) == match.group(3):
                user, index, project = match.groups()
                fmt, content_type = negotiate(request)
                served = service.cached_public_page(
                    f"{user}/{index}", project, fmt=fmt, prefix=link_prefix(request)
                )
                if served is not None:
                    environ[ROUTE_KEY] = "simple_project"  # for /+metrics: no route matched
                    return _respond(request, served, content_type)
        return handler(request)

    return tween


@view_config(route_name="simple_project", request_method=("GET", "HEAD"))
def simple_project(request: Request) -> Response:
    """``/<user>/<index>/+simple/<project>/``; other spellings redirect for browsers."""
    name = _checked_project(request)
    normalized = normalize(name)
    slash = request.environ.get("PATH_INFO", "").endswith("/")
    if (name != normalized or not slash) and not wants_simple_list(request):
        user, index = request.matchdict["user"], request.matchdict["index"]
        return HTTPFound(location=f"{server_url(request)}/{user}/{index}/+simple/{normalized}/")
    serial = services.metadata_store(request).current_serial()
    return project_page_response(request, _index(request, serial), normalized, serial)


@view_config(route_name="simple_refresh", request_method="POST")
def simple_refresh(request: Request) -> Response:
    """Revalidate a project in every mirror the index uses, then show its page."""
    record = _index(request)
    project = normalize(_checked_project(request))
    indexes = services.indexes(request)
    for stage in indexes.resolution_order(record, RequestReader(request).can_read):
        indexes.type_of(stage).refresh(project)
    return HTTPFound(location=f"{server_url(request)}/{record.fullname}/+simple/{project}/")
