"""``GET /+hello``: answers the configured greeting the way devpi answers everything (JSON)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devpi_core import services
from devpi_core.web import api_reply
from devpi_core_hello import HelloSettings

if TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.request import Request
    from pyramid.response import Response


def hello(request: Request) -> Response:
    """The greeting from ``plugins.hello.greeting``, and the group indexes of the server."""
    settings = services.settings(request).section("hello", HelloSettings)
    indexes = services.indexes(request)
    groups = sorted(
        f"{user}/{name}"
        for user in services.users(request).names()
        for name, config in indexes.of_user(user).items()
        if config["type"] == "group"
    )
    return api_reply(request, "hello", {"greeting": settings.greeting, "groups": groups})


def includeme(config: Configurator) -> None:
    """Core leaves every path segment starting with ``+`` to routes like this one."""
    config.add_route("hello", "/+hello")
    config.add_view(hello, route_name="hello", request_method="GET")
