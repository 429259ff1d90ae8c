"""``/+search?q=``: project names across the indexes the visitor may read.

No search engine: names are matched by substring (after PEP 503 normalization) on every
readable stage, which is a few string comparisons per project. A mirror's upstream list is
never scanned (it can hold hundreds of thousands of names); mirrors answer only for an exact
name they have cached. Results and the summaries looked up for them are bounded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devpi_core import services
from devpi_core.errors import DevpiError
from devpi_core.model.names import normalize, version_sort_key
from devpi_core_webui.layout import Site, crumbs, render
from devpi_core_webui.listing import MAX_QUERY, readable_indexes
from devpi_core_webui.markup import el, join, link, table

if TYPE_CHECKING:
    from pyramid.request import Request
    from pyramid.response import Response

    from devpi_core.records import IndexRecord

log = logging.getLogger(__name__)
MAX_RESULTS = 200
MAX_DETAILS = 50


@dataclass
class Hit:
    """A project found on an index; ``version`` and ``summary`` only for the first hits."""

    index: IndexRecord
    name: str
    rank: int
    version: str = ""
    summary: str = ""


def _rank(needle: str, name: str) -> int:
    if name == needle:
        return 0
    return 1 if name.startswith(needle) else 2


def _matches(request: Request, record: IndexRecord, needle: str) -> list[Hit]:
    indexes = services.indexes(request)
    try:
        itype = indexes.type_of(record)
        if indexes.is_mirror(record):
            return [Hit(record, needle, 0)] if itype.has_project(needle) else []
        names = itype.project_names()
        return [Hit(record, name, _rank(needle, name)) for name in names if needle in name]
    except DevpiError as exc:  # an index whose type plugin is disabled, an upstream failure
        log.info("search: skipping %s: %s", record.fullname, exc.message)
        return []


def find(request: Request, query: str) -> tuple[list[Hit], bool]:
    """Hits for ``query`` (best first) and whether more were found than are returned."""
    needle = normalize(query.strip()).strip("-")
    if not needle:
        return [], False
    hits: list[Hit] = []
    for user in services.users(request).names():
        for record in readable_indexes(request, user):
            hits.extend(_matches(request, record, needle))
    hits.sort(key=lambda h: (h.rank, h.name, h.index.fullname))
    for hit in hits[:MAX_DETAILS]:
        _add_details(request, hit)
    return hits[:MAX_RESULTS], len(hits) > MAX_RESULTS


def _add_details(request: Request, hit: Hit) -> None:
    indexes = services.indexes(request)
    if indexes.is_mirror(hit.index):
        return  # a mirror's page says little, and reading it may mean asking the upstream
    versions = indexes.type_of(hit.index).versions(hit.name)
    if versions:
        current = [v for v, verdata in versions.items() if verdata.get("yanked", False) is False]
        hit.version = max(current or versions, key=version_sort_key)
        summary = versions[hit.version].get("summary")
        hit.summary = summary if isinstance(summary, str) else ""


def search_page(request: Request) -> Response:
    """The search form and its results."""
    site = Site.of(request)
    query = request.GET.get("q", "")[:MAX_QUERY]
    hits, truncated = find(request, query)
    rows = [(link(site.url(h.index.user, h.index.name, h.name), h.name),
             link(site.url(h.index.user, h.index.name), h.index.fullname), h.version, h.summary)
            for h in hits]
    if not query.strip():
        result = el("p", "Type part of a project name into the search box.", class_="empty")
    elif not rows:
        result = el("p", "No project matches ", el("q", query), ".", class_="empty")
    else:
        result = table(("Project", "Index", "Latest", "Summary"), rows, class_="results")
    parts = [result]
    if truncated:
        parts.append(el("p", f"Only the first {MAX_RESULTS} matches are shown.", class_="note"))
    parts.append(el("p", "Mirrors are searched for exact names only.", class_="note"))
    nav = crumbs(site, ("search", ("+search",)))
    return render(site, "Search", join(parts), nav=nav, query=query)
