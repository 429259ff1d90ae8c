"""The Simple API: ``+simple/`` and ``+simple/<project>/`` in PEP 503 HTML and PEP 691 JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pyramid.httpexceptions import HTTPFound
from pyramid.response import Response
from pyramid.view import view_config

from devpi_core import services, simple_render
from devpi_core.errors import BadRequest
from devpi_core.model import acl
from devpi_core.model.names import normalize
from devpi_core.simple_pages import HTML, JSON, Served, SimplePages
from devpi_core.web import identity, is_installer, require_index_permission, restrict_modify, server_url

if TYPE_CHECKING:
    from pyramid.request import Request

    from devpi_core.records import IndexRecord

HTML_OFFERS = ("text/html", "application/vnd.pypi.simple.v1+html",
               "application/vnd.pypi.simple.latest+html")
JSON_OFFERS = ("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.latest+json")


def pages(request: Request) -> SimplePages:
    """The simple page service."""
    return services.lookup(request.registry, SimplePages)


def negotiate(request: Request) -> tuple[str, str]:
    """``(format, content type)`` for the request's Accept header (HTML if nothing fits)."""
    offers = request.accept.acceptable_offers([*HTML_OFFERS, *JSON_OFFERS])
    if not offers:
        return HTML, "text/html; charset=utf-8"
    best = offers[0][0]
    if best in JSON_OFFERS:
        return JSON, simple_render.JSON_TYPE
    if best == "text/html":
        return HTML, "text/html; charset=utf-8"
    return HTML, best


def wants_simple_list(request: Request) -> bool:
    """Whether a GET of an index URL is an installer or PEP 691 client asking for the list."""
    return is_installer(request) or negotiate(request)[0] == JSON


def link_prefix(request: Request) -> str:
    """How links climb from this page to the server root (or the absolute root URL)."""
    if services.settings(request).server.absolute_urls or "X-Devpi-Absolute-Urls" in request.headers:
        return server_url(request) + "/"
    return "../" * (request.path_info.count("/") - 1)


def reader(request: Request) -> tuple[frozenset[str], Callable[[IndexRecord], bool]]:
    """The principals of the request and a check whether it may read an index."""
    who = identity(request)
    restrict = restrict_modify(request)

    def can_read(record: IndexRecord) -> bool:
        return acl.index_allowed("pkg_read", who, record, restrict)

    return acl.principals(who), can_read


def _index(request: Request) -> IndexRecord:
    fullname = f"{request.matchdict['user']}/{request.matchdict['index']}"
    record = pages(request).lookup(fullname)
    require_index_permission(request, "pkg_read", record)
    return record


def _respond(request: Request, served: Served, content_type: str) -> Response:
    page = served.page
    response = Response(content_type=content_type.split(";")[0], charset="utf-8" if "charset" in content_type else None)
    response.headers["ETag"] = page.etag
    response.headers["Vary"] = "Accept, Accept-Encoding"
    max_age = services.settings(request).server.simple_max_age
    response.headers["Cache-Control"] = "no-cache" if served.warnings else f"max-age={max_age}"
    for warning in served.warnings:
        response.headers.add("Warning", f'110 devpi-core "{warning}"')
    if page.etag in request.if_none_match:
        response.status = 304
        return response
    if page.gzipped is not None and "gzip" in request.accept_encoding:
        response.body = page.gzipped
        response.headers["Content-Encoding"] = "gzip"
    else:
        response.body = page.body
    return response


def project_page_response(request: Request, record: IndexRecord, project: str) -> Response:
    """The simple page of ``project`` on ``record``, negotiated, cached, with ETag and gzip."""
    fmt, content_type = negotiate(request)
    principals, can_read = reader(request)
    served = pages(request).project_page(
        record, project, fmt=fmt, prefix=link_prefix(request), reader=principals,
        can_read=can_read,
    )
    return _respond(request, served, content_type)


def project_list_response(request: Request, record: IndexRecord) -> Response:
    """Every project on ``record`` and its bases, streamed."""
    fmt, content_type = negotiate(request)
    principals, can_read = reader(request)
    names, etag = pages(request).project_names(record, reader=principals, can_read=can_read)
    response = Response(content_type=content_type.split(";")[0])
    if fmt == JSON:
        response.app_iter = simple_render.list_json(names)
    else:
        response.charset = "utf-8"
        response.app_iter = simple_render.list_html(f"{record.fullname}: simple list", names)
    response.headers["Vary"] = "Accept, Accept-Encoding"
    if etag is not None:
        response.headers["ETag"] = etag
        if etag in request.if_none_match:
            response.status = 304
            response.app_iter = []
    return response


def _checked_project(request: Request) -> str:
    name = request.matchdict["project"]
    if not name.isascii():
        raise BadRequest(f"invalid project name {name!r}")
    return name


@view_config(route_name="simple_list", request_method=("GET", "HEAD"))
def simple_list(request: Request) -> Response:
    """``/<user>/<index>/+simple/``."""
    if not request.path_info.endswith("/") and not wants_simple_list(request):
        return HTTPFound(location=request.path_url + "/")
    return project_list_response(request, _index(request))


@view_config(route_name="simple_project", request_method=("GET", "HEAD"))
def simple_project(request: Request) -> Response:
    """``/<user>/<index>/+simple/<project>/``; other spellings redirect for browsers."""
    name = _checked_project(request)
    normalized = normalize(name)
    installer = wants_simple_list(request)
    if not installer and (name != normalized or not request.path_info.endswith("/")):
        user, index = request.matchdict["user"], request.matchdict["index"]
        return HTTPFound(location=f"{server_url(request)}/{user}/{index}/+simple/{normalized}/")
    return project_page_response(request, _index(request), normalized)


@view_config(route_name="simple_refresh", request_method="POST")
def simple_refresh(request: Request) -> Response:
    """Revalidate a project in every mirror the index uses, then show its page."""
    record = _index(request)
    project = normalize(_checked_project(request))
    principals, can_read = reader(request)
    indexes = services.indexes(request)
    for stage in indexes.resolution_order(record, can_read):
        indexes.type_of(stage).refresh(project)
    return HTTPFound(location=f"{server_url(request)}/{record.fullname}/+simple/{project}/")
