"""The page shell (header, breadcrumbs, search box, footer) and the HTML response."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from pyramid.response import Response

from devpi_core import __version__, services
from devpi_core.web import docs_root, identity, server_url
from devpi_core_webui.markup import Markup, el, join, link, path, void

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyramid.request import Request

    from devpi_core.records import Identity

# No script runs on these pages, so the policy forbids scripts outright: even an escaping bug
# could not execute anything.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
STATIC_ROUTE = "webui_static"
STYLE = "style.css"


@dataclass(frozen=True)
class Static:
    """The stylesheet, read once at start-up; its digest goes into its URL for caching."""

    css: bytes
    digest: str

    @classmethod
    def load(cls) -> Static:
        """Read the packaged stylesheet."""
        css = resources.files("devpi_core_webui").joinpath("static", STYLE).read_bytes()
        return cls(css, hashlib.sha256(css).hexdigest()[:16])


@dataclass(frozen=True)
class Site:
    """What every page needs from the request: the root URL and who is looking."""

    root: str
    who: Identity | None
    css_href: str
    # documentation may live on its own origin (server.docs_url)
    docs_root: str = ""

    @classmethod
    def of(cls, request: Request, *, with_identity: bool = True) -> Site:
        """The site as ``request`` sees it (identity left out on error pages)."""
        root = server_url(request)
        digest = services.lookup(request.registry, Static).digest
        return cls(root, identity(request) if with_identity else None,
                   f"{root}/+webui/{digest}/{STYLE}", docs_root(request))

    def url(self, *segments: str) -> str:
        """The absolute URL of a path made of raw segments."""
        return self.root + path(*segments)

    def search_url(self, query: str, page: int = 1) -> str:
        """The search page for ``query`` (and a page of its results after the first)."""
        params = {"q": query, **({"page": str(page)} if page > 1 else {})}
        return self.url("+search") + "?" + urlencode(params)

    def docs_url(self, *segments: str) -> str:
        """The absolute URL of a documentation path made of raw segments."""
        return (self.docs_root or self.root) + path(*segments)


def crumbs(site: Site, *parts: tuple[str, Sequence[str]]) -> Markup:
    """Breadcrumbs: the server, then ``(label, path segments)`` pairs; the last is the page."""
    items = [el("li", link(site.url(""), "devpi"))]
    for n, (label, segments) in enumerate(parts):
        last = n == len(parts) - 1
        items.append(el("li", label if last else link(site.url(*segments), label),
                        aria_current="page" if last else None))
    return el("nav", el("ol", *items), aria_label="breadcrumbs", class_="crumbs")


def _header(site: Site, nav: Markup, query: str) -> Markup:
    search = el(
        "form",
        void("input", type="search", name="q", value=query, placeholder="Search projects",
             aria_label="Search projects", maxlength="200"),
        el("button", "Search", type="submit"),
        action=site.url("+search"), method="get", role="search", class_="search",
    )
    who = site.who.username if site.who else "anonymous"
    return el("header", link(site.url(""), "devpi-core", class_="brand"), nav, search,
              el("span", who, class_="who", title="logged in as" if site.who else None))


def render(
    site: Site,
    title: str,
    body: Markup,
    *,
    nav: Markup | None = None,
    status: int = 200,
    query: str = "",
) -> Response:
    """A whole HTML page as a response."""
    head = el(
        "head",
        void("meta", charset="utf-8"),
        void("meta", name="viewport", content="width=device-width, initial-scale=1"),
        el("title", f"{title} - devpi-core"),
        void("link", rel="stylesheet", href=site.css_href),
        void("link", rel="icon", href="data:,"),
    )
    footer = el("footer", f"devpi-core {__version__} · ", link(site.url("+status"), "status"))
    page = join((
        Markup("<!DOCTYPE html>\n"),
        el("html", head, el("body", _header(site, nav or crumbs(site), query),
                               el("main", el("h1", title), body), footer), lang="en"),
    ))
    return html_response(page, status=status)


def html_response(page: str, *, status: int = 200) -> Response:
    """``page`` as ``text/html`` with headers that keep it from being cached for JSON clients."""
    response = Response(page.encode("utf-8"), status=status, content_type="text/html",
                        charset="utf-8")
    response.headers["Vary"] = "Accept, User-Agent"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-cache"
    return response
