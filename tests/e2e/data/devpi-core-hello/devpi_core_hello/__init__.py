"""An example devpi-core plugin: hook implementations only; the work lives in the modules.

devpi-core finds this module through the ``devpi_core`` entry point in setup.cfg and registers
every function marked with ``@hookimpl``. Each hook is documented in ``devpi_core.hookspecs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from devpi_core import hookimpl
from devpi_core.specs import ConfigSection, IndexKey, IndexTypeSpec, setting
from devpi_core_hello.group import GroupIndex


@dataclass(frozen=True)
class HelloSettings:
    """Settings under ``plugins.hello``, each declared once: default, help and JSON Schema.

    devpi-core validates the file against the schemas (typos and wrong types are errors),
    documents the keys in ``devpi-core plugins`` and ``devpi-core gen-config``, and hands the
    views this object (``Settings.section("hello", HelloSettings)``).
    """

    greeting: str = setting(
        "Hello from a devpi-core plugin",
        "what GET /+hello answers",
        {"type": "string", "minLength": 1},
    )


@hookimpl
def devpi_config_sections() -> list[ConfigSection]:
    """The ``plugins.hello`` section of the configuration file."""
    return [ConfigSection.declare("hello", HelloSettings)]


@hookimpl
def devpi_pyramid_includes() -> list[str]:
    """Routes and views, added with Pyramid's ``config.include``."""
    return ["devpi_core_hello.views"]


@hookimpl
def devpi_index_types() -> list[IndexTypeSpec]:
    """The ``group`` index type: its name, how to build it and the keys it accepts."""
    bases = IndexKey("bases", "bases", default=[], help="indexes whose releases the group serves")
    return [IndexTypeSpec("group", GroupIndex, (bases,))]
