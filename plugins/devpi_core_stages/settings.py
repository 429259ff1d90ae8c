"""The ``plugins.stages`` settings: limits on reading uploaded archives and on tox results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devpi_core import services
from devpi_core.config import SIZE_SCHEMA, parse_size
from devpi_core.specs import ConfigSection

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyramid.registry import Registry
    from pyramid.request import Request

SECTION = "stages"
SCHEMA: dict[str, Any] = {
    "metadata_max_unpacked": SIZE_SCHEMA,
    "metadata_timeout": {"type": "number", "exclusiveMinimum": 0},
    "toxresults_per_file": {"type": "integer", "minimum": 1},
    "toxresult_max_size": SIZE_SCHEMA,
}
# 256M unpacked: gzip inflates ~450 MB/s here (a 4 GiB bomb took 9 s), so at most ~0.6 s of
# one thread per upload; the largest real sdists unpack to well under that before PKG-INFO.
DEFAULTS: dict[str, Any] = {
    "metadata_max_unpacked": "256M",
    "metadata_timeout": 10.0,
    "toxresults_per_file": 50,
    "toxresult_max_size": "1M",
}
HELP = {
    "metadata_max_unpacked": "bytes an sdist may unpack to while its PKG-INFO is searched; "
    "larger uploads are refused with 400 (the bytes read count, not the sizes members declare)",
    "metadata_timeout": "seconds reading an uploaded archive's metadata may take before the "
    "upload is refused with 400",
    "toxresults_per_file": "tox results kept per release file; more are refused with 409",
    "toxresult_max_size": "largest tox result (JSON) accepted; larger ones are refused with 413",
}
CONFIG_SECTION = ConfigSection(SECTION, SCHEMA, DEFAULTS, HELP)


@dataclass(frozen=True)
class StagesSettings:
    """The validated ``plugins.stages`` section."""

    metadata_max_unpacked: int
    metadata_timeout: float
    toxresults_per_file: int
    toxresult_max_size: int

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> StagesSettings:
        """Build from the section (defaults filled in for keys it leaves out)."""
        values = {**DEFAULTS, **section}
        return cls(
            metadata_max_unpacked=parse_size(values["metadata_max_unpacked"]),
            metadata_timeout=float(values["metadata_timeout"]),
            toxresults_per_file=int(values["toxresults_per_file"]),
            toxresult_max_size=parse_size(values["toxresult_max_size"]),
        )


def register(registry: Registry) -> None:
    """Read the section once at start-up and keep it as a service."""
    section = services.settings(registry).plugin(SECTION)
    services.register(registry, StagesSettings, StagesSettings.from_mapping(section))


def stages_settings(request: Request) -> StagesSettings:
    """The ``plugins.stages`` settings of the running server."""
    return services.lookup(request.registry, StagesSettings)
