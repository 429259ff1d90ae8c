"""SQLite metadata and filesystem blobs pass the storage contract suites."""

from __future__ import annotations

import pytest

from devpi_core.testing.contracts import (
    BlobStoreContract,
    MetadataStoreContract,
    SharedMetadataStoreContract,
)
from devpi_core_fsstore.blob_store import FileBlobStore
from devpi_core_fsstore.sqlite_store import SQLiteStore


class TestSQLiteStore(MetadataStoreContract, SharedMetadataStoreContract):
    @pytest.fixture
    def metadata_store(self, tmp_path):
        store = SQLiteStore(str(tmp_path / "metadata.sqlite"))
        yield store
        store.close()

    @pytest.fixture
    def metadata_store_twin(self, tmp_path, metadata_store):
        store = SQLiteStore(str(tmp_path / "metadata.sqlite"))  # a second process's view
        yield store
        store.close()


class TestFileBlobStore(BlobStoreContract):
    @pytest.fixture
    def blob_store(self, tmp_path):
        return FileBlobStore(str(tmp_path / "blobs"))

    @pytest.fixture
    def blob_tmpdir(self, tmp_path):
        path = tmp_path / "tmp"
        path.mkdir()
        return str(path)
