"""The version page: metadata, files with tox results, documentation and the upload log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from devpi_core_webui import project_info, toxresults
from devpi_core_webui.layout import Site, crumbs, render
from devpi_core_webui.markup import Markup, deflist, el, join, link, log_time, table
from devpi_core_webui.project_page import (
    description,
    docs_href,
    files_table,
    sidebar,
    status_note,
    yanked_badge,
)

if TYPE_CHECKING:
    from pyramid.request import Request
    from pyramid.response import Response

    from devpi_core.records import IndexRecord
    from devpi_core_webui.releases import ProjectReleases, Release

TEXT_KEYS = (("license_expression", "License"), ("license", "License"),
             ("author", "Author"), ("author_email", "Author e-mail"), ("maintainer", "Maintainer"),
             ("maintainer_email", "Maintainer e-mail"), ("keywords", "Keywords"),
             ("platform", "Platform"))
LIST_KEYS = (("requires_dist", "Requires-Dist"), ("provides_extras", "Provides-Extra"),
             ("classifiers", "Classifiers"))


def _url(value: str) -> Markup:
    """A link for http(s) URLs; anything else (``javascript:``...) stays text."""
    if value.startswith(("http://", "https://")):
        return link(value, value, rel="nofollow noopener noreferrer")
    return el("span", value)


def _project_urls(values: Any) -> Markup:
    items = []
    for entry in values if isinstance(values, list) else ():
        label, _sep, url = str(entry).partition(",")
        if url:
            items.append(el("li", label.strip(), ": ", _url(url.strip())))
        else:
            items.append(el("li", _url(label)))
    return el("ul", *items, class_="plain")


def metadata_list(verdata: Mapping[str, Any]) -> Markup:
    """The interesting metadata keys as a definition list."""
    items: list[tuple[object, object]] = []
    if isinstance(verdata.get("summary"), str) and verdata["summary"]:
        items.append(("Summary", verdata["summary"]))
    if verdata.get("requires_python"):
        items.append(("Requires-Python", el("code", verdata["requires_python"])))
    shown_license = False
    for key, label in TEXT_KEYS:
        value = verdata.get(key)
        if not value or not isinstance(value, str) or (label == "License" and shown_license):
            continue
        shown_license = shown_license or label == "License"
        items.append((label, value))
    for key in ("home_page", "download_url"):
        if isinstance(verdata.get(key), str) and verdata[key]:
            items.append((key.replace("_", " ").capitalize(), _url(verdata[key])))
    if verdata.get("project_urls"):
        items.append(("Project URLs", _project_urls(verdata["project_urls"])))
    for key, label in LIST_KEYS:
        values = verdata.get(key)
        if isinstance(values, list) and values:
            entries = (el("li", el("code", v)) for v in values)
            items.append((label, el("ul", *entries, class_="plain")))
    return deflist(items, class_="metadata") if items else el("p", "No metadata.", class_="empty")


def _report_rows(site: Site, report: toxresults.ToxReport, name: str) -> list[tuple[object, ...]]:
    raw = link(f"{site.root}/{quote(report.relpath, safe='/+@~')}", "JSON")
    where = " ".join(filter(None, (report.host, report.platform)))
    rows: list[tuple[object, ...]] = []
    if report.problem:
        rows.append((name, where, report.problem, "", raw))
    for env in report.envs:
        state = el("span", "failed" if env.failed else "passed",
                   class_="badge failed" if env.failed else "badge passed")
        plural = "" if env.commands == 1 else "s"
        detail = f"{env.commands} test command{plural}"
        if env.setup_failed:
            detail = "setup failed"
        rows.append((name, where, env.name, join((state, " ", env.python, " · ", detail)), raw))
    if report.more_envs > 0:
        rows.append((name, where, f"{report.more_envs} more environments", "", raw))
    return rows


def _tox_section(site: Site, tox: toxresults.ToxResults, names: dict[str, str]) -> Markup:
    rows = []
    for for_relpath, found in tox.reports.items():
        name = names.get(for_relpath, for_relpath)
        for report in found:
            rows += _report_rows(site, report, name)
        hidden = tox.totals[for_relpath] - len(found)
        if hidden > 0:
            plural = "" if hidden == 1 else "s"
            rows.append((name, "", f"{hidden} older tox result{plural} not shown", "", ""))
    if not rows:
        return Markup("")
    return el("section", el("h2", "Tox results"),
              table(("File", "Host", "Environment", "Result", ""), rows, class_="tox"))


def _log_rows(release: Release) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for _index, verdata in release.sources:
        for entry in verdata.get("+links", ()):
            filename = str(entry.get("relpath", "")).rsplit("/", 1)[-1]
            for event in entry.get("log", ()) if isinstance(entry.get("log"), list) else ():
                if not isinstance(event, Mapping):
                    continue
                where = event.get("dst", "")
                if event.get("src"):
                    where = f"{event['src']} → {where}"
                rows.append((filename, event.get("what", ""), event.get("who") or "anonymous",
                             log_time(event.get("when")), where))
    return sorted(rows, key=lambda row: str(row[3]))  # <time datetime="..."> sorts by time


def _header(site: Site, record: IndexRecord, project: str, release: Release) -> Markup:
    index = release.index
    parts: list[object] = ["From ", link(site.url(index.user, index.name), index.fullname)]
    others = [r.fullname for r, _v in release.sources[1:]]
    if others:
        parts += [" (also on ", join(others, ", "), ")"]
    docs = release.docs_index
    if docs is not None:
        parts += [" · ", link(docs_href(site, docs, project, release.version), "documentation")]
    parts += [" · ", link(site.url(record.user, record.name, project), "all versions")]
    origin = el("p", *parts, class_="origin")
    if release.yanked is False:
        return origin
    return join((origin, el("p", yanked_badge(release.yanked), class_="banner")))


def version_page(
    request: Request, record: IndexRecord, data: ProjectReleases, release: Release
) -> Response:
    """``/<user>/<index>/<project>/<version>``."""
    site = Site.of(request)
    tox = toxresults.load_all(request, release)
    cells = {relpath: toxresults.tox_cell(found) for relpath, found in tox.reports.items()}
    names = {f.relpath: f.filename for f in release.files}
    simple = site.url(record.user, record.name, "+simple", "")
    body = [status_note(data.name, data.status), _header(site, record, data.name, release),
            project_info.install_box(simple, data.name, release.version),
            el("h2", "Files"), files_table(site, release.files, extra=cells, yanked=release.yanked),
            _tox_section(site, tox, names), description(request, release.verdata),
            el("section", el("h2", "Metadata"), metadata_list(release.verdata))]
    log = _log_rows(release)
    if log:
        headers = ("File", "Action", "Who", "When", "Index")
        body.append(el("section", el("h2", "Log"), table(headers, log, class_="log")))
    main = el("div", *body, class_="main")
    columns = el("div", main, sidebar(site, release, data.name), class_="columns")
    nav = crumbs(site, (record.user, (record.user,)), (record.name, (record.user, record.name)),
                 (data.name, (record.user, record.name, data.name)),
                 (release.version, (record.user, record.name, data.name, release.version)))
    return render(site, f"{data.name} {release.version}", columns, nav=nav)
