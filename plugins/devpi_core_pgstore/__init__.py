"""devpi-core's metadata store on PostgreSQL, for several nodes sharing one database.

Enabled with ``storage: {metadata: postgresql}`` and configured in ``plugins.pgstore``; needs
the ``postgresql`` extra (``pip install 'devpi-core[postgresql]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devpi_core import hookimpl
from devpi_core.errors import StartupError
from devpi_core.specs import ConfigSection, StorageBackend, build
from devpi_core_pgstore.settings import SECTION, PgstoreSettings

if TYPE_CHECKING:
    from collections.abc import Mapping

    from devpi_core.interfaces import MetadataStore


@hookimpl
def devpi_config_sections() -> list[ConfigSection]:
    """The ``plugins.pgstore`` section."""
    return [ConfigSection.declare(SECTION, PgstoreSettings)]


def open_store(serverdir: str, section: Mapping[str, Any]) -> MetadataStore:
    """Build the store from the ``plugins.pgstore`` section (``serverdir`` is not used)."""
    settings = build(PgstoreSettings, section)
    if not settings.dsn:
        raise StartupError("storage.metadata is postgresql but plugins.pgstore.dsn is empty")
    try:
        from devpi_core_pgstore.pg_store import PgStore  # noqa: PLC0415 - optional extra
    except ImportError as exc:
        raise StartupError(
            f"the postgresql metadata store needs the 'postgresql' extra: {exc}"
        ) from None
    return PgStore(settings)


@hookimpl
def devpi_metadata_backends() -> list[StorageBackend]:
    """PostgreSQL, shared by every node of a cluster."""
    description = "PostgreSQL database shared by several nodes (extra 'postgresql')"
    return [StorageBackend("postgresql", open_store, description, SECTION)]
