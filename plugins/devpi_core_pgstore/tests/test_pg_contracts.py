"""The PostgreSQL metadata store passes the storage contract suites, on a real server."""

from __future__ import annotations

from itertools import count

import pytest

from devpi_core.testing.contracts import MetadataStoreContract, SharedMetadataStoreContract
from devpi_core.testing.plugin import import_component

import_component("psycopg", "the 'postgresql' extra is not installed")

from devpi_core_pgstore.pg_store import PgStore  # noqa: E402 - after the check
from devpi_core_pgstore.settings import PgstoreSettings  # noqa: E402 - after the check

_schemas = count(1)


@pytest.fixture(scope="module")
def pg_database(postgres_server):
    return postgres_server.create_database()


@pytest.fixture
def pg_schema():
    return f"t{next(_schemas)}"


class TestPgStore(MetadataStoreContract, SharedMetadataStoreContract):
    @pytest.fixture
    def metadata_store(self, pg_database, pg_schema):
        store = PgStore(PgstoreSettings(dsn=pg_database, schema=pg_schema, pool_min=1, pool_max=6))
        yield store
        store.close()

    @pytest.fixture
    def metadata_store_twin(self, pg_database, pg_schema, metadata_store):
        store = PgStore(PgstoreSettings(dsn=pg_database, schema=pg_schema, pool_min=1, pool_max=6))
        yield store
        store.close()
