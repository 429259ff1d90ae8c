"""The in-memory test storage passes the same contract suites as the embedded default."""

from __future__ import annotations

import pytest

from devpi_core.testing.contracts import BlobStoreContract, MetadataStoreContract
from devpi_core.testing.memstore import MemoryBlobStore, MemoryStore


class TestMemoryStore(MetadataStoreContract):
    @pytest.fixture
    def metadata_store(self):
        return MemoryStore()


class TestMemoryBlobStore(BlobStoreContract):
    @pytest.fixture
    def blob_store(self):
        return MemoryBlobStore()

    @pytest.fixture
    def blob_tmpdir(self, tmp_path):
        return str(tmp_path)
