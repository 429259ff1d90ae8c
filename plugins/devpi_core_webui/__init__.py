"""The web UI: server-rendered HTML pages for browsers on the same URLs as the JSON API.

Users and their indexes, an index's configuration and projects, a project's versions and
files, a version's metadata and rendered description, tox results, documentation link and log,
server status and a project search. Only browsers get these pages (see
:mod:`devpi_core_webui.negotiation`); installers, devpi-client and curl keep getting core's
answers. Disable with ``plugins: {disabled: [webui]}``.

Hook implementations only; the work happens in the modules they name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devpi_core import hookimpl
from devpi_core import services as service_lookup
from devpi_core_webui import readme

if TYPE_CHECKING:
    from devpi_core.services import ServiceRegistry


@hookimpl
def devpi_pyramid_includes() -> list[str]:
    """The HTML views, the search page, the stylesheet and the browser error pages."""
    return ["devpi_core_webui.views"]


@hookimpl
def devpi_startup(services: ServiceRegistry) -> None:
    """Render descriptions at upload: ``devpi_on_upload`` carries no registry, so this server's
    renderer registers its own hook implementation, bound to this server's services."""
    renderer = readme.UploadRenderer(services)
    service_lookup.plugins(services).pm.register(renderer, name=readme.UPLOAD_RENDERER)


@hookimpl
def devpi_shutdown(services: ServiceRegistry) -> None:
    """Take this server's upload renderer out again."""
    pm = service_lookup.plugins(services).pm
    if pm.get_plugin(readme.UPLOAD_RENDERER) is not None:
        pm.unregister(name=readme.UPLOAD_RENDERER)
