"""PyPI's JSON API on every index: ``/<user>/<index>/pypi/<project>[/<version>]/json``.

The shape of PyPI's ``/pypi/<project>/json`` (``info``, ``last_serial``, ``releases``,
``urls``, ``vulnerabilities``) so tools written for PyPI (dependency updaters reading release
times and yanks, auditors reading versions and digests, scripts reading ``info``) work against
a private index. The files are the ones the index's simple page lists (bases merged, the
visitor's ``acl_read`` applied, the same refusals); the metadata of a version is that of the
first index in resolution order that has it. ``info.version`` is the newest release that is
neither yanked nor a pre-release (else the newest not yanked, else the newest).

Digests hold what the server knows: ``sha256`` always, ``md5`` when an upstream gave it.
``vulnerabilities`` is always empty: this server keeps no advisory database.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pyramid.view import view_config

from devpi_core import services
from devpi_core.errors import BadRequest, NotFound
from devpi_core.model.names import is_prerelease, normalize, version_sort_key
from devpi_core.records import status_over_bases
from devpi_core.simple_render import status_json
from devpi_core.web import absolute, contributing_indexes, json_response, readable_index, server_url

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyramid.request import Request
    from pyramid.response import Response

    from devpi_core.records import IndexRecord, Link

# PEP 753 / core metadata keys copied into ``info`` as they are (absent ones become None)
TEXT_KEYS = ("author", "author_email", "maintainer", "maintainer_email", "license",
             "license_expression", "keywords", "platform", "summary", "description",
             "description_content_type", "home_page", "download_url", "requires_python")
LIST_KEYS = ("classifiers", "requires_dist", "provides_extra", "license_files", "dynamic")


def _project(request: Request) -> str:
    name = str(request.matchdict["project"])
    if not name.isascii():
        raise BadRequest(f"invalid project name {name!r}")
    return normalize(name)


def packagetype(filename: str) -> str:
    """``bdist_wheel``, ``sdist`` or ``bdist_egg`` as PyPI says."""
    if filename.endswith(".whl"):
        return "bdist_wheel"
    if filename.endswith(".egg"):
        return "bdist_egg"
    return "sdist"


def python_version(filename: str) -> str:
    """A wheel's Python tag (``py3``), ``source`` for an sdist, as PyPI says."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        return parts[-3] if len(parts) >= 5 else ""
    if filename.endswith(".egg"):
        parts = filename[:-4].split("-")
        return parts[2] if len(parts) >= 3 else ""
    return "source"


