"""The exception views: every error becomes ``{"message": ...}`` with a fitting status.

The message also travels in the reason phrase, which is what twine and setuptools print.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pyramid.httpexceptions import HTTPException
from pyramid.response import Response
from pyramid.view import exception_view_config, notfound_view_config

from devpi_core.errors import DevpiError, Unauthorized
from devpi_core.logsetup import logged_path, request_id
from devpi_core.web import best_offer, json_response

if TYPE_CHECKING:
    from pyramid.request import Request

log = logging.getLogger(__name__)
ERROR_OFFERS = ("application/json", "text/plain", "text/html")


def _reason(message: str) -> str:
    # One line of latin-1 text, short enough for any client to show.
    line = " ".join(message.split())[:200]
    return line.encode("latin-1", "replace").decode("latin-1")


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    retry_after: int | None = None,
    challenge: bool = True,
) -> Response:
    """JSON ``{"message": ...}`` unless the client prefers plain text or HTML."""
    header = request.environ.get("HTTP_ACCEPT")
    # any JSON type named in the header (devpi-client's, PEP 691's) keeps the JSON body
    names_json = "json" in (header or "")
    best = best_offer(header, ERROR_OFFERS)
    if best is not None and best != "application/json" and not names_json:
        response = Response(message + "\n", content_type="text/plain", charset="utf-8")
    else:
        response = json_response({"message": message})
    if names_json or status == 401:
        # devpi-client prints "<code> <reason>: <message>"; a standard reason (as devpi-server
        # sends) keeps the message from being shown twice. A 401 is devpi-server's challenge,
        # "401 Unauthorized", which ``devpi upload`` prints after FAIL.
        response.status_int = status
    else:
        response.status = f"{status} {_reason(message)}"
    if status == 401 and challenge:
        response.headers["WWW-Authenticate"] = 'Basic realm="pypi"'
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@exception_view_config(DevpiError)
def devpi_error(exc: DevpiError, request: Request) -> Response:
    """Errors raised by core and plugins."""
    if exc.status >= 500:
        log.warning("%s %s: %s", request.method, logged_path(request.environ), exc.message)
    challenge = not isinstance(exc, Unauthorized) or exc.challenge
    return error_response(
        request, exc.status, exc.message, retry_after=exc.retry_after, challenge=challenge
    )


@notfound_view_config()
def not_found(request: Request) -> Response:
    """No route matched (or no view for this method)."""
    return error_response(request, 404, f"not found: {request.path}")


@exception_view_config(HTTPException)
def http_exception(exc: HTTPException, request: Request) -> Response:
    """Pyramid's own HTTP errors (method not allowed, ...)."""
    if exc.code is not None and exc.code < 400:
        return exc
    return error_response(request, exc.code or 500, exc.detail or exc.title)


@exception_view_config(Exception)
def unexpected(exc: Exception, request: Request) -> Response:
    """A bug: logged with the request id; the client sees only the id."""
    log.error(
        "unhandled error in %s %s", request.method, logged_path(request.environ), exc_info=exc
    )
    return error_response(request, 500, f"internal server error (request id {request_id.get()})")
