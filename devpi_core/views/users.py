"""Users: ``GET /``, and ``GET``/``PUT``/``PATCH``/``DELETE /<user>``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyramid.view import view_config

from devpi_core import services
from devpi_core.errors import BadRequest
from devpi_core.model.names import check_name
from devpi_core.model.users import PUBLIC_KEYS, public_view
from devpi_core.records import Identity, IndexEvent
from devpi_core.web import (
    api_reply,
    identity,
    json_object,
    readable_index_configs,
    require_user_permission,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyramid.request import Request
    from pyramid.response import Response


@view_config(route_name="root", request_method="GET")
def list_users(request: Request) -> Response:
    """``{username: userconfig}`` for every user, with the indexes the caller may read."""
    result = {
        name: public_view(name, record, readable_index_configs(request, name))
        for name, record in services.users(request).all().items()
    }
    return api_reply(request, "list:userconfig", result)


@view_config(route_name="user", request_method="GET")
def get_user(request: Request) -> Response:
    """One user's public configuration with the indexes the caller may read."""
    name = request.matchdict["user"]
    record = services.users(request).require(name)
    result = public_view(name, record, readable_index_configs(request, name))
    return api_reply(request, "userconfig", result)


@view_config(route_name="user", request_method="PUT")
def create_user(request: Request) -> Response:
    """Create a user (201); 409 if the name is taken."""
    name = check_name("user", request.matchdict["user"])
    require_user_permission(request, "user_create", name)
    record = services.users(request).create(name, json_object(request))
    return api_reply(request, "userconfig", public_view(name, record, {}), status=201)


@view_config(route_name="user", request_method="PATCH")
def modify_user(request: Request) -> Response:
    """Change a user's password or public fields; a new password also returns a new token."""
    name = request.matchdict["user"]
    body = json_object(request)
    users = services.users(request)
    record = users.require(name)
    permission = "user_modify_password" if _only_password(body, record) else "user_modify"
    require_user_permission(request, permission, name)
    if not users.modify(name, body):
        return api_reply(request, message="user updated")
    token = services.plugins(request).issue_login_token(request, Identity(name))
    if token is None:
        return api_reply(request, message="user updated")
    result = {"password": token.token, "expiration": token.expiration}
    return api_reply(request, "userpassword", result, message="user updated, new proxy auth")


def _only_password(body: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Whether a PATCH changes nothing but the password.

    devpi-client's ``passwd`` sends the whole userconfig back with the new password; keys that
    are ignored on PATCH or equal to the stored value do not count as changes.
    """
    changes = {
        key for key, value in body.items()
        if key in PUBLIC_KEYS and value != record.get(key)
        and not (value in (None, "") and key not in record)
    }
    return "password" in body and not changes and "pwhash" not in body


@view_config(route_name="user", request_method="DELETE")
def delete_user(request: Request) -> Response:
    """Delete a user and all their (volatile) indexes."""
    name = request.matchdict["user"]
    users = services.users(request)
    # permission first, as devpi-server: only who may delete the user learns it is missing
    require_user_permission(request, "user_delete", name)
    users.require(name)
    indexes = services.indexes(request)
    owned = sorted(indexes.of_user(name))
    users.delete(name, indexes.delete_user_indexes)
    who = identity(request)
    plugins = services.plugins(request)
    serial = services.metadata_store(request).current_serial()
    username = who.username if who else None
    for index in owned:
        plugins.emit(IndexEvent(f"{name}/{index}", "deleted", None, username, serial),
                     services.ServiceRegistry.of(request))
    return api_reply(request, message=f"user {name!r} deleted")


@view_config(route_name="user", request_method=("POST", "PUSH"))
def user_post(request: Request) -> Response:
    """devpi has no POST on users either."""
    raise BadRequest("POST is not supported on users; use PUT to create, PATCH to modify")
