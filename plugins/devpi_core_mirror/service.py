"""The mirror service of a running server: per-index runtime state that outlives the index type
objects (which core rebuilds on every configuration change), the file fills under way, the
counters, and the upstream sources.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from devpi_core import services
from devpi_core.errors import StartupError, UpstreamUnavailable
from devpi_core.outbound import OutboundPolicy, origin
from devpi_core.specs import MirrorSourceOptions
from devpi_core_mirror.fills import Fills
from devpi_core_mirror.jobs import JobQueue
from devpi_core_mirror.leases import holder_name
from devpi_core_mirror.metrics import Counters
from devpi_core_mirror.names import ProjectList
from devpi_core_mirror.part import IndexPart
from devpi_core_mirror.project_cache import ProjectPages
from devpi_core_mirror.settings import SECTION, MirrorSettings, default_upstream_url

if TYPE_CHECKING:
    from devpi_core.indextypes import IndexEnv
    from devpi_core.interfaces import MirrorSource
    from devpi_core.records import IndexRecord
    from devpi_core.services import ServiceRegistry
    from devpi_core.specs import MirrorSourceSpec

log = logging.getLogger(__name__)
AuthLookup = Callable[[str, "str | None"], list[str]]


class IndexRuntime(IndexPart):
    """What one mirror index keeps between requests: its pages, its list, its source."""

    def _start(self) -> None:
        parts = (self.index, self.env, self.settings, self.counters, self.writes)
        self.pages = ProjectPages(*parts)
        self.names = ProjectList(*parts)
        self.source_error = ""
        self._source_key: tuple[Any, ...] | None = None

    def configure(self, config: Mapping[str, Any], make: Callable[[], MirrorSource]) -> None:
        """Follow a configuration change; a new upstream gets a new source."""
        key = (config.get("mirror_url"), config.get("mirror_source", "simple"))
        if key != self._source_key:
            self._close_source()
            try:
                self.source, self.source_error = make(), ""
            except UpstreamUnavailable as exc:
                self.source, self.source_error = None, exc.message
            self._source_key = key
        self.config = self.pages.config = self.names.config = config
        self.pages.source = self.names.source = self.source

    def require_source(self) -> MirrorSource:
        """The source, or a 502 saying why there is none."""
        if self.source is None:
            raise UpstreamUnavailable(self.source_error or f"{self.index} has no usable upstream")
        return self.source

    def close(self) -> None:
        """Close the upstream connections (after a background list refresh ended)."""
        self.pages.close()
        self.names.close()
        self._close_source()

    def _close_source(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None


def new_index_defaults(env: IndexEnv, _owner: str) -> dict[str, Any]:
    """What a mirror created without ``mirror_url`` mirrors: ``plugins.mirror.default_url``,
    else the installed pip's default index (devpi-server's default upstream too)."""
    settings = env.services.get(MirrorService).settings
    try:
        return {"mirror_url": settings.default_url or default_upstream_url()}
    except StartupError:  # no pip to ask: the creator must name mirror_url (a 400 says so)
        return {}


class MirrorService:
    """One per process, built and registered by this plugin's ``devpi_startup``."""

    def __init__(
        self,
        settings: MirrorSettings,
        raw_settings: Mapping[str, Any],
        sources: Mapping[str, MirrorSourceSpec],
        auth: AuthLookup,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self.outbound = outbound or OutboundPolicy()
        self.settings = settings
        self.raw_settings = raw_settings
        self.sources = dict(sources)
        self.auth = auth
        self.counters = Counters()
        self.fills = Fills()
        self.holder = holder_name()  # this server as a lease holder (fills, the name list)
        self.writes = JobQueue("devpi-mirror-writes")
        self._runtimes: dict[str, IndexRuntime] = {}
        self._lock = threading.Lock()

    def runtime(self, env: IndexEnv, record: IndexRecord) -> IndexRuntime:
        """The runtime of ``record``'s index, configured for its current configuration."""
        with self._lock:
            found = self._runtimes.get(record.fullname)
            if found is None:
                found = IndexRuntime(
                    record.fullname, env, self.settings, self.counters, self.writes
                )
                self._runtimes[record.fullname] = found
            found.configure(record.config, lambda: self._make_source(record))
        return found

    def drop(self, fullname: str) -> None:
        """Forget a deleted index."""
        with self._lock:
            runtime = self._runtimes.pop(fullname, None)
        if runtime is not None:
            runtime.close()

    def _make_source(self, record: IndexRecord) -> MirrorSource:
        name = record.config.get("mirror_source", "simple")
        spec = self.sources.get(name)
        if spec is None:
            raise UpstreamUnavailable(
                f"{record.fullname}: mirror_source {name!r} is not available; "
                f"available: {', '.join(sorted(self.sources)) or 'none'}"
            )
        from devpi_core_mirror.client import user_agent  # noqa: PLC0415 - requests loads on first use

        url = str(record.config["mirror_url"])
        options = MirrorSourceOptions(
            index=record.fullname,
            url=url,
            credentials=self._credentials(record.fullname, url),
            timeout=self.settings.timeout,
            list_timeout=self.settings.list_timeout,
            file_timeout=self.settings.file_timeout,
            user_agent=user_agent(),
            extra_authorization=lambda www: self.auth(url, www),
            settings=self.raw_settings,
            outbound=self.outbound,
        )
        return spec.factory(options)

    def _credentials(self, fullname: str, url: str) -> tuple[str, str] | None:
        configured = self.settings.credentials.get(fullname)
        if configured is None:
            return None
        found = configured.for_url(url)
        if found is None:
            # the index now points elsewhere (changed, or deleted and created again by someone
            # else): the credentials stay with the upstream they were configured for
            log.warning(
                "%s: credentials are configured for %s, not for its mirror_url; not sending them",
                fullname,
                "://".join(origin(configured.url)[:2]),
            )
        return found

    def close(self) -> None:
        """Store what is queued, stop fills and close every source (server shutdown)."""
        self.writes.close()
        self.fills.shutdown()
        with self._lock:
            runtimes = list(self._runtimes.values())
            self._runtimes.clear()
        for runtime in runtimes:
            runtime.close()


    def metrics(self) -> list[tuple[str, str, float]]:
        """The counters of this server's mirrors, for ``devpi_metrics``."""
        return [
            *self.counters.report(),
            ("devpi_mirror_fills_running", "gauge", float(self.fills.running())),
            ("devpi_mirror_writes_pending", "gauge", float(self.writes.pending())),
        ]


def start(registry: ServiceRegistry) -> MirrorService:
    """Build the mirror service of this process and register it (``devpi_startup``)."""
    plugins = services.plugins(registry)
    settings = services.settings(registry)
    service = MirrorService(
        settings.section(SECTION, MirrorSettings),
        settings.plugin(SECTION),
        plugins.mirror_sources(),
        plugins.mirror_auth,
        services.outbound_policy(registry),
    )
    registry.register(MirrorService, service)
    return service
