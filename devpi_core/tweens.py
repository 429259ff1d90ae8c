"""Tweens: request id, devpi headers and the access log; a sanity check on URLs and forms."""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote

from pyramid.httpexceptions import HTTPNotFound

from devpi_core import __version__, services
from devpi_core.errors import BadRequest, NotFound
from devpi_core.logsetup import logged_path, request_id
from devpi_core.security import IDENTITY_KEY

if TYPE_CHECKING:
    from pyramid.registry import Registry
    from pyramid.request import Request
    from pyramid.response import Response

access_log = logging.getLogger("devpi_core.access")
# A read-only view that already read the serial leaves it here for the X-DEVPI-SERIAL header.
SERIAL_KEY = "devpi_core.serial"
_GOOD_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
Handler = Callable[["Request"], "Response"]


def request_tween_factory(handler: Handler, registry: Registry) -> Handler:
    """Over the exception view: every response, errors included, gets these headers."""
    store = services.metadata_store(registry)
    node = services.serverdir(registry).uuid
    fixed = [
        ("X-DEVPI-API-VERSION", "2"),
        ("X-DEVPI-SERVER-VERSION", __version__),
        ("X-DEVPI-UUID", node),
        ("X-DEVPI-MASTER-UUID", node),
        ("X-DEVPI-PRIMARY-UUID", node),
    ]

    # unique across processes and restarts, cheap per request
    prefix = secrets.token_hex(4) + "-"
    counter = itertools.count(1)

    def tween(request: Request) -> Response:
        given = request.environ.get("HTTP_X_REQUEST_ID", "")
        rid = given if given and _GOOD_ID.match(given) else f"{prefix}{next(counter):x}"
        token = request_id.set(rid)
        start = time.perf_counter()
        try:
            response = handler(request)
            headers = response.headerlist
            headers.extend(fixed)
            serial = request.environ.get(SERIAL_KEY)
            headers.append(
                ("X-DEVPI-SERIAL", str(store.current_serial() if serial is None else serial))
            )
            headers.append(("X-Request-ID", rid))
            if "X-Content-Type-Options" not in response.headers:
                headers.append(("X-Content-Type-Options", "nosniff"))  # see content_policy
            if access_log.isEnabledFor(logging.INFO):
                _log_access(request, response, time.perf_counter() - start)
            return response
        finally:
            request_id.reset(token)

    return tween


def fresh_read_tween_factory(handler: Handler, registry: Registry) -> Handler:
    """Reads never lie across nodes: a 404 is answered only from the store's latest state.

    A node learns other nodes' commits with a short delay (``current_serial()`` may lag), and
    caches keyed by serial (index records, pages) hold what it saw then. So when a GET or HEAD
    finds nothing, the serial is re-read from the store (a read transaction always sees every
    commit); if it is newer than anything this node knew during the request (its own commits,
    a mirror's cached answer, included), the request runs once more on the new state. An
    absent thing costs one extra read of the serial; nothing else changes.
    """
    store = services.metadata_store(registry)

    def moved(seen: int) -> bool:
        known = max(seen, store.current_serial())
        with store.read() as tx:
            return tx.serial > known

    def tween(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return handler(request)
        seen = store.current_serial()
        try:
            response = handler(request)
        except (NotFound, HTTPNotFound):
            if not moved(seen):
                raise
        else:
            if response.status_code != 404 or not moved(seen):
                return response
        request.environ.pop(SERIAL_KEY, None)
        return handler(request)

    return tween


def _log_access(request: Request, response: Response, seconds: float) -> None:
    # Only an identity that the request already computed: never authenticate just to log.
    found = request.environ.get(IDENTITY_KEY)
    user = found.username if found is not None else "-"
    access_log.info(
        "%s %s %s %s %.1fms %s",
        request.method,
        logged_path(request.environ),
        response.status_code,
        response.content_length if response.content_length is not None else "-",
        seconds * 1000,
        user,
    )


def check_path(raw: str) -> None:
    """Raise a 400 for a WSGI ``PATH_INFO`` that is not UTF-8, holds NUL or ``.``/``..``."""
    try:
        path = raw.encode("latin-1").decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise BadRequest("the URL is not valid UTF-8") from None
    if "%" in path:
        path = unquote(path)
    if "\x00" in path:
        raise BadRequest("NUL byte in URL")
    if "/." in path and any(segment in (".", "..") for segment in path.split("/")):
        raise BadRequest("'.' and '..' are not allowed in URLs")


def sanity_tween_factory(handler: Handler, registry: Registry) -> Handler:
    """Under the exception view: undecodable or traversing URLs become a 400."""

    def tween(request: Request) -> Response:
        check_path(request.environ.get("PATH_INFO", ""))
        if request.environ.get("QUERY_STRING"):
            try:
                request.GET  # noqa: B018 - decoding the query is the check
            except UnicodeDecodeError:
                raise BadRequest("the query string is not valid UTF-8") from None
        return handler(request)

    return tween
