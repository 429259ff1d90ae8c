"""``/+status`` for browsers: the numbers core's JSON status answers, as a page."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from devpi_core import __version__, services
from devpi_core_webui.layout import Site, crumbs, render
from devpi_core_webui.markup import deflist, el, join, log_time, table

if TYPE_CHECKING:
    from pyramid.request import Request
    from pyramid.response import Response


def _metric_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def status_page(request: Request) -> Response:
    """Serial, versions, plugins and metrics."""
    site = Site.of(request)
    settings = services.settings(request)
    plugins = services.plugins(request)
    summary = deflist((
        ("Server", f"devpi-core {__version__}"),
        ("Python", sys.version.split()[0]),
        ("Serial", str(services.metadata_store(request).current_serial())),
        ("UUID", el("code", services.serverdir(request).uuid)),
        ("Offline mode", "yes" if settings.server.offline_mode else "no"),
        ("Outside URL", settings.server.outside_url or site.root),
        ("Storage", f"metadata: {settings.storage.metadata}, blobs: {settings.storage.blobs}"),
    ), class_="config")
    plugin_rows = [(info.name, info.dist, info.version or "", el("code", info.module),
                    "bundled" if info.bundled else "third-party") for info in plugins.infos]
    metrics = plugins.metrics(services.ServiceRegistry.of(request))
    metric_rows = [(name, kind, _metric_value(value)) for name, kind, value in metrics]
    body = join((
        summary,
        el("h2", "Plugins"), table(("Name", "Distribution", "Version", "Module", ""), plugin_rows),
        el("h2", "Metrics"),
        table(("Name", "Kind", "Value"), metric_rows, class_="metrics") if metric_rows
        else el("p", "No plugin reports metrics.", class_="empty"),
        el("p", "Rendered at ", log_time(time.time()), class_="note"),
    ))
    return render(site, "Status", body, nav=crumbs(site, ("status", ("+status",))))
