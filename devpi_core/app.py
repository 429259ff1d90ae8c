"""The Pyramid application: core services, tweens, routes, and the plugins' includes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pyramid.config import Configurator
from pyramid.tweens import EXCVIEW

from devpi_core import page_shortcut, services
from devpi_core.blob_gc import BlobCollector
from devpi_core.bootstrap import Core, open_core
from devpi_core.held import ServePolicies
from devpi_core.metrics import Metrics
from devpi_core.security import DevpiSecurityPolicy
from devpi_core.serverdir import open_serverdir
from devpi_core.simple_pages import SimplePages

if TYPE_CHECKING:
    from pyramid.router import Router

    from devpi_core.config import Settings
    from devpi_core.plugins import Plugins
    from devpi_core.serverdir import ServerDir


def make_app(plugins: Plugins, settings: Settings, serverdir: ServerDir | None = None) -> Router:
    """Build the WSGI app for an initialised server directory.

    Shut it down with ``devpi_core.services.shutdown(app.registry)``.
    """
    serverdir = serverdir or open_serverdir(settings.server.serverdir)
    config = Configurator(settings={})
    core = open_core(plugins, settings, serverdir, config.registry)
    # first registered, last run: the plugins stop and the stores close after everything else
    services.on_shutdown(config.registry, core.close)
    try:
        return _configure(config, core)
    except BaseException:
        services.shutdown(config.registry)
        raise


def _configure(config: Configurator, core: Core) -> Router:
    settings, plugins = core.settings, core.plugins
    _register(config.registry, core)
    config.set_security_policy(DevpiSecurityPolicy())
    config.add_tween("devpi_core.tweens.request_tween_factory", over=EXCVIEW)
    config.add_tween("devpi_core.tweens.sanity_tween_factory", under=EXCVIEW)
    config.add_tween("devpi_core.tweens.fresh_read_tween_factory", under=EXCVIEW,
                     over="devpi_core.tweens.sanity_tween_factory")
    config.add_tween("devpi_core.csrf.csrf_tween_factory", under=EXCVIEW,
                     over="devpi_core.tweens.sanity_tween_factory")
    config.add_tween("devpi_core.views.simple.cached_page_tween_factory",
                     under="devpi_core.tweens.sanity_tween_factory")
    if settings.server.docs_url:
        # over the cached simple pages: the docs origin answers nothing but documentation
        config.add_tween("devpi_core.content_policy.docs_origin_tween_factory",
                         under="devpi_core.tweens.sanity_tween_factory",
                         over="devpi_core.views.simple.cached_page_tween_factory")
    config.include("devpi_core.views")
    for include in plugins.pyramid_includes():
        config.include(include)
    config.commit()
    shortcut = page_shortcut.execution_policy(config.registry)  # knows every tween now
    if shortcut is not None:
        config.set_execution_policy(shortcut)
    return config.make_wsgi_app()


def _register(registry: Any, core: Core) -> None:
    # core's own services are registered by open_core (the plugins' start-up needs them);
    # the page cache is for the web app only
    spill_dir = os.path.join(core.serverdir.tmpdir, "pages")
    os.makedirs(spill_dir, exist_ok=True)
    pages = SimplePages(
        core.store,
        core.indexes,
        core.plugins,
        max_bytes=core.settings.server.page_cache_size,
        max_disk=core.settings.server.page_cache_disk_size,
        spill_dir=spill_dir,
    )
    pages.serve = ServePolicies(
        [spec.factory(core.services) for spec in core.plugins.serve_policies().values()]
    )
    services.register(registry, SimplePages, pages)
    metrics = Metrics()
    metrics.time_store(core.store, core.settings.storage.metadata)
    metrics.add_source(lambda: [("devpi_serial", "gauge", float(core.store.current_serial()))])
    metrics.add_source(lambda: core.plugins.metrics(core.services))
    services.register(registry, Metrics, metrics)
    storage = core.settings.storage
    collector = BlobCollector(core.store, core.blobs, grace=storage.blob_gc_grace,
                              interval=storage.blob_gc_interval)
    metrics.add_source(collector.metrics)
    services.register(registry, BlobCollector, collector)
    services.on_shutdown(registry, collector.stop)
    collector.start()
