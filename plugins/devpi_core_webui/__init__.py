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
from devpi_core_webui import readme

if TYPE_CHECKING:
    from devpi_core.records import UploadEvent
    from devpi_core.services import ServiceRegistry


@hookimpl
def devpi_pyramid_includes() -> list[str]:
    """The HTML views, the search page, the stylesheet and the browser error pages."""
    return ["devpi_core_webui.views"]


@hookimpl
def devpi_on_upload(event: UploadEvent, services: ServiceRegistry) -> None:
    """Render the uploaded version's description once, so its page never waits for it."""
    readme.render_uploaded(services, event)
