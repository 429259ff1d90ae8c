"""devpi-core's embedded storage: metadata in SQLite, file contents on the local filesystem."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devpi_core import hookimpl
from devpi_core.specs import ConfigSection, StorageBackend, build, setting
from devpi_core_fsstore.blob_store import FileBlobStore
from devpi_core_fsstore.sqlite_store import SQLiteStore

if TYPE_CHECKING:
    from collections.abc import Mapping

SECTION = "fsstore"


@dataclass(frozen=True)
class FsstoreSettings:
    """The ``plugins.fsstore`` section."""

    sqlite_path: str | None = setting(
        None,
        "SQLite database file; default <serverdir>/metadata.sqlite",
        {"type": ["string", "null"]},
    )
    blob_dir: str | None = setting(
        None, "directory of file contents; default <serverdir>/+blobs", {"type": ["string", "null"]}
    )
    synchronous: str = setting(
        "normal",
        "normal survives a killed process; full also survives power loss (slower)",
        {"enum": ["normal", "full"]},
    )


@hookimpl
def devpi_config_sections() -> list[ConfigSection]:
    """The ``plugins.fsstore`` section."""
    return [ConfigSection.declare(SECTION, FsstoreSettings)]


def _sqlite(serverdir: str, section: Mapping[str, Any]) -> SQLiteStore:
    settings = build(FsstoreSettings, section)
    path = settings.sqlite_path or os.path.join(serverdir, "metadata.sqlite")
    return SQLiteStore(path, synchronous=settings.synchronous)


def _files(serverdir: str, section: Mapping[str, Any]) -> FileBlobStore:
    settings = build(FsstoreSettings, section)
    return FileBlobStore(settings.blob_dir or os.path.join(serverdir, "+blobs"))


@hookimpl
def devpi_metadata_backends() -> list[StorageBackend]:
    """SQLite in WAL mode."""
    return [StorageBackend("sqlite", _sqlite, "SQLite database in the server directory", "fsstore")]


@hookimpl
def devpi_blob_backends() -> list[StorageBackend]:
    """Content-addressed files on disk."""
    description = "content-addressed files in the server directory"
    return [StorageBackend("fs", _files, description, "fsstore")]
