"""The S3 blob store against moto's S3 server: the blob store contract, unchanged."""

from __future__ import annotations

import pytest
from devpi_core_s3store.blob_store import S3BlobStore, make_client
from devpi_core_s3store.settings import S3Settings

from devpi_core.specs import build
from devpi_core.testing.contracts import BlobStoreContract


@pytest.fixture(scope="module")
def s3_client(s3_server):
    # one client for the module: building one costs ~0.2 s (more on a loaded machine)
    return make_client(build(S3Settings, s3_server.settings("unused")))


@pytest.fixture
def s3_settings(s3_server):
    return build(S3Settings, s3_server.settings(s3_server.new_bucket(), prefix="devpi/"))


class TestS3BlobStore(BlobStoreContract):
    @pytest.fixture
    def blob_store(self, s3_settings, s3_client):
        return S3BlobStore(s3_settings, s3_client)

    @pytest.fixture
    def blob_tmpdir(self, tmp_path):
        path = tmp_path / "tmp"
        path.mkdir()
        return str(path)
