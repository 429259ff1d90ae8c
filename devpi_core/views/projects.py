"""Project and version JSON (``/<user>/<index>/<project>[/<version>]``) and their deletion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from devpi_core import services
from devpi_core.errors import BadRequest, Forbidden, NotFound
from devpi_core.held import refuse_if_held
from devpi_core.model.names import normalize
from devpi_core.records import PROJECT_STATUSES, DeleteEvent, ProjectStatus, status_over_bases
from devpi_core.simple_render import status_json
from devpi_core.views.simple import project_page_response, wants_simple_list
from devpi_core.web import (
    absolute,
    api_reply,
    changeable_index,
    contributing_indexes,
    flag,
    held_versions,
    identity,
    json_body,
    readable_index,
    require_json_accept,
    server_url,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyramid.request import Request
    from pyramid.response import Response

    from devpi_core.records import IndexRecord


def _project_name(request: Request) -> str:
    name = str(request.matchdict["project"])
    if not name.isascii():
        raise BadRequest(f"invalid project name {name!r}")
    return name


def public_verdata(request: Request, verdata: Mapping[str, Any]) -> dict[str, Any]:
    """Version data with ``+links`` made absolute (``href``, ``for_href``)."""
    result = {key: value for key, value in verdata.items() if key != "+links"}
    links = []
    for link in verdata.get("+links", ()):
        entry = {key: value for key, value in link.items() if key not in ("relpath", "for_relpath")}
        entry["href"] = absolute(request, link["relpath"])
        if link.get("for_relpath"):
            entry["for_href"] = absolute(request, link["for_relpath"])
        links.append(entry)
    result["+links"] = links
    return result


def _contributing(request: Request, record: IndexRecord, project: str) -> list[IndexRecord]:
    if "ignore_bases" in request.GET:
        itype = services.indexes(request).type_of(record)
        return [record] if itype.page_token(project) is not None else []
    return list(contributing_indexes(request, record, project).stages)


def _all_versions(
    request: Request, stages: list[IndexRecord], project: str
) -> list[tuple[str, dict[str, Any]]]:
    """``(index, {version: verdata})`` for each contributing index, in resolution order."""
    indexes = services.indexes(request)
    return [(stage.fullname, dict(indexes.type_of(stage).versions(project))) for stage in stages]


def project_status(
    request: Request, record: IndexRecord, stages: list[IndexRecord], project: str
) -> dict[str, str]:
    """PEP 792's ``project-status`` object of ``record`` over ``stages``, as its simple page
    has it (:func:`~devpi_core.records.status_over_bases`)."""
    indexes = services.indexes(request)
    statuses = [(s.fullname, indexes.type_of(s).project_status(project)) for s in stages]
    return status_json(status_over_bases(record.fullname, statuses).status)


def _redirect_if_not_normalized(request: Request, name: str, rest: str = "") -> Response | None:
    normalized = normalize(name)
    if name == normalized:
        return None
    user, index = request.matchdict["user"], request.matchdict["index"]
    return HTTPFound(location=f"{server_url(request)}/{user}/{index}/{normalized}{rest}")


@view_config(route_name="project", request_method=("GET", "HEAD"))
def get_project(request: Request) -> Response:
    """``{version: verdata}`` merged over bases; installers get the simple page here."""
    name = _project_name(request)
    record = readable_index(request)
    if wants_simple_list(request):
        return project_page_response(request, record, normalize(name))
    redirect = _redirect_if_not_normalized(request, name)
    if redirect is not None:
        return redirect
    require_json_accept(request)
    merged: dict[str, Any] = {}
    stages = _contributing(request, record, name)
    contributing = _all_versions(request, stages, name)
    held = held_versions(request, record, normalize(name))
    for _stage, versions in contributing:
        for version, verdata in versions.items():
            if version in held:  # left out, as on the simple page: resolvers fall back
                continue
            # as devpi-server: the same version on a later index is listed under +shadowing
            # (devpi list shows those files too)
            public = public_verdata(request, verdata)
            if version in merged:
                merged[version].setdefault("+shadowing", []).append(public)
            else:
                merged[version] = public
    if not contributing:  # a project without releases (a mirror's empty page) is {}, as in devpi
        raise NotFound(f"no project {name!r} on {record.fullname}")
    # PEP 792 beside devpi's envelope (PEP 691 puts it at the top of a project page):
    # devpi-client reads only ``result``, whose keys stay versions
    status = project_status(request, record, stages, normalize(name))
    return api_reply(request, "projectconfig", merged, extra={"project-status": status})


@view_config(route_name="version", request_method=("GET", "HEAD"))
def get_version(request: Request) -> Response:
    """Version data of the first index having it, later ones under ``+shadowing``."""
    name = _project_name(request)
    version = request.matchdict["version"]
    record = readable_index(request)
    redirect = _redirect_if_not_normalized(request, name, f"/{version}")
    if redirect is not None:
        return redirect
    refuse_if_held(held_versions(request, record, normalize(name)), version)
    # one record per contributing index, however many versions the project has
    indexes = services.indexes(request)
    found = [
        public_verdata(request, verdata)
        for stage in _contributing(request, record, name)
        if (verdata := indexes.type_of(stage).version(name, version)) is not None
    ]
    if not found:
        raise NotFound(f"no version {version!r} of {name!r} on {record.fullname}")
    result = found[0]
    if len(found) > 1:
        result["+shadowing"] = found[1:]
    return api_reply(request, "versiondata", result)


def _deletable(request: Request) -> IndexRecord:
    record = changeable_index(request, "del_entry")
    if not services.indexes(request).type_of(record).may_delete(force=flag(request, "force")):
        raise Forbidden(f"{record.fullname} is non-volatile; add ?force to delete")
    return record


def _emit_delete(request: Request, record: IndexRecord, project: str, version: str | None) -> None:
    who = identity(request)
    serial = services.metadata_store(request).current_serial()
    username = who.username if who else None
    event = DeleteEvent(record.fullname, project, version, None, username, serial)
    services.plugins(request).emit(event, services.ServiceRegistry.of(request))


@view_config(route_name="project", request_method="DELETE")
def delete_project(request: Request) -> Response:
    """Remove a project and all its files from this index."""
    record = _deletable(request)
    project = normalize(_project_name(request))
    itype = services.indexes(request).type_of(record)
    if not itype.has_project(project):
        raise NotFound(f"no project {project!r} on {record.fullname}")
    who = identity(request)
    itype.delete_project(project, username=who.username if who else None)
    _emit_delete(request, record, project, None)
    return api_reply(request, message=f"project {project!r} deleted")


@view_config(route_name="version", request_method="DELETE")
def delete_version(request: Request) -> Response:
    """Remove one version and its files from this index."""
    record = _deletable(request)
    project = normalize(_project_name(request))
    version = request.matchdict["version"]
    itype = services.indexes(request).type_of(record)
    if itype.version(project, version) is None:
        raise NotFound(f"no version {version!r} of {project!r} on {record.fullname}")
    who = identity(request)
    itype.delete_version(project, version, username=who.username if who else None)
    _emit_delete(request, record, project, version)
    return api_reply(request, message=f"project {project!r} version {version!r} deleted")


MAX_STATUS_REASON = 1000


def _status_from_body(body: object) -> ProjectStatus:
    """``{"project-status": status, "reason": text}`` checked, or a 400 naming the key."""
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object with 'project-status'")
    unknown = sorted(set(body) - {"project-status", "reason"})
    if unknown:
        raise BadRequest(f"unknown keys: {', '.join(unknown)}")
    status = body.get("project-status")
    if status not in PROJECT_STATUSES:
        raise BadRequest(f"project-status must be one of {', '.join(PROJECT_STATUSES)}")
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_STATUS_REASON):
        raise BadRequest(f"reason must be text of at most {MAX_STATUS_REASON} characters")
    return ProjectStatus(status, " ".join(reason.split()) if reason else None)


@view_config(route_name="project", request_method="PATCH")
def patch_project(request: Request) -> Response:
    """Set the PEP 792 status of a project (the index owner or an admin)."""
    record = changeable_index(request, "index_modify")
    project = normalize(_project_name(request))
    status = _status_from_body(json_body(request))
    itype = services.indexes(request).type_of(record)
    if not itype.has_project(project):
        raise NotFound(f"no project {project!r} on {record.fullname}")
    who = identity(request)
    itype.set_project_status(project, status, username=who.username if who else None)
    result = {"project-status": status.status, "reason": status.reason}
    return api_reply(
        request, "projectstatus", result, message=f"{status.message(project)} on {record.fullname}"
    )
