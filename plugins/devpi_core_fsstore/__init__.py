"""devpi-core's embedded storage: metadata in SQLite, file contents on the local filesystem."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from devpi_core import hookimpl
from devpi_core.specs import ConfigSection, StorageBackend
from devpi_core_fsstore.blob_store import FileBlobStore
from devpi_core_fsstore.sqlite_store import SQLiteStore

if TYPE_CHECKING:
    from collections.abc import Mapping

SCHEMA = {
    "sqlite_path": {"type": ["string", "null"]},
    "blob_dir": {"type": ["string", "null"]},
    "synchronous": {"enum": ["normal", "full"]},
}
DEFAULTS = {"sqlite_path": None, "blob_dir": None, "synchronous": "normal"}
HELP = {
    "sqlite_path": "SQLite database file; default <serverdir>/metadata.sqlite",
    "blob_dir": "directory of file contents; default <serverdir>/+blobs",
    "synchronous": "normal survives a killed process; full also survives power loss (slower)",
}


@hookimpl
def devpi_config_sections() -> list[ConfigSection]:
    """The ``plugins.fsstore`` section."""
    return [ConfigSection("fsstore", SCHEMA, DEFAULTS, HELP)]


def _sqlite(serverdir: str, settings: Mapping[str, Any]) -> SQLiteStore:
    path = settings.get("sqlite_path") or os.path.join(serverdir, "metadata.sqlite")
    return SQLiteStore(path, synchronous=str(settings.get("synchronous") or "normal"))


def _files(serverdir: str, settings: Mapping[str, Any]) -> FileBlobStore:
    return FileBlobStore(settings.get("blob_dir") or os.path.join(serverdir, "+blobs"))


@hookimpl
def devpi_metadata_backends() -> list[StorageBackend]:
    """SQLite in WAL mode."""
    return [StorageBackend("sqlite", _sqlite, "SQLite database in the server directory", "fsstore")]


@hookimpl
def devpi_blob_backends() -> list[StorageBackend]:
    """Content-addressed files on disk."""
    description = "content-addressed files in the server directory"
    return [StorageBackend("fs", _files, description, "fsstore")]
