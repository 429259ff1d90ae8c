"""What a project page answers besides its files: links, metadata, requirements, install.

- the project URLs as PEP 753 says: ``Home-page``/``Download-URL`` and every ``Project-URL``,
  labels normalised (punctuation and whitespace removed, lower case) to recognise the
  well-known ones (homepage, source, documentation, issues, changelog, release notes,
  funding, download), which come first, each label once; only http(s) URLs become links;
- classifiers, grouped by their first part;
- requirements: ``Requires-Dist`` by extra, with version specifiers and environment markers;
- the commands that install the project from this index with pip and uv.
"""

from __future__ import annotations

import re
import string
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement

from devpi_core_webui.markup import Markup, el, join, link

if TYPE_CHECKING:
    from collections.abc import Mapping

# PEP 753: normalised label -> the well-known name shown for it, in the order shown
WELL_KNOWN = {
    "homepage": "Homepage",
    "source": "Source", "repository": "Source", "sourcecode": "Source", "github": "Source",
    "gitlab": "Source",
    "documentation": "Documentation", "docs": "Documentation",
    "issues": "Issues", "bugs": "Issues", "issue": "Issues", "tracker": "Issues",
    "issuetracker": "Issues", "bugtracker": "Issues",
    "changelog": "Changelog", "changes": "Changelog", "whatsnew": "Changelog",
    "history": "Changelog",
    "releasenotes": "Release notes",
    "funding": "Funding", "sponsor": "Funding", "donate": "Funding", "donation": "Funding",
    "download": "Download",
}
ORDER = ("Homepage", "Source", "Documentation", "Issues", "Changelog", "Release notes",
         "Funding", "Download")
_EXTRA = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")
_DROP = str.maketrans("", "", string.punctuation + string.whitespace)


def normalize_label(label: str) -> str:
    """PEP 753's label normalisation: no punctuation, no whitespace, lower case."""
    return label.translate(_DROP).lower()


def project_urls(verdata: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(label shown, well-known name or "", url)``: well-known first, each label once."""
    entries: list[tuple[str, str]] = []
    if isinstance(verdata.get("home_page"), str) and verdata["home_page"].strip():
        entries.append(("Homepage", verdata["home_page"].strip()))
    values = verdata.get("project_urls")
    for entry in values if isinstance(values, list) else ():
        label, _sep, url = str(entry).partition(",")
        if url.strip():
            entries.append((label.strip(), url.strip()))
    if isinstance(verdata.get("download_url"), str) and verdata["download_url"].strip():
        entries.append(("Download", verdata["download_url"].strip()))
    found: dict[str, tuple[str, str, str]] = {}
    for label, url in entries:
        key = normalize_label(label)
        known = WELL_KNOWN.get(key, "")
        found.setdefault(known or key, (known or label, known, url))
    rank = {name: n for n, name in enumerate(ORDER)}
    return sorted(found.values(), key=lambda item: rank.get(item[1], len(ORDER)))


def _url(value: str, text: object) -> Markup:
    """A link for http(s) URLs; anything else (``javascript:``...) stays text."""
    if value.startswith(("http://", "https://")):
        return link(value, text, rel="nofollow noopener noreferrer")
    return el("span", text, " ", el("code", value))


def links_box(verdata: Mapping[str, Any], docs_href: str | None) -> Markup:
    """The "Project links" sidebar box."""
    items = [el("li", _url(url, label), class_=f"url-{normalize_label(known)}" if known else None)
             for label, known, url in project_urls(verdata)]
    if docs_href and not any(known == "Documentation" for _l, known, _u in
                             project_urls(verdata)):
        items.append(el("li", link(docs_href, "Documentation (on this index)")))
    if not items:
        return Markup("")
    return el("section", el("h3", "Project links"), el("ul", *items, class_="plain"),
              class_="box")


def classifiers_box(verdata: Mapping[str, Any]) -> Markup:
    """Classifiers grouped by their first part."""
    values = verdata.get("classifiers")
    groups: dict[str, list[str]] = {}
    for value in values if isinstance(values, list) else ():
        head, _sep, rest = str(value).partition(" :: ")
        groups.setdefault(head, []).append(rest or head)
    if not groups:
        return Markup("")
    items = [el("li", el("strong", head), el("ul", *(el("li", v) for v in rest)))
             for head, rest in groups.items()]
    return el("section", el("h3", "Classifiers"), el("ul", *items, class_="classifiers"),
              class_="box")


def requirement_groups(verdata: Mapping[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    """``{extra or "": [(name with extras, specifier, marker)]}`` of ``Requires-Dist``."""
    values = verdata.get("requires_dist")
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for value in values if isinstance(values, list) else ():
        text = str(value)
        try:
            req = Requirement(text)
        except InvalidRequirement:
            groups.setdefault("", []).append((text, "", ""))
            continue
        marker = str(req.marker) if req.marker else ""
        extra = _EXTRA.search(marker)
        name = req.name + (f"[{','.join(sorted(req.extras))}]" if req.extras else "")
        groups.setdefault(extra.group(1) if extra else "", []).append(
            (name, str(req.specifier), marker))
    return dict(sorted(groups.items()))


def requirements_box(verdata: Mapping[str, Any]) -> Markup:
    """Requirements by extra, with specifiers and markers."""
    parts = []
    for extra, reqs in requirement_groups(verdata).items():
        items = [el("li", el("code", name), " ", el("code", spec) if spec else "",
                    el("small", " ; ", marker, class_="marker") if marker else "")
                 for name, spec, marker in reqs]
        title = f"extra [{extra}]" if extra else "required"
        parts.append(join((el("h4", title), el("ul", *items, class_="plain requirements"))))
    python = verdata.get("requires_python")
    if isinstance(python, str) and python:
        parts.insert(0, el("p", "Python ", el("code", python)))
    if not parts:
        return Markup("")
    return el("section", el("h3", "Requirements"), *parts, class_="box")


def meta_box(verdata: Mapping[str, Any]) -> Markup:
    """License, author and maintainer, keywords."""
    rows = []
    license_text = verdata.get("license_expression") or verdata.get("license")
    if isinstance(license_text, str) and license_text and len(license_text) < 200:
        rows.append(("License", license_text))
    for key, label in (("author", "Author"), ("maintainer", "Maintainer"),
                       ("keywords", "Keywords")):
        value = verdata.get(key)
        if isinstance(value, str) and value:
            rows.append((label, value))
    if not rows:
        return Markup("")
    items = (join((el("dt", label), el("dd", value))) for label, value in rows)
    return el("section", el("h3", "Meta"), el("dl", *items), class_="box")


def install_box(simple_url: str, project: str, version: str | None = None) -> Markup:
    """The pip and uv commands that install ``project`` (``version``) from this index."""
    target = f"{project}=={version}" if version else project
    commands = (
        ("pip", f"pip install --index-url {simple_url} {target}"),
        ("uv", f"uv pip install --index-url {simple_url} {target}"),
        ("uv project", f"uv add --default-index {simple_url} {target}"),
    )
    rows = [join((el("dt", tool), el("dd", el("code", command, class_="copy"))))
            for tool, command in commands]
    return el("section", el("h2", "Install"), el("dl", *rows, class_="install"),
              class_="install")
