"""The ``plugins.stages`` settings: limits on reading uploaded archives and on tox results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from devpi_core import services
from devpi_core.specs import ConfigSection, setting, size_setting

if TYPE_CHECKING:
    from pyramid.registry import Registry
    from pyramid.request import Request

SECTION = "stages"


@dataclass(frozen=True)
class StagesSettings:
    """The ``plugins.stages`` section."""

    # 256M unpacked: gzip inflates ~450 MB/s here (a 4 GiB bomb took 9 s), so at most ~0.6 s of
    # one thread per upload; the largest real sdists unpack to well under that before PKG-INFO.
    metadata_max_unpacked: int = size_setting(
        "256M",
        "bytes an sdist may unpack to while its PKG-INFO is searched; larger uploads are refused "
        "with 400 (the bytes read count, not the sizes members declare)",
    )
    metadata_timeout: float = setting(
        10.0,
        "seconds reading an uploaded archive's metadata may take before the upload is refused "
        "with 400",
        {"type": "number", "exclusiveMinimum": 0},
        convert=float,
    )
    toxresults_per_file: int = setting(
        50,
        "tox results kept per release file; more are refused with 409",
        {"type": "integer", "minimum": 1},
    )
    toxresult_max_size: int = size_setting(
        "1M", "largest tox result (JSON) accepted; larger ones are refused with 413"
    )


CONFIG_SECTION = ConfigSection.declare(SECTION, StagesSettings)


def register(registry: Registry) -> None:
    """Read the section once at start-up and keep it as a service."""
    settings = services.settings(registry).section(SECTION, StagesSettings)
    services.register(registry, StagesSettings, settings)


def stages_settings(request: Request) -> StagesSettings:
    """The ``plugins.stages`` settings of the running server."""
    return services.lookup(request.registry, StagesSettings)
