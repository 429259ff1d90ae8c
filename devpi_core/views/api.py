"""Server-level API: ``/+api``, ``/+login`` and ``/+status``."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from pyramid.view import view_config

from devpi_core import __version__, services
from devpi_core.errors import BadRequest, NotFound, Unauthorized
from devpi_core.records import Credentials
from devpi_core.web import api_reply, identity, json_object, server_url

if TYPE_CHECKING:
    from pyramid.request import Request
    from pyramid.response import Response

BASE_FEATURES = ("server-keyvalue-parsing",)
STARTED = time.time()


@view_config(route_name="api", request_method="GET")
@view_config(route_name="user_api", request_method="GET")
@view_config(route_name="index_api", request_method="GET")
def api(request: Request) -> Response:
    """Endpoints and features devpi-client reads; per index also its simple and upload URLs."""
    root = server_url(request)
    who = identity(request)
    features = sorted({*BASE_FEATURES, *services.plugins(request).api_features()})
    result: dict[str, Any] = {
        "login": f"{root}/+login",
        "authstatus": ["ok", who.username, list(who.groups)] if who else ["noauth", "", []],
        "features": features,
    }
    if "index" in request.matchdict:
        user, name = request.matchdict["user"], request.matchdict["index"]
        record = services.indexes(request).get(f"{user}/{name}")
        if record is None:
            raise NotFound(f"no index {user}/{name}")
        result["index"] = f"{root}/{user}/{name}"
        result["simpleindex"] = f"{root}/{user}/{name}/+simple/"
        if not services.indexes(request).is_mirror(record):
            result["pypisubmit"] = f"{root}/{user}/{name}/"
    return api_reply(request, "apiconfig", result)


@view_config(route_name="login", request_method="POST")
def login(request: Request) -> Response:
    """Exchange a password for a signed, expiring token."""
    body = json_object(request)
    user, password = body.get("user"), body.get("password")
    if not isinstance(user, str) or not isinstance(password, str):
        raise BadRequest("Missing 'user' or 'password' (strings) in the JSON body")
    plugins = services.plugins(request)
    found = plugins.authenticate(request, Credentials(user, password, "login"))
    if found is None or found.username != user:
        # as devpi-server: no Basic challenge, the client asked with a JSON body
        raise Unauthorized(f"user {user!r} could not be authenticated", challenge=False)
    token = plugins.issue_login_token(request, found)
    if token is None:
        raise Unauthorized("no plugin issues login tokens", challenge=False)
    result = {"password": token.token, "expiration": token.expiration}
    return api_reply(request, "proxyauth", result, message="login successful")


@view_config(route_name="status", request_method="GET")
def status(request: Request) -> Response:
    """Server state: devpi's keys (``versioninfo``, ``serial``, ``role``...) plus metrics."""
    settings = services.settings(request)
    serial = services.metadata_store(request).current_serial()
    versions = {"devpi-core": __version__, "python": sys.version.split()[0]}
    for info in services.plugins(request).infos:
        if not info.bundled and info.version:
            versions[info.dist] = info.version
    result = {
        "serverdir": settings.server.serverdir,
        "uuid": services.serverdir(request).uuid,
        "versioninfo": versions,
        "server-code": "devpi-core",
        "host": settings.server.host,
        "port": settings.server.port,
        "outside-url": settings.server.outside_url,
        "serial": serial,
        "last-commit-timestamp": None,
        "event-serial": serial,
        "event-serial-timestamp": None,
        "event-serial-in-sync-at": None,
        "started-at": STARTED,
        "role": "MASTER",
        "polling_replicas": {},
        "metrics": [
            list(m) for m in services.plugins(request).metrics(services.ServiceRegistry.of(request))
        ],
        "plugins": services.plugins(request).names(),
    }
    return api_reply(request, "status", result)

