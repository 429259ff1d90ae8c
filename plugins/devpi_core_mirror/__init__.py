"""The ``mirror`` index type and the ``simple`` mirror source: root/pypi, a robust PyPI cache.

Hook implementations only; the work happens in the modules they name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devpi_core import hookimpl
from devpi_core.specs import ConfigSection, IndexTypeSpec, MirrorSourceSpec
from devpi_core_mirror import service
from devpi_core_mirror.index import MirrorIndex
from devpi_core_mirror.service import new_index_defaults
from devpi_core_mirror.settings import (
    CONFIG_SECTION,
    MIRROR_KEYS,
    SECTION,
    MirrorSettings,
    default_upstream_url,
    validate_index,
    web_url_fmt,
)

if TYPE_CHECKING:
    from devpi_core.config import Settings
    from devpi_core.interfaces import MirrorSource
    from devpi_core.services import ServiceRegistry
    from devpi_core.specs import MirrorSourceOptions


@hookimpl
def devpi_config_sections() -> list[ConfigSection]:
    """``plugins.mirror``: time-outs, default expiry, credentials, root/pypi on init."""
    return [CONFIG_SECTION]


@hookimpl
def devpi_index_types() -> list[IndexTypeSpec]:
    """The ``mirror`` type (a new one mirrors the default upstream unless told otherwise)."""
    return [
        IndexTypeSpec(
            "mirror",
            MirrorIndex,
            MIRROR_KEYS,
            is_mirror=True,
            validate=validate_index,
            defaults=new_index_defaults,
        )
    ]


@hookimpl
def devpi_mirror_sources() -> list[MirrorSourceSpec]:
    """The ``simple`` source: PEP 691 JSON, PEP 503 HTML."""
    return [
        MirrorSourceSpec(
            "simple", simple_source, "an upstream speaking the Simple API (PEP 503/691)"
        )
    ]


def simple_source(options: MirrorSourceOptions) -> MirrorSource:
    """Build the ``simple`` source (``requests`` is imported on first use, not at start-up)."""
    from devpi_core_mirror.source import SimpleSource  # noqa: PLC0415

    return SimpleSource(options)


@hookimpl
def devpi_default_indexes(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """root/pypi, mirroring the installed pip's default index (unless switched off)."""
    mirror = settings.section(SECTION, MirrorSettings)
    if not mirror.init_root_pypi:
        return []
    url = mirror.default_url or default_upstream_url()
    return [
        (
            "root/pypi",
            {
                "type": "mirror",
                "volatile": False,
                "title": "PyPI",
                "mirror_url": url,
                "mirror_web_url_fmt": web_url_fmt(url),
            },
        )
    ]


@hookimpl
def devpi_startup(services: ServiceRegistry) -> None:
    """The mirror service: per-index state shared by requests, fills, the write queue."""
    service.start(services)


@hookimpl
def devpi_shutdown(services: ServiceRegistry) -> None:
    """Store what is queued, stop the fills, close the upstream connections."""
    services.get(service.MirrorService).close()


@hookimpl
def devpi_metrics(services: ServiceRegistry) -> list[tuple[str, str, float]]:
    """The mirrors' counters, fills and pending writes in ``/+status``."""
    return services.get(service.MirrorService).metrics()
