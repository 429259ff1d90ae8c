"""The server, user and index pages: who has which indexes, and what an index holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from devpi_core import services
from devpi_core.errors import BadRequest
from devpi_core.model.names import check_project, normalize
from devpi_core.records import IndexRecord
from devpi_core.web import readable_index_configs
from devpi_core_webui.layout import Site, crumbs, render
from devpi_core_webui.markup import Markup, deflist, el, join, link, table, void

if TYPE_CHECKING:
    from pyramid.request import Request
    from pyramid.response import Response

MAX_LISTED = 2000
MAX_QUERY = 200
FIRST_KEYS = ("type", "title", "description", "bases", "volatile", "acl_read", "acl_upload",
              "acl_toxresult_upload", "mirror_url", "mirror_whitelist")


def readable_indexes(request: Request, user: str) -> list[IndexRecord]:
    """The indexes of ``user`` the request may read, by name."""
    configs = readable_index_configs(request, user)
    return [IndexRecord(user, name, config) for name, config in sorted(configs.items())]


def _bases(site: Site, config: Mapping[str, Any]) -> Markup:
    return join((link(site.url(*base.split("/", 1)), base) for base in config.get("bases", ())),
                ", ")


def _describe(config: Mapping[str, Any]) -> Markup:
    title, description = config.get("title") or "", config.get("description") or ""
    return join((el("strong", title) if title else "", " " if title and description else "",
                 description))


def _yes_no(value: Any) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else ""


def index_table(site: Site, records: list[IndexRecord]) -> Markup:
    """A table of indexes: name, type, bases, volatile, title and description."""
    if not records:
        return el("p", "No indexes you may read.", class_="empty")
    rows = [
        (link(site.url(r.user, r.name), r.fullname), r.type, _bases(site, r.config),
         _yes_no(r.config.get("volatile")), _describe(r.config))
        for r in records
    ]
    return table(("Index", "Type", "Bases", "Volatile", "Description"), rows, class_="indexes")


def root_page(request: Request) -> Response:
    """``/``: every user with the indexes the visitor may read."""
    site = Site.of(request)
    sections = []
    for name, record in sorted(services.users(request).all().items()):
        heading = el("h2", link(site.url(name), name), " ", el("small", record.get("title") or ""))
        about = el("p", record["description"]) if record.get("description") else Markup("")
        indexes = index_table(site, readable_indexes(request, name))
        sections.append(el("section", heading, about, indexes))
    return render(site, "Indexes", join(sections), nav=crumbs(site))


def user_page(request: Request) -> Response:
    """``/<user>``: one user's indexes (404 for an unknown user)."""
    name = request.matchdict["user"]
    record = services.users(request).require(name)
    site = Site.of(request)
    about = [el("p", record[key], class_=key)
             for key in ("title", "description") if record.get(key)]
    body = join((*about, index_table(site, readable_indexes(request, name))))
    return render(site, name, body, nav=crumbs(site, (name, (name,))))


def _config_value(site: Site, key: str, value: Any) -> Markup:
    if key == "bases":
        return _bases(site, {"bases": value}) or Markup("none")
    if isinstance(value, bool):
        return Markup("yes" if value else "no")
    if isinstance(value, (list, tuple)):
        return join((el("code", v) for v in value), " ") or Markup("none")
    if isinstance(value, Mapping):
        return el("code", repr(dict(value)))
    return el("span", value)


def config_summary(request: Request, site: Site, record: IndexRecord) -> Markup:
    """The index configuration as a definition list (secret keys left out)."""
    spec = services.indexes(request).spec(record)
    secret = {key.name for key in spec.keys if key.secret} if spec is not None else set()
    config = {k: v for k, v in record.config.items() if k not in secret and k != "custom_data"}
    order = [k for k in FIRST_KEYS if k in config]
    order += sorted(k for k in config if k not in FIRST_KEYS)
    return deflist(((key, _config_value(site, key, config[key])) for key in order), class_="config")


def _usage(site: Site, record: IndexRecord) -> Markup:
    simple = site.url(record.user, record.name, "+simple", "")
    index = site.url(record.user, record.name)
    return el("pre", f"pip install --index-url {simple} <project>\ndevpi use {index}",
              class_="usage")


def _filter_form(query: str, label: str) -> Markup:
    box = void("input", type="search", name="q", value=query, maxlength=str(MAX_QUERY))
    return el("form", el("label", label, " ", box), " ", el("button", "Filter", type="submit"),
              method="get", class_="filter")


def _stage_projects(request: Request, site: Site, record: IndexRecord, query: str) -> Markup:
    names = sorted(services.indexes(request).type_of(record).project_names())
    needle = normalize(query.strip()).strip("-")
    shown = [n for n in names if needle in n] if needle else names
    items = [el("li", link(site.url(record.user, record.name, n), n)) for n in shown[:MAX_LISTED]]
    count = f"{len(shown)} of {len(names)} projects" if needle else f"{len(names)} projects"
    parts = [_filter_form(query, "Filter projects"), el("p", count, class_="count")]
    if items:
        parts.append(el("ul", *items, class_="projects"))
    else:
        parts.append(el("p", "No projects.", class_="empty"))
    if len(shown) > MAX_LISTED:
        more = f"Showing the first {MAX_LISTED}; filter to narrow down."
        parts.append(el("p", more, class_="note"))
    return join(parts)


def _mirror_projects(request: Request, site: Site, record: IndexRecord, query: str) -> Markup:
    simple = site.url(record.user, record.name, "+simple", "")
    upstream = el("code", record.config.get("mirror_url", "an upstream"))
    note = el("p", "This index mirrors ", upstream,
              "; its full project list is on the ", link(simple, "simple page"),
              ". Look a project up by name:", class_="note")
    found = Markup("")
    if query.strip():
        try:
            name = check_project(query.strip())
        except BadRequest:
            found = el("p", f"{query!r} is not a valid project name.", class_="empty")
        else:
            cached = services.indexes(request).type_of(record).has_project(name)
            state = "cached here" if cached else "not cached yet; the page asks the upstream"
            found = el("p", link(site.url(record.user, record.name, name), name), f" ({state})")
    return join((note, _filter_form(query, "Project name"), found))


def index_page(request: Request, record: IndexRecord) -> Response:
    """``/<user>/<index>``: configuration, usage and projects (a mirror: a look-up form)."""
    site = Site.of(request)
    query = request.GET.get("q", "")[:MAX_QUERY]
    if services.indexes(request).is_mirror(record):
        projects = _mirror_projects(request, site, record, query)
    else:
        projects = _stage_projects(request, site, record, query)
    body = join((config_summary(request, site, record), _usage(site, record),
                 el("section", el("h2", "Projects"), projects)))
    nav = crumbs(site, (record.user, (record.user,)), (record.name, (record.user, record.name)))
    return render(site, record.fullname, body, nav=nav)
