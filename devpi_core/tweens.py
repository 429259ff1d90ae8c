"""Tweens: request id, devpi headers and the access log; a sanity check on URLs and forms."""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote

from pyramid.httpexceptions import HTTPNotFound

from devpi_core import __version__, services
from devpi_core.errors import BadRequest, NotFound, ServiceUnavailable
from devpi_core.logsetup import logged_path, request_id
from devpi_core.metrics import ROUTE_KEY, Metrics
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


class DevpiHeaders:
    """The headers every response gets (devpi's API and node headers, the serial, a request
    id, ``nosniff``), for the request tween and the cached-page shortcut alike."""

    def __init__(self, registry: Registry) -> None:
        self.store = services.metadata_store(registry)
        node = services.serverdir(registry).uuid
        self.fixed = [
            ("X-DEVPI-API-VERSION", "2"),
            ("X-DEVPI-SERVER-VERSION", __version__),
            ("X-DEVPI-UUID", node),
            ("X-DEVPI-MASTER-UUID", node),
            ("X-DEVPI-PRIMARY-UUID", node),
        ]
        # unique across processes and restarts, cheap per request
        self.prefix = secrets.token_hex(4) + "-"
        self.counter = itertools.count(1)

    def request_id(self, environ: Mapping[str, object]) -> str:
        """The client's ``X-Request-ID`` if it is sane, else a new one."""
        given = environ.get("HTTP_X_REQUEST_ID", "")
        if isinstance(given, str) and given and _GOOD_ID.match(given):
            return given
        return f"{self.prefix}{next(self.counter):x}"

    def add(
        self, headers: list[tuple[str, str]], rid: str, serial: int | None, *, sniffed: bool = True
    ) -> None:
        """Append the headers to a response's ``headers`` (``sniffed=False``: they are known
        to hold no ``X-Content-Type-Options``)."""
        headers.extend(self.fixed)
        if serial is None:
            try:
                serial = self.store.current_serial()
            except ServiceUnavailable:  # the store is down: this answer (a 503) goes without
                serial = None
        if serial is not None:
            headers.append(("X-DEVPI-SERIAL", str(serial)))
        headers.append(("X-Request-ID", rid))
        if not sniffed or not any(n.lower() == "x-content-type-options" for n, _v in headers):
            headers.append(("X-Content-Type-Options", "nosniff"))  # see content_policy


def request_tween_factory(handler: Handler, registry: Registry) -> Handler:
    """Over the exception view: every response, errors included, gets these headers."""
    devpi_headers = DevpiHeaders(registry)
    metrics = services.lookup(registry, Metrics)

    def tween(request: Request) -> Response:
        environ = request.environ
        rid = devpi_headers.request_id(environ)
        token = request_id.set(rid)
        start = time.perf_counter()
        try:
            response = handler(request)
            devpi_headers.add(response.headerlist, rid, environ.get(SERIAL_KEY))
            seconds = time.perf_counter() - start
            metrics.observe_request(_route(request), request.method, response.status_code, seconds)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(request, response, seconds)
            return response
        finally:
            request_id.reset(token)

    return tween


def _route(request: Request) -> str:
    route = getattr(request, "matched_route", None)
    if route is not None:
        return str(route.name)
    return str(request.environ.get(ROUTE_KEY, "unmatched"))


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
    log_access(request.environ, response.status_code, response.content_length, seconds)


def log_access(
    environ: Mapping[str, object], status: int, length: int | None, seconds: float
) -> None:
    """One access log line (the caller checked that the access log is on)."""
    # Only an identity that the request already computed: never authenticate just to log.
    found = environ.get(IDENTITY_KEY)
    user = getattr(found, "username", "-") if found is not None else "-"
    access_log.info(
        "%s %s %s %s %.1fms %s",
        environ.get("REQUEST_METHOD"),
        logged_path(environ),
        status,
        length if length is not None else "-",
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