def upload_times(value: str | None) -> tuple[str | None, str | None]:
    """``(upload_time, upload_time_iso_8601)``: PyPI's naive UTC seconds and ISO 8601 with Z."""
    if not value:
        return None, None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None, None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return (when.strftime("%Y-%m-%dT%H:%M:%S"),
            when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def file_entry(request: Request, link: Link) -> dict[str, Any]:
    """One file as PyPI's ``urls`` / ``releases`` entries show it."""
    digests = {name: link.hashes[name] for name in ("md5", "sha256", "blake2b_256")
               if name in link.hashes}
    upload_time, upload_time_iso = upload_times(link.upload_time)
    yanked = link.yanked is not False
    return {
        "comment_text": "",
        "digests": digests,
        "downloads": -1,
        "filename": link.filename,
        "has_sig": False,
        "md5_digest": digests.get("md5"),
        "packagetype": packagetype(link.filename),
        "python_version": python_version(link.filename),
        "requires_python": link.requires_python,
        "size": link.size,
        "upload_time": upload_time,
        "upload_time_iso_8601": upload_time_iso,
        "url": absolute(request, link.relpath),
        "yanked": yanked,
        "yanked_reason": link.yanked if isinstance(link.yanked, str) and link.yanked else None,
    }


def project_urls(verdata: Mapping[str, Any]) -> dict[str, str] | None:
    """``Project-URL: Label, URL`` entries as PyPI's ``{label: url}``."""
    found: dict[str, str] = {}
    values = verdata.get("project_urls")
    for entry in values if isinstance(values, list) else ():
        label, _sep, url = str(entry).partition(",")
        if url.strip():
            found[label.strip()] = url.strip()
    return found or None


def _yank(verdata: Mapping[str, Any]) -> tuple[bool, str | None]:
    value = verdata.get("yanked", False)
    if isinstance(value, str):
        return True, value or None
    return bool(value), None


def info(request: Request, record: IndexRecord, project: str, version: str,
         verdata: Mapping[str, Any]) -> dict[str, Any]:
    """PyPI's ``info`` object for ``version``."""
    result: dict[str, Any] = {key: verdata.get(key) or None for key in TEXT_KEYS}
    for key in LIST_KEYS:
        value = verdata.get(key)
        result[key] = list(value) if isinstance(value, list) else ([] if key != "requires_dist"
                                                                   else None)
    yanked, reason = _yank(verdata)
    base = f"{server_url(request)}/{record.fullname}/{project}"
    docs = any(link.get("rel") == "doczip" for link in verdata.get("+links", ()))
    result.update(
        name=str(verdata.get("name") or project),
        version=version,
        project_urls=project_urls(verdata),
        package_url=f"{base}/",
        project_url=f"{base}/",
        release_url=f"{base}/{version}/",
        docs_url=f"{base}/{version}/+doc/index.html" if docs else None,
        bugtrack_url=None,
        downloads={"last_day": -1, "last_week": -1, "last_month": -1},
        yanked=yanked,
        yanked_reason=reason,
    )
    result["summary"] = result["summary"] or ""
    return result


class _Project:
    """A project's versions and files over the indexes that make up its simple page."""

    def __init__(self, request: Request, record: IndexRecord, project: str) -> None:
        indexes = services.indexes(request)
        self.verdata: dict[str, Mapping[str, Any]] = {}
        self.files: dict[str, list[Link]] = {}
        seen: set[str] = set()
        stages = {stage.fullname: indexes.type_of(stage)
                  for stage in contributing_indexes(request, record, project).stages}
        # PEP 792 as the simple page has it: withheld files are not listed
        over = status_over_bases(
            record.fullname, [(name, t.project_status(project)) for name, t in stages.items()]
        )
        self.status = over.status
        for name, itype in stages.items():
            for link in itype.links(project) if name not in over.withheld else ():
                if link.filename not in seen and link.version is not None:
                    seen.add(link.filename)
                    self.files.setdefault(link.version, []).append(link)
            for version, verdata in itype.versions(project).items():
                self.verdata.setdefault(version, verdata)
        if not self.verdata:
            raise NotFound(f"no project {project!r} on {record.fullname}")

    def latest(self) -> str:
        """The version ``info`` describes."""
        ordered = sorted(self.verdata, key=version_sort_key, reverse=True)
        standing = [v for v in ordered if not _yank(self.verdata[v])[0]]
        final = [v for v in standing if not is_prerelease(v)]
        return (final or standing or ordered)[0]


def _reply(request: Request, record: IndexRecord, project: str, found: _Project,
           version: str, *, releases: bool) -> Response:
    body: dict[str, Any] = {
        "info": info(request, record, project, version, found.verdata[version]),
        "last_serial": services.metadata_store(request).current_serial(),
        # PEP 792's object, as PEP 691 puts it on a project page
        "project-status": status_json(found.status),
    }
    if releases:
        ordered = sorted(found.verdata, key=version_sort_key)
        body["releases"] = {v: [file_entry(request, f) for f in found.files.get(v, ())]
                            for v in ordered}
    body["urls"] = [file_entry(request, f) for f in found.files.get(version, ())]
    body["vulnerabilities"] = []
    response = json_response(body)
    response.headers["Cache-Control"] = "no-cache"
    return response


@view_config(route_name="pypi_json_project", request_method=("GET", "HEAD"))
def project_json(request: Request) -> Response:
    """``/<user>/<index>/pypi/<project>/json``: the latest version, every release's files."""
    record = readable_index(request)
    project = _project(request)
    found = _Project(request, record, project)
    return _reply(request, record, project, found, found.latest(), releases=True)


@view_config(route_name="pypi_json_version", request_method=("GET", "HEAD"))
def version_json(request: Request) -> Response:
    """``/<user>/<index>/pypi/<project>/<version>/json``: one version and its files."""
    record = readable_index(request)
    project = _project(request)
    version = str(request.matchdict["version"])
    found = _Project(request, record, project)
    if version not in found.verdata:
        raise NotFound(f"no version {version!r} of {project!r} on {record.fullname}")
    return _reply(request, record, project, found, version, releases=False)
