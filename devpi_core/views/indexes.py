"""Indexes: ``GET``/``PUT``/``PATCH``/``DELETE /<user>/<index>``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyramid.view import view_config

from devpi_core import services
from devpi_core.errors import BadRequest, Conflict
from devpi_core.model.names import check_name
from devpi_core.records import IndexEvent, IndexRecord
from devpi_core.views.simple import project_list_response, wants_simple_list
from devpi_core.web import (
    api_reply,
    changeable_index,
    identity,
    json_body,
    json_object,
    readable_index,
    require_user_permission,
)

if TYPE_CHECKING:
    from pyramid.request import Request
    from pyramid.response import Response


def _emit(request: Request, fullname: str, action: str, config: Any) -> None:
    who = identity(request)
    serial = services.metadata_store(request).current_serial()
    event = IndexEvent(fullname, action, config, who.username if who else None, serial)
    services.plugins(request).emit(event, services.ServiceRegistry.of(request))


def index_config(request: Request, record: IndexRecord, *, projects: bool) -> dict[str, Any]:
    """The ``indexconfig`` result: stored keys, plus ``projects`` unless left out."""
    result = dict(record.config)
    if projects:
        names = services.indexes(request).type_of(record).project_names()
        result["projects"] = sorted(names)
    return result


@view_config(route_name="index", request_method="GET")
def get_index(request: Request) -> Response:
    """The index configuration (JSON), or the simple project list for installers."""
    record = readable_index(request)
    if wants_simple_list(request):
        return project_list_response(request, record)
    no_projects = "no_projects" in request.GET
    result = index_config(request, record, projects=not no_projects)
    return api_reply(request, "indexconfig", result)


@view_config(route_name="index", request_method="PUT")
def create_index(request: Request) -> Response:
    """Create an index (200, as devpi answers); 404 without the user, 409 if it exists, then
    403 without permission (devpi-server's order)."""
    user = request.matchdict["user"]
    name = check_name("index", request.matchdict["index"])
    body = json_object(request) if request.body else {}
    indexes = services.indexes(request)
    services.users(request).require(user)
    if indexes.get(f"{user}/{name}") is not None:
        raise Conflict(f"index {user}/{name} exists")
    require_user_permission(
        request, "index_create", user, message=f"no permission to create index {user}/{name}"
    )
    record = indexes.create(user, name, body)
    _emit(request, record.fullname, "created", record.config)
    return api_reply(request, "indexconfig", dict(record.config))


@view_config(route_name="index", request_method="PATCH")
def modify_index(request: Request) -> Response:
    """Change an index: a dict of keys, or devpi's ``["key=value", "key+=value", ...]``."""
    record = changeable_index(request, "index_modify")
    body = json_body(request)
    if isinstance(body, dict) and body.get("type") == "indexconfig" and "result" in body:
        body = body["result"]
    if not isinstance(body, (dict, list)):
        raise BadRequest("expected a JSON object of keys or a list of 'key=value' operations")
    updated = services.indexes(request).modify(record.fullname, body)
    if "error_on_noop" in request.GET and updated.serial == record.serial:
        raise BadRequest("the change did not change anything")
    _emit(request, updated.fullname, "modified", updated.config)
    return api_reply(request, "indexconfig", dict(updated.config))


@view_config(route_name="index", request_method="DELETE")
def delete_index(request: Request) -> Response:
    """Delete a volatile index and its files (201, as devpi answers)."""
    record = changeable_index(request, "index_delete")
    services.indexes(request).delete(record.fullname)
    _emit(request, record.fullname, "deleted", None)
    return api_reply(request, message=f"index {record.fullname} deleted", status=201)
