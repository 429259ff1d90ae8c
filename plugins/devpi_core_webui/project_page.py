"""The project page: every version, newest first, with its files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from devpi_core import services
from devpi_core_webui import project_info, readme, toxresults
from devpi_core_webui.layout import Site, crumbs, render
from devpi_core_webui.markup import Markup, el, human_size, iso_time, join, link, table

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyramid.request import Request
    from pyramid.response import Response

    from devpi_core.records import IndexRecord, Link, ProjectStatus
    from devpi_core_webui.releases import ProjectReleases, Release

DETAILED = 20


def status_note(name: str, status: ProjectStatus) -> Markup:
    """A PEP 792 status banner (archived, deprecated, quarantined), or nothing when active."""
    if status.status == "active":
        return Markup("")
    says = {
        "archived": "is archived: it takes no new uploads.",
        "deprecated": "is deprecated.",
        "quarantined": "is quarantined: none of its files is offered for download.",
    }[status.status]
    reason = el("span", f" Reason: {status.reason}") if status.reason else ""
    return el("p", el("span", status.status, class_=f"badge {status.status}"), " ",
              f"{name} {says}", reason, class_="note status")


def file_href(site: Site, file: Link) -> str:
    """The download URL of a file, with its hash fragment as on simple pages."""
    fragment = f"#{file.hash_spec}" if file.hash_spec else ""
    return f"{site.root}/{quote(file.relpath, safe='/+@~')}{fragment}"


def yanked_badge(yanked: bool | str) -> Markup:
    """A "yanked" marker with the reason, or nothing."""
    if yanked is False:
        return Markup("")
    reason = f": {yanked}" if isinstance(yanked, str) and yanked else ""
    return el("span", f"yanked{reason}", class_="badge yanked")


def copy_hash(sha256: str | None) -> Markup:
    """The whole digest as ``sha256:<hex>`` (pip's ``--hash`` form), selected by one click."""
    if not sha256:
        return Markup("")
    return el("code", f"sha256:{sha256}", title=f"sha256 {sha256}", class_="hash copy")


def files_table(site: Site, files: list[Link], *, extra: dict[str, Markup] | None = None,
                yanked: bool | str = False) -> Markup:
    """Files: name (download link), size, upload time, sha256, Requires-Python, yanked.

    A file's yanked marker is left out when it says what the release's (``yanked``) says.
    """
    if not files:
        return el("p", "No release files (documentation only).", class_="empty")
    headers = ["File", "Size", "Uploaded", "SHA256", "Requires-Python"]
    if extra is not None:
        headers.append("Tox results")
    rows = []
    for f in files:
        row: list[object] = [
            join((link(file_href(site, f), f.filename), " ",
                  yanked_badge(f.yanked) if f.yanked != yanked else "")),
            human_size(f.size), iso_time(f.upload_time), copy_hash(f.hashes.get("sha256")),
            el("code", f.requires_python) if f.requires_python else "",
        ]
        if extra is not None:
            row.append(extra.get(f.relpath, Markup("")))
        rows.append(row)
    return table(headers, rows, class_="files")


def docs_href(site: Site, index: IndexRecord, project: str, version: str) -> str:
    """The documentation of a version (served by the plugin that stores doc zips)."""
    return site.docs_url(index.user, index.name, project, version, "+doc", "index.html")


def version_href(site: Site, record: IndexRecord, project: str, version: str) -> str:
    """The version page, on the index the visitor is browsing."""
    return site.url(record.user, record.name, project, version)


def _release_section(site: Site, record: IndexRecord, project: str, release: Release,
                     lead: object, tox: dict[str, Markup] | None) -> Markup:
    docs = release.docs_index
    origin = link(site.url(release.index.user, release.index.name), release.index.fullname)
    heading = el(
        "h3", link(version_href(site, record, project, release.version), release.version), " ",
        yanked_badge(release.yanked), el("small", " on ", origin),
        join((" · ", link(docs_href(site, docs, project, release.version), "docs")))
        if docs else "",
    )
    summary = release.verdata.get("summary")
    about = el("p", summary, class_="summary") if summary and summary != lead else Markup("")
    files = files_table(site, release.files, extra=tox or None, yanked=release.yanked)
    return el("section", heading, about, files, class_="release")


def _links(site: Site, record: IndexRecord, data: ProjectReleases, request: Request) -> Markup:
    items = [link(site.url(record.user, record.name, "+simple", data.name, ""), "simple page")]
    docs = data.latest_docs()
    if docs is not None and docs.docs_index is not None:
        items.append(link(docs_href(site, docs.docs_index, data.name, docs.version),
                          f"documentation ({docs.version})"))
    fmt = record.config.get("mirror_web_url_fmt")
    if services.indexes(request).is_mirror(record) and isinstance(fmt, str) and "{name}" in fmt:
        url = fmt.replace("{name}", data.name)
        if url.startswith(("http://", "https://")):
            items.append(link(url, "upstream project page", rel="noopener noreferrer"))
    return el("ul", *(el("li", item) for item in items), class_="links")


def _latest(data: ProjectReleases) -> Release:
    return next((r for r in data.releases if r.yanked is False), data.releases[0])


def _latest_summary(data: ProjectReleases) -> Markup:
    if not data.releases:  # a quarantined mirror project lists nothing
        return Markup("")
    latest = _latest(data)
    parts = []
    if latest.verdata.get("summary"):
        parts.append(el("p", latest.verdata["summary"], class_="lead"))
    if latest.verdata.get("requires_python"):
        parts.append(el("p", "Requires Python ", el("code", latest.verdata["requires_python"])))
    return join(parts)


def status_badges(data: ProjectReleases) -> Markup:
    """Badges for the project as a whole: the version shown, every release yanked."""
    latest = _latest(data)
    badges = [el("span", latest.version, class_="badge version", title="latest release")]
    if all(r.yanked is not False for r in data.releases):
        badges.append(el("span", "all releases yanked", class_="badge yanked"))
    return el("p", *badges, class_="badges")


def sidebar(site: Site, release: Release, project: str) -> Markup:
    """Links, metadata, requirements and classifiers of ``release``."""
    docs = release.docs_index
    docs_link = docs_href(site, docs, project, release.version) if docs else None
    boxes = (project_info.links_box(release.verdata, docs_link),
             project_info.meta_box(release.verdata),
             project_info.requirements_box(release.verdata),
             project_info.classifiers_box(release.verdata))
    return el("aside", *boxes, class_="sidebar", aria_label="about this project")


def description(request: Request, verdata: Mapping[str, Any]) -> Markup:
    """The rendered description (sanitised HTML), or plain text with a note saying why."""
    rendered = readme.rendered_description(request.registry, verdata)
    if rendered is None:
        return Markup("")
    note = el("p", rendered.note, class_="note") if rendered.note else Markup("")
    return el("section", el("h2", "Description"), note,
              el("div", Markup(rendered.html), class_="readme"), class_="description")


def project_page(request: Request, record: IndexRecord, data: ProjectReleases) -> Response:
    """``/<user>/<index>/<project>``."""
    site = Site.of(request)
    latest = _latest(data) if data.releases else None  # a quarantined project lists none
    lead = latest.verdata.get("summary") if latest else None
    tox = toxresults.load_all(request, latest) if latest else None
    cells = ({relpath: toxresults.tox_cell(found) for relpath, found in tox.reports.items()}
             if tox else {})
    sections = [_release_section(site, record, data.name, r, lead,
                                 cells if r is latest else None)
                for r in data.releases[:DETAILED]]
    older = data.releases[DETAILED:]
    if older:
        items = [el("li", link(version_href(site, record, data.name, r.version), r.version),
                    " ", yanked_badge(r.yanked)) for r in older]
        sections.append(el("section", el("h3", f"Older versions ({len(older)})"),
                           el("ul", *items, class_="versions")))
    notes = Markup("")
    if data.blocked:
        notes = el("p", "Not looked up on ", join(data.blocked, ", "),
                   ": the name is taken by a private index (see mirror_whitelist).", class_="note")
    simple = site.url(record.user, record.name, "+simple", "")
    main = el("div", status_note(data.name, data.status), _links(site, record, data, request),
              status_badges(data) if latest else "", _latest_summary(data), notes,
              project_info.install_box(simple, data.name),
              description(request, latest.verdata) if latest else "",
              el("h2", f"Release history ({len(data.releases)})"), *sections, class_="main")
    side = sidebar(site, latest, data.name) if latest else ""
    body = el("div", main, side, class_="columns")
    nav = crumbs(site, (record.user, (record.user,)), (record.name, (record.user, record.name)),
                 (data.name, (record.user, record.name, data.name)))
    return render(site, data.name, body, nav=nav)
