"""Who gets HTML: browsers only, never installers, devpi-client or a bare curl.

The web UI shares URLs with core's JSON API and with the installer routes, so the decision is
strict. A request is a browser's when its User-Agent is not an installer's, its Accept header
names ``text/html`` (or XHTML) explicitly, and among HTML, devpi's JSON and the PEP 691 types
HTML is the best offer. A missing Accept or ``*/*`` (curl) is not enough; pip's
``text/html;q=0.01`` loses to the PEP 691 JSON it prefers.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from devpi_core.web import best_offer, is_installer

if TYPE_CHECKING:
    from pyramid.request import Request

HTML_TYPES = ("text/html", "application/xhtml+xml")
OFFERS = (
    *HTML_TYPES,
    "application/json",
    "application/vnd.pypi.simple.v1+json",
    "application/vnd.pypi.simple.latest+json",
    "application/vnd.pypi.simple.v1+html",
    "application/vnd.pypi.simple.latest+html",
)


@functools.lru_cache(maxsize=512)  # called by every view lookup with the predicate: 0.1 µs, not 1
def accept_prefers_html(header: str) -> bool:
    """Whether an Accept header names HTML explicitly and ranks it above every other offer."""
    if not any(kind in header for kind in HTML_TYPES):
        return False
    return best_offer(header, OFFERS) in HTML_TYPES


def is_browser(request: Request) -> bool:
    """Whether ``request`` should get the web UI's HTML (see the module docstring)."""
    if is_installer(request):
        return False
    return accept_prefers_html(request.headers.get("Accept") or "")


class BrowserPredicate:
    """The view predicate ``browser=True``: the view answers browsers only.

    A view whose predicate does not match is skipped, so core's view for the same route
    answers exactly as it does without this plugin.
    """

    def __init__(self, value: bool, config: Any) -> None:
        self.value = bool(value)

    def text(self) -> str:
        """How Pyramid names the predicate in conflicts and debug output."""
        return f"browser = {self.value}"

    phash = text

    def __call__(self, context: Any, request: Request) -> bool:
        """Whether the request is (or, for ``False``, is not) a browser's."""
        return is_browser(request) == self.value
