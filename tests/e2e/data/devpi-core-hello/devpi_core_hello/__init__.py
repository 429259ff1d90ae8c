"""An example devpi-core plugin: hook implementations only; the work lives in the modules.

devpi-core finds this module through the ``devpi_core`` entry point in setup.cfg and registers
every function marked with ``@hookimpl``. Each hook is documented in ``devpi_core.hookspecs``.
"""

from __future__ import annotations

from devpi_core import hookimpl
from devpi_core.specs import ConfigSection, IndexKey, IndexTypeSpec
from devpi_core_hello.group import GroupIndex

# Settings under ``plugins.hello``: a JSON Schema per key, defaults and help. devpi-core
# validates the file against it (typos and wrong types are errors) and documents it in
# ``devpi-core plugins`` and ``devpi-core gen-config``.
SCHEMA = {"greeting": {"type": "string", "minLength": 1}}
DEFAULTS = {"greeting": "Hello from a devpi-core plugin"}
HELP = {"greeting": "what GET /+hello answers"}


@hookimpl
def devpi_config_sections() -> list[ConfigSection]:
    """The ``plugins.hello`` section of the configuration file."""
    return [ConfigSection("hello", SCHEMA, DEFAULTS, HELP)]


@hookimpl
def devpi_pyramid_includes() -> list[str]:
    """Routes and views, added with Pyramid's ``config.include``."""
    return ["devpi_core_hello.views"]


@hookimpl
def devpi_index_types() -> list[IndexTypeSpec]:
    """The ``group`` index type: its name, how to build it and the keys it accepts."""
    bases = IndexKey("bases", "bases", default=[], help="indexes whose releases the group serves")
    return [IndexTypeSpec("group", GroupIndex, (bases,))]
