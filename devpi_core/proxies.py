"""Reverse proxies: whose ``X-Outside-Url`` and ``X-Real-IP`` headers the server believes.

A proxy in front of devpi-core tells it the URL clients use with ``X-Outside-Url`` and the
client's address with ``X-Real-IP`` (the nginx file in ``contrib/`` sets both, overwriting what
a client sent). The first shapes absolute links on cacheable pages, the second is the address
failed logins are counted by, so both are only believed from the addresses in
``server.trusted_proxies`` (loopback by default, where that proxy runs); from anyone else they
are ignored as if they were not there. X-Forwarded-* headers are never believed: waitress drops
them before the app sees the request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devpi_core import services

if TYPE_CHECKING:
    from pyramid.request import Request
    from pyramid.response import Response

OUTSIDE_URL_HEADER = "X-Outside-Url"
_KEY = "devpi_core.outside_url"


def outside_url_header(request: Request) -> str | None:
    """The ``X-Outside-Url`` a trusted proxy sent (an http or https URL), else None.

    When it is used, the response gets ``Vary: X-Outside-Url``, so no HTTP cache hands a page
    built for one value to a request with another.
    """
    environ = request.environ
    value: str | None = environ.get("HTTP_X_OUTSIDE_URL")
    if not value:
        return None
    if _KEY in environ:
        believed: str | None = environ[_KEY]
        return believed
    trusted = services.settings(request).server.trusted_proxies
    if not value.startswith(("http://", "https://")) or environ.get("REMOTE_ADDR") not in trusted:
        environ[_KEY] = None
        return None
    environ[_KEY] = value
    request.add_response_callback(_vary_on_outside_url)
    return value


def _vary_on_outside_url(request: Request, response: Response) -> None:
    # on the headers themselves: webob's ``vary`` property parses and rebuilds (7 us)
    headers = response.headerlist
    for position, (name, value) in enumerate(headers):
        if name.lower() == "vary":
            if OUTSIDE_URL_HEADER.lower() not in value.lower():
                headers[position] = (name, f"{value}, {OUTSIDE_URL_HEADER}")
            return
    headers.append(("Vary", OUTSIDE_URL_HEADER))
