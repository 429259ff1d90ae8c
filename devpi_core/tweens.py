"""Tweens: request id, devpi headers and the access log; a sanity check on URLs and forms."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote

from devpi_core import __version__, services
from devpi_core.errors import BadRequest
from devpi_core.logsetup import request_id

if TYPE_CHECKING:
    from pyramid.registry import Registry
    from pyramid.request import Request
    from pyramid.response import Response

access_log = logging.getLogger("devpi_core.access")
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

    def tween(request: Request) -> Response:
        given = request.headers.get("X-Request-ID", "")
        rid = given if _GOOD_ID.match(given) else uuid.uuid4().hex[:16]
        token = request_id.set(rid)
        start = time.perf_counter()
        try:
            response = handler(request)
            headers = response.headerlist
            headers.extend(fixed)
            headers.append(("X-DEVPI-SERIAL", str(store.current_serial())))
            headers.append(("X-Request-ID", rid))
            if access_log.isEnabledFor(logging.INFO):
                _log_access(request, response, time.perf_counter() - start)
            return response
        finally:
            request_id.reset(token)

    return tween


def _log_access(request: Request, response: Response, seconds: float) -> None:
    # Only an identity that the request already computed: never authenticate just to log.
    found = request.__dict__.get("identity")
    user = found.username if found is not None else "-"
    access_log.info(
        '%s %s %s %s %.1fms %s',
        request.method,
        request.path_qs if len(request.path_qs) < 500 else request.path_qs[:500] + "...",
        response.status_code,
        response.content_length if response.content_length is not None else "-",
        seconds * 1000,
        user,
    )


def sanity_tween_factory(handler: Handler, registry: Registry) -> Handler:
    """Under the exception view: undecodable or traversing URLs become a 400."""

    def tween(request: Request) -> Response:
        try:
            path = request.path_info
            request.GET  # noqa: B018 - decoding the query is the check
        except UnicodeDecodeError:
            raise BadRequest("the URL is not valid UTF-8") from None
        raw = request.environ.get("PATH_INFO", "")
        if "\x00" in path or "\x00" in raw:
            raise BadRequest("NUL byte in URL")
        for segment in unquote(path).split("/"):
            if segment in (".", ".."):
                raise BadRequest("'.' and '..' are not allowed in URLs")
        return handler(request)

    return tween
