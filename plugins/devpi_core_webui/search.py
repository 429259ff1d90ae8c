"""``/+search?q=&page=``: full-text search over the indexes the visitor may read.

Stage projects are found through their search documents (:mod:`devpi_core.search`), which the
metadata store indexes (FTS5 in the SQLite store) and the stage rewrites with every change, so
results never lag behind uploads. A query matches project names (exact, prefix, substring,
after PEP 503 normalisation) and the words of titles, summaries, keywords and descriptions;
name matches come first. Mirrors answer from their upstream project list, by name. Results
are paged; matched words are highlighted with ``<mark>``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from devpi_core import search, services
from devpi_core.errors import DevpiError
from devpi_core.model.names import version_sort_key
from devpi_core.search import SearchHit, SearchQuery
from devpi_core.web import held_versions
from devpi_core_webui.layout import Site, crumbs, render
from devpi_core_webui.listing import MAX_QUERY, readable_indexes
from devpi_core_webui.markup import Markup, el, esc, join, link

if TYPE_CHECKING:
    from pyramid.request import Request
    from pyramid.response import Response

    from devpi_core.records import IndexRecord

log = logging.getLogger(__name__)
PAGE_SIZE = 20
MAX_PAGE = search.MAX_MATCHES // PAGE_SIZE


def _mirror_hits(
    request: Request, mirrors: list[IndexRecord], query: SearchQuery
) -> list[SearchHit]:
    """Name matches from the mirrors' upstream project lists (bounded per mirror)."""
    needle = query.needle
    if not needle:
        return []
    indexes = services.indexes(request)
    hits: list[SearchHit] = []
    for record in mirrors:
        try:
            names = indexes.type_of(record).find_names(needle, search.MAX_MATCHES)
        except DevpiError as exc:  # an index whose type plugin is disabled
            log.info("search: skipping %s: %s", record.fullname, exc.message)
            continue
        for name in names:
            tier = search.name_tier(needle, name)
            if tier is not None:  # marked once shown (see find): most are never shown
                hits.append(SearchHit(record.fullname, name, name, tier, 0.0, ""))
    return hits


def find(request: Request, text: str, page: int = 1) -> search.SearchResult:
    """One page of hits for ``text`` over every index the request may read."""
    stages: list[str] = []
    mirrors: list[IndexRecord] = []
    indexes = services.indexes(request)
    for user in services.users(request).names():
        for record in readable_indexes(request, user):
            if indexes.is_mirror(record):
                mirrors.append(record)
            else:
                stages.append(record.fullname)
    offset = (page - 1) * PAGE_SIZE
    # the store reads the documents of the hits up to this page only
    query = SearchQuery(text, tuple(stages), limit=offset + PAGE_SIZE, offset=0)
    if not query.needle and not query.words:
        return search.SearchResult([], 0)
    with services.metadata_store(request).read() as tx:
        found = tx.search(query)
    by_name = _mirror_hits(request, mirrors, query)
    hits = sorted([*found.hits, *by_name], key=search.rank_key)
    total = min(search.MAX_MATCHES, found.total + len(by_name))
    mirrored = {record.fullname for record in mirrors}
    shown = [replace(hit, title=search.mark_name(hit.name, query.needle))
             if hit.scope in mirrored else served_version(request, hit)
             for hit in hits[offset:offset + PAGE_SIZE]]
    return search.SearchResult(shown, total)


def served_version(request: Request, hit: SearchHit) -> SearchHit:
    """``hit`` naming the newest version its index serves now.

    A stage's search document names its newest version when it was written; the serve
    policies decide per request (an age rule lets a version out as time passes), so they are
    applied here, to the shown hits only. A held version gives way to the newest served one;
    with none served (everything held, or the project quarantined on that index) the hit
    stays, without a version: ranking and counting happen in the store, before the policies,
    so dropping hits here would leave pages short and the count wrong.
    """
    if not hit.version:
        return hit
    record = services.indexes(request).get(hit.scope)
    if record is None:  # deleted since the query
        return replace(hit, version="")
    itype = services.indexes(request).type_of(record)
    status = itype.project_status(hit.name)
    if status is not None and status.serves_no_files:
        return replace(hit, version="")
    held = held_versions(request, record, hit.name)
    if hit.version not in held:
        return hit
    served = [(version, verdata) for version, verdata in itype.versions(hit.name).items()
              if version not in held]
    current = [item for item in served if not item[1].get("yanked")] or served
    if not current:
        return replace(hit, version="")
    return replace(hit, version=max(current, key=lambda item: version_sort_key(item[0]))[0])


def marked(text: str) -> Markup:
    """``text`` escaped, with the search's match markers turned into ``<mark>``."""
    escaped = esc(text)
    return Markup(escaped.replace(search.MARK_START, "<mark>").replace(search.MARK_END, "</mark>"))


def _hit(site: Site, hit: SearchHit) -> Markup:
    user, index = hit.scope.split("/", 1)
    name = link(site.url(user, index, hit.name), marked(hit.title), class_="name")
    head: list[object] = [name]
    if hit.version:
        head += [" ", el("span", hit.version, class_="version")]
    head += [" on ", link(site.url(user, index), hit.scope, class_="index")]
    parts = [el("p", *head, class_="hit")]
    if hit.summary:
        parts.append(el("p", marked(hit.summary), class_="summary"))
    if hit.snippet:
        parts.append(el("p", marked(hit.snippet), class_="snippet"))
    return el("li", *parts)


def _pages(site: Site, query: str, page: int, total: int) -> Markup:
    last = min(MAX_PAGE, max(1, -(-total // PAGE_SIZE)))
    if last == 1:
        return Markup("")
    links: list[object] = []
    if page > 1:
        links.append(link(site.search_url(query, page - 1), "← previous", rel="prev"))
    links.append(el("span", f"page {page} of {last}", class_="count"))
    if page < last:
        links.append(link(site.search_url(query, page + 1), "next →", rel="next"))
    return el("nav", join(links, " "), class_="pages", aria_label="result pages")


def _page_number(request: Request) -> int:
    raw = request.GET.get("page", "1")
    return min(MAX_PAGE, max(1, int(raw))) if raw.isdigit() else 1


def search_page(request: Request) -> Response:
    """The search form and one page of its results."""
    site = Site.of(request)
    query = request.GET.get("q", "")[:MAX_QUERY]
    page = _page_number(request)
    result = find(request, query, page)
    parts: list[object] = []
    if not query.strip():
        parts.append(el("p", "Type a project name or words from its description.",
                        class_="empty"))
    elif not result.total:
        parts.append(el("p", "No project matches ", el("q", query), ".", class_="empty"))
    else:
        exact = [hit for hit in result.hits if hit.tier == 0]
        if exact and page == 1:
            names = join((link(site.url(*h.scope.split("/", 1), h.name), f"{h.name} on {h.scope}")
                          for h in exact), ", ")
            parts.append(el("p", "Exact name: ", names, class_="exact"))
        shown = f"{result.total}+" if result.total >= search.MAX_MATCHES else str(result.total)
        parts.append(el("p", f"{shown} projects found", class_="count"))
        parts.append(el("ol", *(_hit(site, hit) for hit in result.hits), class_="results",
                        start=str((page - 1) * PAGE_SIZE + 1)))
        parts.append(_pages(site, query, page, result.total))
    parts.append(el("p", "Mirrors are searched by project name.", class_="note"))
    nav = crumbs(site, ("search", ("+search",)))
    return render(site, "Search", join(parts), nav=nav, query=query)
