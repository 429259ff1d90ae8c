"""The version page: metadata, files with tox results, documentation and the upload log."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from devpi_core_webui import toxresults
from devpi_core_webui.layout import Site, crumbs, render
from devpi_core_webui.markup import Markup, deflist, el, join, link, log_time, table
from devpi_core_webui.project_page import docs_href, files_table, status_note, yanked_badge
from devpi_core_webui.releases import TOXRESULT

if TYPE_CHECKING:
    from pyramid.request import Request
    from pyramid.response import Response

    from devpi_core.records import IndexRecord
    from devpi_core_webui.releases import ProjectReleases, Release

# newest tox results shown per release file; older ones are counted in a note
MAX_TOX_PER_FILE = 10
_TOX_SUFFIX = re.compile(r"\.toxresult-(\d+)-(\d+)$")
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


def _tox_cell(reports: list[toxresults.ToxReport]) -> Markup:
    passed = sum(r.passed for r in reports)
    failed = sum(r.failed for r in reports)
    if not reports:
        return Markup("")
    parts = [el("span", f"{passed} passed", class_="badge passed")] if passed else []
    if failed:
        parts.append(el("span", f"{failed} failed", class_="badge failed"))
    return join(parts, " ") or el("span", "no environments", class_="badge")


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


def _tox_section(site: Site, tox: ToxResults, names: dict[str, str]) -> Markup:
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


@dataclass
class ToxResults:
    """The newest tox results of each release file, summarised, and how many each file has."""

    reports: dict[str, list[toxresults.ToxReport]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)


def _upload_order(item: tuple[IndexRecord, Mapping[str, Any]]) -> tuple[str, int]:
    # "<file>.toxresult-<YYYYmmddHHMMSS>-<n>": stores may list files sorted by name, where -10
    # comes before -2
    match = _TOX_SUFFIX.search(str(item[1].get("relpath", "")))
    return (match.group(1), int(match.group(2))) if match else ("", 0)


def _load_tox(request: Request, release: Release) -> ToxResults:
    tox = ToxResults()
    newest_first = sorted(release.links(TOXRESULT), key=_upload_order, reverse=True)
    for index, entry in newest_first:
        for_relpath = str(entry.get("for_relpath", ""))
        found = tox.reports.setdefault(for_relpath, [])
        tox.totals[for_relpath] = tox.totals.get(for_relpath, 0) + 1
        if len(found) < MAX_TOX_PER_FILE:
            found.append(toxresults.load(request, index, str(entry["relpath"])))
    return tox


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
    tox = _load_tox(request, release)
    cells = {relpath: _tox_cell(found) for relpath, found in tox.reports.items()}
    names = {f.relpath: f.filename for f in release.files}
    description = release.verdata.get("description")
    body = [status_note(data.name, data.status), _header(site, record, data.name, release),
            metadata_list(release.verdata),
            el("h2", "Files"), files_table(site, release.files, extra=cells, yanked=release.yanked),
            _tox_section(site, tox, names)]
    if isinstance(description, str) and description.strip():
        text = el("pre", description, class_="description")
        body.append(el("details", el("summary", "Description"), text))
    log = _log_rows(release)
    if log:
        headers = ("File", "Action", "Who", "When", "Index")
        body.append(el("section", el("h2", "Log"), table(headers, log, class_="log")))
    nav = crumbs(site, (record.user, (record.user,)), (record.name, (record.user, record.name)),
                 (data.name, (record.user, record.name, data.name)),
                 (release.version, (record.user, record.name, data.name, release.version)))
    return render(site, f"{data.name} {release.version}", join(body), nav=nav)
