"""Views: HTML for browsers on core's routes, plus search, the stylesheet and error pages.

Every page view is registered on a core route with ``accept="text/html"`` and the
``browser=True`` predicate (see :mod:`devpi_core_webui.negotiation`); a request that is not a
browser's skips it and gets core's view, exactly as without this plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyramid.httpexceptions import HTTPException, HTTPFound
from pyramid.response import Response

from devpi_core import services
from devpi_core.errors import DevpiError, Forbidden, NotFound
from devpi_core.web import held_versions, readable_index, server_url
from devpi_core_webui import errors, listing, readme, toxresults
from devpi_core_webui.layout import STATIC_ROUTE, STYLE, Static
from devpi_core_webui.negotiation import BrowserPredicate
from devpi_core_webui.project_page import project_page
from devpi_core_webui.releases import checked_project, project_releases, redirect_target
from devpi_core_webui.search import search_page
from devpi_core_webui.status_page import status_page
from devpi_core_webui.version_page import version_page

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyramid.config import Configurator
    from pyramid.request import Request

SEARCH_ROUTE = "webui_search"
YEAR = 365 * 24 * 3600


def root_view(request: Request) -> Response:
    """``/``."""
    return listing.root_page(request)


def user_view(request: Request) -> Response:
    """``/<user>``."""
    return listing.user_page(request)


def index_view(request: Request) -> Response:
    """``/<user>/<index>``."""
    return listing.index_page(request, readable_index(request))


def _normalized_redirect(request: Request, name: str, *rest: str) -> Response | None:
    target = redirect_target(name)
    if target is None:
        return None
    user, index = request.matchdict["user"], request.matchdict["index"]
    return HTTPFound(location="/".join((server_url(request), user, index, target, *rest)))


def project_view(request: Request) -> Response:
    """``/<user>/<index>/<project>``; other spellings of the name redirect."""
    name = checked_project(request)
    record = readable_index(request)
    redirect = _normalized_redirect(request, name)
    if redirect is not None:
        return redirect
    return project_page(request, record, project_releases(request, record, name))


def version_view(request: Request) -> Response:
    """``/<user>/<index>/<project>/<version>``."""
    name = checked_project(request)
    version = request.matchdict["version"]
    record = readable_index(request)
    redirect = _normalized_redirect(request, name, version)
    if redirect is not None:
        return redirect
    data = project_releases(request, record, name)
    release = data.find(version)
    if release is None:
        message = held_versions(request, record, name).get(version)
        if message is not None:  # a held version: the same 403 as its files
            raise Forbidden(message)
        raise NotFound(f"no version {version!r} of {name!r} on {record.fullname}")
    return version_page(request, record, data, release)


def status_view(request: Request) -> Response:
    """``/+status``."""
    return status_page(request)


def search_view(request: Request) -> Response:
    """``/+search?q=``."""
    return search_page(request)


def static_view(request: Request) -> Response:
    """The stylesheet; immutable under the digest of its content."""
    static = services.lookup(request.registry, Static)
    if request.matchdict["name"] != STYLE:
        raise NotFound(f"no static file {request.matchdict['name']!r}")
    response = Response(static.css, content_type="text/css", charset="utf-8")
    fresh = request.matchdict["digest"] == static.digest
    cache = f"public, max-age={YEAR}, immutable" if fresh else "no-cache"
    response.headers["Cache-Control"] = cache
    response.headers["ETag"] = f'"{static.digest}"'
    if static.digest in request.if_none_match:
        return Response(status=304, headers={"ETag": f'"{static.digest}"'})
    return response


PAGES: tuple[tuple[str, Callable[[Request], Response]], ...] = (
    ("root", root_view),
    ("user", user_view),
    ("index", index_view),
    ("project", project_view),
    ("version", version_view),
    ("status", status_view),
)


def includeme(config: Configurator) -> None:
    """Add the browser predicate, the HTML views on core routes, search, CSS, error pages."""
    services.register(config.registry, Static, Static.load())
    toxresults.register(config.registry)
    readme.register(config.registry)
    config.add_view_predicate("browser", BrowserPredicate)
    for route, view in PAGES:
        config.add_view(view, route_name=route, request_method="GET", accept="text/html",
                        browser=True)
    config.add_route(SEARCH_ROUTE, "/+search")
    config.add_view(search_view, route_name=SEARCH_ROUTE, request_method="GET")
    config.add_route(STATIC_ROUTE, "/+webui/{digest}/{name}")
    config.add_view(static_view, route_name=STATIC_ROUTE, request_method="GET")
    config.add_exception_view(errors.devpi_error, context=DevpiError, browser=True)
    config.add_exception_view(errors.http_exception, context=HTTPException, browser=True)
    config.add_exception_view(errors.unexpected, context=Exception, browser=True)
    config.add_notfound_view(errors.not_found, browser=True)
