"""A project's releases as an index serves them: merged over its bases, newest first.

The indexes that contribute are the ones core's simple page and project JSON use (the
resolution order the visitor may read, with ``mirror_whitelist`` applied), so the web UI never
shows a mirror's files for a name that is private on a stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devpi_core import services
from devpi_core.errors import BadRequest, NotFound
from devpi_core.indextypes import verdata_links
from devpi_core.model.names import normalize, version_sort_key
from devpi_core.records import ACTIVE, ProjectStatus, status_over_bases
from devpi_core.web import contributing_indexes, held_versions

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyramid.request import Request

    from devpi_core.records import IndexRecord, Link

DOCZIP = "doczip"
TOXRESULT = "toxresult"


@dataclass
class Release:
    """One version: where it comes from, its metadata and its files.

    ``sources`` holds ``(index, verdata)`` for every contributing index that has the version,
    in resolution order; the first one's metadata is shown, the others shadow nothing but add
    files with other names (as the simple page merges them).
    """

    version: str
    sources: list[tuple[IndexRecord, Mapping[str, Any]]]
    files: list[Link] = field(default_factory=list)

    @property
    def index(self) -> IndexRecord:
        """The first index that has this version."""
        return self.sources[0][0]

    @property
    def verdata(self) -> Mapping[str, Any]:
        """The metadata shown for this version."""
        return self.sources[0][1]

    @property
    def yanked(self) -> bool | str:
        """False, True or the yank reason (PEP 592)."""
        value = self.verdata.get("yanked", False)
        return value if isinstance(value, (bool, str)) else bool(value)

    def links(self, rel: str) -> list[tuple[IndexRecord, Mapping[str, Any]]]:
        """``(index, link)`` of every ``+links`` entry with ``rel`` over all sources."""
        return [(record, link) for record, verdata in self.sources
                for link in verdata_links(verdata) if link.get("rel") == rel]

    @property
    def docs_index(self) -> IndexRecord | None:
        """The first index holding documentation for this version, or None."""
        found = self.links(DOCZIP)
        return found[0][0] if found else None


@dataclass
class ProjectReleases:
    """Every release of a project on an index, newest first."""

    name: str
    releases: list[Release]
    blocked: tuple[str, ...] = ()
    status: ProjectStatus = ACTIVE

    def find(self, version: str) -> Release | None:
        """The release ``version``, or None."""
        return next((r for r in self.releases if r.version == version), None)

    def latest_docs(self) -> Release | None:
        """The newest release with documentation."""
        return next((r for r in self.releases if r.docs_index is not None), None)


def checked_project(request: Request) -> str:
    """The project name from the URL (ASCII, as core requires), not yet normalized."""
    name: str = request.matchdict["project"]
    if not name.isascii():
        raise BadRequest(f"invalid project name {name!r}")
    return name


def project_releases(request: Request, record: IndexRecord, project: str) -> ProjectReleases:
    """The releases of normalized ``project`` on ``record`` and its readable bases; 404 if none."""
    indexes = services.indexes(request)
    contributors = contributing_indexes(request, record, project)
    held = held_versions(request, record, project)  # left out, as on the simple page
    releases: dict[str, Release] = {}
    seen: set[str] = set()
    types = [indexes.type_of(stage) for stage in contributors.stages]
    # PEP 792, as on the simple page: no files of a quarantined index (status_over_bases)
    over = status_over_bases(record.fullname, [
        (stage.fullname, itype.project_status(project))
        for stage, itype in zip(contributors.stages, types, strict=True)
    ])
    status = over.status
    for stage, itype in zip(contributors.stages, types, strict=True):
        files: dict[str | None, list[Link]] = {}
        for link in itype.links(project):
            if link.filename not in seen:
                seen.add(link.filename)
                files.setdefault(link.version, []).append(link)
        for version, verdata in itype.versions(project).items():
            if version in held:
                continue
            release = releases.setdefault(version, Release(version, []))
            release.sources.append((stage, verdata))
            if stage.fullname not in over.withheld:
                release.files.extend(files.get(version, ()))
    if not releases and (not contributors.stages or status.status == "active"):
        raise NotFound(f"no project {project!r} on {record.fullname}")
    ordered = sorted(releases.values(), key=lambda r: version_sort_key(r.version), reverse=True)
    return ProjectReleases(project, ordered, contributors.blocked, status)


def redirect_target(name: str) -> str | None:
    """The normalized spelling of ``name`` when it differs (the page redirects there)."""
    normalized = normalize(name)
    return normalized if normalized != name else None
