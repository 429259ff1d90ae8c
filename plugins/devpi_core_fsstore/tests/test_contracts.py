"""SQLite metadata and filesystem blobs pass the storage contract suites."""

from __future__ import annotations

import pytest

from devpi_core.testing.contracts import BlobStoreContract, MetadataStoreContract
from devpi_core_fsstore.blob_store import FileBlobStore
from devpi_core_fsstore.sqlite_store import SQLiteStore


class TestSQLiteStore(MetadataStoreContract):
    @pytest.fixture
    def metadata_store(self, tmp_path):
        store = SQLiteStore(str(tmp_path / "metadata.sqlite"))
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
