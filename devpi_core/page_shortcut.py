"""The warm-page shortcut: cached simple pages of public indexes answered before Pyramid.

Installers ask for the same pages over and over. For a plain ``GET`` of a cached page of a
public index (no query, no conditional request, relative links, a body held in memory) the
whole answer is a few dictionary lookups, and Pyramid's request object, tweens and webob's
response cost about as much again as waitress itself. This execution policy (Pyramid's hook
around each request) answers those requests with the same bytes and headers the full path
would send (``views.simple`` and the request tween), and hands everything else to Pyramid.
Stored files of public indexes take the same way (:mod:`devpi_core.file_shortcut`).

It stands aside entirely when anything could answer differently: a documentation origin
(``server.docs_url``), or tweens or request/response subscribers besides core's own; pages
also when links are made absolute (``outside_url``, ``absolute_urls``, a proxy's
``X-Outside-Url``), which files do not depend on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyramid.interfaces import ITweens
from pyramid.router import default_execution_policy

from devpi_core import services
from devpi_core.file_shortcut import FileAnswer, FileShortcut
from devpi_core.metrics import Metrics
from devpi_core.model.names import normalize
from devpi_core.simple_pages import SimplePages
from devpi_core.tweens import DevpiHeaders, access_log, log_access
from devpi_core.views.simple import LARGE_BODY, PAGE_PATH, negotiate_accept

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pyramid.registry import Registry
    from pyramid.router import Router

    from devpi_core.simple_pages import Served

StartResponse = Callable[..., Any]
PAGE_ROUTE = "simple_project"
CORE_TWEENS = frozenset(
    {
        "devpi_core.tweens.request_tween_factory",
        "pyramid.tweens.excview_tween_factory",
        "devpi_core.tweens.fresh_read_tween_factory",  # acts on 404s only: a page is a 200
        "devpi_core.csrf.csrf_tween_factory",
        "devpi_core.tweens.sanity_tween_factory",
        "devpi_core.views.simple.cached_page_tween_factory",
    }
)
_ASIDE = ("QUERY_STRING", "HTTP_IF_NONE_MATCH", "HTTP_X_OUTSIDE_URL", "HTTP_X_DEVPI_ABSOLUTE_URLS")


class _Answer:
    """A ready WSGI answer (what Pyramid calls a response: a WSGI application)."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: list[tuple[str, str]], body: bytes) -> None:
        self.headers = headers
        self.body = body

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", self.headers)
        return (self.body,)


def execution_policy(registry: Registry) -> PageShortcut | None:
    """The shortcut for ``registry``'s app, or None where it must stand aside altogether."""
    server = services.settings(registry).server
    tweens = registry.queryUtility(ITweens)
    names = {name for name, _factory in tweens.implicit()} if tweens is not None else set()
    if server.docs_url or names - CORE_TWEENS or (tweens is not None and tweens.explicit):
        return None
    # absolute links change pages, never files
    return PageShortcut(registry, pages=not (server.outside_url or server.absolute_urls))


class PageShortcut:
    """A Pyramid execution policy: the shortcut, else Pyramid's own handling."""

    def __init__(self, registry: Registry, *, pages: bool = True) -> None:
        self.registry = registry
        self.answers_pages = pages
        self.pages = services.lookup(registry, SimplePages)
        self.files = FileShortcut(registry)
        self.devpi_headers = DevpiHeaders(registry)
        self.metrics = services.lookup(registry, Metrics)
        self.max_age = services.settings(registry).server.simple_max_age
        self.cache_control = f"max-age={self.max_age}"

    def __call__(self, environ: dict[str, Any], router: Router) -> Any:
        if self.registry.has_listeners:  # request/response subscribers expect Pyramid's objects
            return default_execution_policy(environ, router)
        start = time.perf_counter()
        try:
            found = self.answer(environ) or self.file_answer(environ)
        except Exception:  # noqa: BLE001 - the full path answers it, errors included
            found = None
        if found is None:
            return default_execution_policy(environ, router)
        route, answer, length = found
        seconds = time.perf_counter() - start
        self.metrics.observe_request(route, "GET", 200, seconds)  # as the full path counts
        if access_log.isEnabledFor(logging.INFO):
            log_access(environ, 200, length, seconds)
        return answer

    def file_answer(self, environ: dict[str, Any]) -> tuple[str, FileAnswer, int] | None:
        """A stored file of a public index (:mod:`devpi_core.file_shortcut`), else None."""
        found = self.files.answer(environ)
        if found is None:
            return None
        route, serial, answer = found
        self.devpi_headers.add(answer.headers, self.devpi_headers.request_id(environ), serial)
        return route, answer, answer.size

    def _cache_control(self, until_change: float | None) -> str:
        """``max-age`` as the full path sends it: capped by a serve policy's next change."""
        if until_change is None:
            return self.cache_control
        return f"max-age={max(0, min(self.max_age, int(until_change)))}"

    def answer(self, environ: dict[str, Any]) -> tuple[str, _Answer | FileAnswer, int] | None:
        """The answer to a plain GET of a warm public page, else None."""
        if (
            not self.answers_pages
            or environ.get("REQUEST_METHOD") != "GET"
            or any(environ.get(k) for k in _ASIDE)
        ):
            return None
        path = environ.get("PATH_INFO", "")
        match = PAGE_PATH.match(path)
        # '%' and dot segments: the full path answers them (a 400, or what they decode to)
        if match is None or "%" in path or "/." in path:
            return None
        user, index, project = match.groups()
        if normalize(project) != project:
            return None
        fmt, content_type = negotiate_accept(environ.get("HTTP_ACCEPT"))
        served: Served | None = self.pages.cached_public_page(
            f"{user}/{index}", project, fmt=fmt, prefix="../" * (path.count("/") - 1)
        )
        if served is None or served.warnings:
            return None
        page = served.page
        body = page.body
        headers = [
            ("Content-Type", content_type),
            ("ETag", page.etag),
            ("Vary", "Accept, Accept-Encoding"),
            ("Cache-Control", self._cache_control(served.max_age)),
        ]
        if page.gzipped is not None and "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = page.gzipped
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(body.size)))
        rid = self.devpi_headers.request_id(environ)
        self.devpi_headers.add(headers, rid, served.serial, sniffed=False)
        if body.data is None or body.size > LARGE_BODY:
            # as the full path sends it: from the cached bytes or the page's own temp file
            return PAGE_ROUTE, FileAnswer(headers, body.reader(), body.size), body.size
        return PAGE_ROUTE, _Answer(headers, body.data), body.size
