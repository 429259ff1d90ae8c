"""The ``stage`` index type: uploads, volatile indexes, ACLs, push, yanking, tox results, docs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devpi_core import hookimpl
from devpi_core import services as services_module
from devpi_core.model.acl import ANONYMOUS
from devpi_core.specs import ConfigSection, IndexKey, IndexTypeSpec
from devpi_core_stages.rules import new_index_defaults
from devpi_core_stages.search_docs import build_missing
from devpi_core_stages.settings import CONFIG_SECTION
from devpi_core_stages.stage import StageIndex

if TYPE_CHECKING:
    from devpi_core.services import ServiceRegistry

STAGE_KEYS = (
    IndexKey("bases", "bases", default=[], help="indexes whose releases this one serves too"),
    IndexKey(
        "volatile",
        "bool",
        default=True,
        help="allow overwriting and deleting releases (false: 409 on re-upload)",
    ),
    IndexKey("acl_upload", "acl", default=[], help="who may upload (default: the owner)"),
    IndexKey("acl_toxresult_upload", "acl", default=[ANONYMOUS], help="who may upload tox results"),
    IndexKey(
        "mirror_whitelist",
        "names",
        default=[],
        help="private names that may still come from mirror bases ('*' for all)",
    ),
    IndexKey(
        "mirror_whitelist_inheritance",
        "choice",
        default="intersection",
        choices=("intersection", "union"),
        help="how whitelists of several private indexes combine",
    ),
)


@hookimpl
def devpi_config_sections() -> list[ConfigSection]:
    """``plugins.stages``: limits on reading uploaded archives and on tox results."""
    return [CONFIG_SECTION]


@hookimpl
def devpi_startup(services: ServiceRegistry) -> None:
    """Write the search documents of projects stored before stages kept them."""
    build_missing(services_module.metadata_store(services))


@hookimpl
def devpi_index_types() -> list[IndexTypeSpec]:
    """The ``stage`` type."""
    return [IndexTypeSpec("stage", StageIndex, STAGE_KEYS, defaults=new_index_defaults)]


@hookimpl
def devpi_pyramid_includes() -> list[str]:
    """Upload, push, tox result, yank and documentation views."""
    return ["devpi_core_stages.views"]


@hookimpl
def devpi_api_features() -> list[str]:
    """What devpi-client checks before using push options."""
    return ["push-no-docs", "push-only-docs", "push-register-project"]
