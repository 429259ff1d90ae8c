"""Core HTTP routes. Plugins add views to these route names, or routes of their own."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyramid.config import Configurator

# (name, pattern) in matching order; user and index names never start with "+", so the
# patterns exclude each other and the busiest (simple pages, files) can be tried first.
ROUTES = (
    ("simple_project", "/{user}/{index}/+simple/{project}{slash:/?}"),
    ("file_f", "/{user}/{index}/+f/{relpath:.+}"),
    ("api", "/+api"),
    ("login", "/+login"),
    ("status", "/+status"),
    ("root", "/"),
    ("user_api", "/{user}/+api"),
    ("user", "/{user}{slash:/?}"),
    ("index_api", "/{user}/{index}/+api"),
    ("simple_list", "/{user}/{index}/+simple{slash:/?}"),
    ("simple_refresh", "/{user}/{index}/+simple/{project}/refresh"),
    ("file_e", "/{user}/{index}/+e/{relpath:.+}"),
    ("index", "/{user}/{index}{slash:/?}"),
    ("project", "/{user}/{index}/{project}{slash:/?}"),
    ("version", "/{user}/{index}/{project}/{version}{slash:/?}"),
)


def includeme(config: Configurator) -> None:
    """Add the core routes and scan the core views."""
    for name, pattern in ROUTES:
        config.add_route(name, pattern)
    config.scan("devpi_core.views")
