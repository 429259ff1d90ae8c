"""Cross-site request forgery: another site's page cannot make a browser change anything here.

A browser that once logged in with Basic auth sends those credentials with every request to
this server, including a form another site's page submits. Every request that can change state
(anything but GET, HEAD and OPTIONS) whose ``Origin`` (or, without one, ``Referer``) names
another site than this server is refused with 403; ``Origin: null`` (sandboxed pages, some
redirects, ``Referrer-Policy: no-referrer``) counts as another site.

"This server" is the URL the request came in on, the ``outside_url`` setting and a trusted
proxy's ``X-Outside-Url``, compared by scheme, host and port. Tools (pip, twine, uv,
devpi-client, curl) send neither header and are not affected; nor is the web UI, which only
reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devpi_core import services
from devpi_core.errors import Forbidden
from devpi_core.outbound import origin
from devpi_core.proxies import outside_url_header

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyramid.registry import Registry
    from pyramid.request import Request
    from pyramid.response import Response

    Handler = Callable[[Request], Response]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values of requests a page on another origin started (browsers since 2020)
FOREIGN_FETCH = ("cross-site", "same-site")
Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin | None:
    """``(scheme, host, port)`` of an http(s) URL or ``Origin`` value; None for anything else
    (``null``, other schemes, garbage)."""
    try:
        found = origin(url.strip())
    except ValueError:  # a port that is no number
        return None
    return found if found[0] in ("http", "https") and found[1] else None


def own_origins(request: Request) -> set[Origin]:
    """The origins this server is reached at, as far as this request can tell."""
    candidates = [
        request.host_url,
        services.settings(request).server.outside_url,
        outside_url_header(request),
    ]
    return {found for url in candidates if url and (found := origin_of(url)) is not None}


def check_request(request: Request) -> None:
    """Raise 403 if ``request`` changes state and a page on another site sent it."""
    if request.method in SAFE_METHODS:
        return
    environ = request.environ
    origin = environ.get("HTTP_ORIGIN")
    header = "Origin"
    if not origin:
        origin, header = environ.get("HTTP_REFERER"), "Referer"
    if not origin:
        fetch_site = environ.get("HTTP_SEC_FETCH_SITE", "")
        if fetch_site in FOREIGN_FETCH:
            raise Forbidden(f"cross-site request refused (Sec-Fetch-Site: {fetch_site})")
        return  # a tool, not a browser
    found = origin_of(origin)
    if found is None or found not in own_origins(request):
        shown = origin if len(origin) <= 100 else origin[:100] + "..."
        raise Forbidden(
            f"cross-site request refused: {header} {shown!r} is not this server; "
            "requests that change anything must come from tools or this server's own pages"
        )


def csrf_tween_factory(handler: Handler, registry: Registry) -> Handler:
    """Under the exception view: cross-site state-changing requests become a 403."""

    def tween(request: Request) -> Response:
        check_request(request)
        return handler(request)

    return tween
