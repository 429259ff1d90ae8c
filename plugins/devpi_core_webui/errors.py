"""Error pages for browsers; every other client keeps core's JSON or text errors.

Registered with the ``browser=True`` predicate beside core's exception views, so they only
answer requests the web UI would answer. A 401 keeps ``WWW-Authenticate: Basic`` so the
browser asks for a user name and password and sends them with the next requests.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from devpi_core.logsetup import logged_path, request_id
from devpi_core_webui.layout import Site, crumbs, render
from devpi_core_webui.markup import el, join, link

if TYPE_CHECKING:
    from pyramid.httpexceptions import HTTPException
    from pyramid.request import Request
    from pyramid.response import Response

    from devpi_core.errors import DevpiError

log = logging.getLogger(__name__)
TITLES = {400: "Bad request", 401: "Login required", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 410: "Gone", 429: "Too many attempts",
          502: "Upstream unavailable", 503: "Busy", 504: "Upstream timed out"}


def error_page(request: Request, status: int, message: str) -> Response:
    """An HTML page for an error status with ``message``."""
    site = Site.of(request, with_identity=False)
    hint = el("p", link(site.url(""), "All indexes"), " · ",
              link(site.url("+search"), "search"), class_="note")
    if status == 401:
        hint = el("p", "This page needs a login; your browser asks for a user name and password.",
                  class_="note")
    body = join((el("p", message, class_="error"), hint))
    title = TITLES.get(status, "Error")
    response = render(site, f"{status} {title}", body, nav=crumbs(site, (title, ())), status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="pypi"'
    return response


def devpi_error(exc: DevpiError, request: Request) -> Response:
    """Errors raised by core and plugins."""
    if exc.status >= 500:
        log.warning("%s %s: %s", request.method, logged_path(request.environ), exc.message)
    response = error_page(request, exc.status, exc.message)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def not_found(request: Request) -> Response:
    """No route matched."""
    return error_page(request, 404, f"There is nothing at {request.path}.")


def http_exception(exc: HTTPException, request: Request) -> Response:
    """Pyramid's own HTTP errors (method not allowed, ...); redirects pass through."""
    if exc.code is not None and exc.code < 400:
        return exc
    return error_page(request, exc.code or 500, exc.detail or exc.title)


def unexpected(exc: Exception, request: Request) -> Response:
    """A bug: logged with the request id, which is all the page shows."""
    log.error("unhandled error in %s %s", request.method, logged_path(request.environ),
              exc_info=exc)
    return error_page(request, 500, f"Internal server error (request id {request_id.get()}).")
