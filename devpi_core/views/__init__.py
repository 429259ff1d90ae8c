"""Core HTTP routes. Plugins add views to these route names, or routes of their own."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyramid.config import Configurator

# User, index and project names never start with "+": the patterns say so, which leaves every
# "+" segment free for core and plugin routes ("/+hello", "/{user}/{index}/+hello") whatever
# order they are added in, and lets the busiest (simple pages, files) be tried first.
_U = "{user:[^+/][^/]*}"
_I = "{index:[^+/][^/]*}"
_P = "{project:[^+/][^/]*}"
ROUTES = (
    ("simple_project", f"/{_U}/{_I}/+simple/{{project}}{{slash:/?}}"),
    ("file_f", f"/{_U}/{_I}/+f/{{relpath:.+}}"),
    # simple pages link files through these aliases (see devpi_core.simple_render)
    ("file_f_alias", f"/{_U}/{_I}/_f/{{relpath:.+}}"),
    ("file_e_alias", f"/{_U}/{_I}/_e/{{relpath:.+}}"),
    ("api", "/+api"),
    ("login", "/+login"),
    ("status", "/+status"),
    ("metrics", "/+metrics"),
    ("ready", "/+ready"),
    ("root", "/"),
    ("user_api", f"/{_U}/+api"),
    ("user", f"/{_U}{{slash:/?}}"),
    ("index_api", f"/{_U}/{_I}/+api"),
    ("simple_list", f"/{_U}/{_I}/+simple{{slash:/?}}"),
    ("simple_refresh", f"/{_U}/{_I}/+simple/{{project}}/refresh"),
    ("file_e", f"/{_U}/{_I}/+e/{{relpath:.+}}"),
    ("index", f"/{_U}/{_I}{{slash:/?}}"),
    ("project", f"/{_U}/{_I}/{_P}{{slash:/?}}"),
    ("version", f"/{_U}/{_I}/{_P}/{{version}}{{slash:/?}}"),
    # documentation, served by the index type that stores it; core knows the route because
    # with server.docs_url it is the only one served on the docs origin (content_policy)
    ("doc", f"/{_U}/{_I}/{_P}/{{version}}/+doc{{relpath:(/.*)?}}"),
    # PyPI's JSON API (devpi_core.views.pypi_json)
    ("pypi_json_project", f"/{_U}/{_I}/pypi/{_P}/json"),
    ("pypi_json_version", f"/{_U}/{_I}/pypi/{_P}/{{version}}/json"),
)


def includeme(config: Configurator) -> None:
    """Add the core routes and scan the core views."""
    for name, pattern in ROUTES:
        config.add_route(name, pattern)
    config.scan("devpi_core.views")
