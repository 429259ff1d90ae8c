"""Response headers that keep user-supplied content from acting on the server's origin.

Release files, tox results and documentation come from any user who may upload. The web UI's
login is HTTP Basic, so a browser holds credentials for the whole origin: a file that rendered
as a page here would run its script with the reader's rights over the API. So:

- files (``+f``, ``+e``, ``.metadata``, first downloads from a mirror) get a type from an
  allowlist (never one a browser renders as an active page), ``nosniff`` and a CSP sandbox;
- documentation renders (HTML, CSS, images, fonts, links) in a CSP sandbox without scripts,
  which also makes it an opaque origin that reads nothing with the reader's credentials;
- with ``server.docs_url`` documentation lives on its own origin, which serves nothing else
  (:func:`docs_origin_tween_factory`), and may run script there (``docs_allow_scripts``).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from pyramid.httpexceptions import HTTPFound
from pyramid.interfaces import IRoutesMapper

from devpi_core import services
from devpi_core.errors import NotFound
from devpi_core.outbound import origin

if TYPE_CHECKING:
    from pyramid.registry import Registry
    from pyramid.request import Request
    from pyramid.response import Response

NOSNIFF = "nosniff"
# Release files are downloads, never documents: no subresource, no script, no plugin, even if
# a browser is made to render one.
FILE_POLICY = "default-src 'none'; sandbox"
# What a documentation page may still do without script: open links (also in a new tab, which
# then leaves the sandbox) and navigate the top window when the reader clicks.
# allow-same-origin never goes together with allow-scripts on the API's origin: the two let a
# page lift its own sandbox. allow-forms stays off: a form could still post to the API.
DOCS_SANDBOX = (
    "sandbox allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation"
)
# On a separate docs origin that serves nothing but docs (``docs_allow_scripts``): themes and
# search need script and local storage.
DOCS_SCRIPTS_SANDBOX = (
    f"{DOCS_SANDBOX} allow-scripts allow-same-origin allow-forms allow-modals allow-downloads"
)
# A sandboxed page is an opaque origin, and fonts are always fetched with CORS: from origin
# "null" they load only if the response allows any origin. Fonts are no secret, and the
# request carries no credentials, so a private index's fonts still need a login to load.
FONT_TYPES = frozenset(
    {"font/woff", "font/woff2", "font/ttf", "font/otf", "font/collection",
     "application/font-woff", "application/vnd.ms-fontobject", "application/x-font-ttf"}
)
# The content types a release file may be served with; anything else is octet-stream.
FILE_TYPES = frozenset(
    {
        "application/octet-stream",
        "application/zip",
        "application/x-tar",
        "application/gzip",
        "application/x-bzip2",
        "application/x-xz",
    }
)
DOC_ROUTE = "doc"
Handler = Callable[["Request"], "Response"]


def file_content_type(filename: str) -> str:
    """The content type of a release file: allowlisted, whatever its name suggests.

    A name like ``x-3.0.html.bz2`` guesses ``text/html``; upstream types are not trusted either.
    """
    if filename.endswith(".whl"):
        return "application/zip"
    if filename.endswith(".metadata"):
        return "text/plain"  # PEP 658 metadata; with nosniff a browser shows it as text
    guessed, _encoding = mimetypes.guess_type(filename, strict=False)
    return guessed if guessed in FILE_TYPES else "application/octet-stream"


def file_headers() -> dict[str, str]:
    """Headers for every response that carries (or describes) a stored file."""
    return {"X-Content-Type-Options": NOSNIFF, "Content-Security-Policy": FILE_POLICY}


def on_origin(request: Request, url: str) -> bool:
    """Whether ``request`` came in for the host (and port) of ``url``.

    Judged by the ``Host`` header: behind a proxy it must pass that on. A ``Host`` without a
    port is taken to be on the default port of ``url``'s scheme (TLS usually ends at a proxy).
    """
    wanted = origin(url)
    try:
        return origin(f"{wanted[0]}://{request.host}") == wanted
    except ValueError:  # a Host whose port is no number
        return False


def docs_origin_tween_factory(handler: Handler, registry: Registry) -> Handler:
    """With ``server.docs_url``: docs only there, and nothing but docs there.

    Added only when ``docs_url`` is set. On the docs origin every other route, cached simple
    pages included, is a 404, so a script in the docs cannot use the API with credentials a
    reader gave that origin; elsewhere a documentation URL redirects to the docs origin.
    """
    docs_url = services.settings(registry).server.docs_url
    assert docs_url is not None
    netloc = urlsplit(docs_url).netloc
    base = docs_url.rstrip("/")
    mapper = registry.getUtility(IRoutesMapper)

    def tween(request: Request) -> Response:
        route = mapper(request)["route"]
        is_doc = route is not None and route.name == DOC_ROUTE
        if on_origin(request, docs_url):
            if not is_doc or request.method not in ("GET", "HEAD"):
                raise NotFound(f"{netloc} serves only documentation")
        elif is_doc:
            query = f"?{request.query_string}" if request.query_string else ""
            path = quote(request.path_info, safe="/+:@!$&'()*,;=~")
            return HTTPFound(location=f"{base}{path}{query}")
        return handler(request)

    return tween
