"""PostgreSQL ranks search documents with its own indexes, and batches a transaction's writes
(the contract suites check the results; these check how they are reached)."""

from __future__ import annotations

import logging

import pytest

from devpi_core import search
from devpi_core.testing.plugin import import_component

psycopg = import_component("psycopg", "the 'postgresql' extra is not installed")

from devpi_core_pgstore import pg_store  # noqa: E402 - after the skip
from devpi_core_pgstore.pg_store import PgStore  # noqa: E402 - after the skip
from devpi_core_pgstore.settings import PgstoreSettings  # noqa: E402 - after the skip


def make_store(dsn, **settings):
    return PgStore(PgstoreSettings(dsn=dsn, pool_min=1, pool_max=2, **settings))


@pytest.fixture
def store(postgres_dsn):
    store = make_store(postgres_dsn)
    yield store
    store.close()


def put_docs(store):
    with store.write() as tx:
        search.put(tx, "a/dev", "requests", {"name": "Requests", "summary": "HTTP for Humans",
                                             "description": "cookie persistence"})
        search.put(tx, "a/dev", "grequests", {"name": "grequests", "summary": "gevent HTTP"})
        search.put(tx, "a/dev", "turtle", {"name": "turtle", "keywords": "http-client, salad"})


def found(store, text):
    with store.read() as tx:
        hits = tx.search(search.SearchQuery(text, ("a/dev",))).hits
    return [(hit.name, hit.tier) for hit in hits]


def plan(dsn, sql):
    with psycopg.connect(dsn) as conn:
        conn.execute("SET enable_seqscan = off")
        return "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}").fetchall())


def test_search_uses_the_indexes_not_the_default_scan(store, postgres_dsn, monkeypatch):
    def no_scan(*_args):
        raise AssertionError("the default scan reads every document")

    monkeypatch.setattr(search, "scan", no_scan)
    put_docs(store)
    assert found(store, "requests") == [("requests", 0), ("grequests", 2)]
    assert found(store, "quest") == [("grequests", 2), ("requests", 2)]
    assert found(store, "cook pers") == [("requests", 3)]
    assert found(store, "sal") == [("turtle", 3)]  # "http-client, salad": words of their own
    words = plan(postgres_dsn, "SELECT name FROM devpi.search_doc WHERE "
                 "tsv @@ to_tsquery('simple', 'cook:*')")
    assert "search_doc_tsv" in words
    names = plan(postgres_dsn, "SELECT name FROM devpi.search_doc WHERE name LIKE '%ques%'")
    assert "search_doc_name_trgm" in names


def test_documents_of_older_tables_are_indexed_at_start(postgres_dsn):
    store = make_store(postgres_dsn)
    try:
        put_docs(store)
    finally:
        store.close()
    with psycopg.connect(postgres_dsn) as conn:  # the tables as version 1 left them
        conn.execute("DROP TABLE devpi.search_doc")
        conn.execute("UPDATE devpi.meta SET value = 1 WHERE name = 'schema'")
    store = make_store(postgres_dsn)
    try:
        assert store.schema_version() == 2
        assert found(store, "humans") == [("requests", 3)]
    finally:
        store.close()


def test_without_pg_trgm_names_are_still_found(postgres_dsn, caplog):
    # a role that may not create extensions (no CREATE on the database)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'devpi_plain'").fetchone() is None:
            conn.execute("CREATE ROLE devpi_plain LOGIN")
        conn.execute("CREATE SCHEMA plain AUTHORIZATION devpi_plain")
    dsn = postgres_dsn.replace("user=devpi", "user=devpi_plain")
    with caplog.at_level(logging.WARNING, logger="devpi_core_pgstore.schema"):
        store = make_store(dsn, schema="plain")
    try:
        assert "pg_trgm is not available" in caplog.text
        put_docs(store)
        assert found(store, "quest") == [("grequests", 2), ("requests", 2)]
        assert found(store, "gevent") == [("grequests", 3)]
    finally:
        store.close()


def test_a_write_transaction_sends_its_sets_in_batches(store, monkeypatch):
    statements = []
    execute = psycopg.Connection.execute

    def counted(self, query, *args, **kwargs):
        statements.append(query)
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", counted)
    with store.write() as tx:
        for n in range(3000):
            tx.set(f"k:{n:04d}", {"n": n})
        search.put(tx, "a/dev", "pkg", {"summary": "batched"})
    assert len(statements) < 20, len(statements)
    monkeypatch.undo()
    with store.read() as tx:
        assert len(list(tx.keys("k:"))) == 3000
        assert tx.get("k:2999") == {"n": 2999}
        assert tx.key_serial("k:0000") == 1
    assert len(store.changed_keys(0) or []) == 3001
    assert found(store, "batched") == [("pkg", 3)]


def test_buffered_writes_are_read_back_in_the_transaction(store):
    with store.write() as tx:
        tx.set("k:old", 1)
        tx.set("k:same", 1)
    with store.write() as tx:
        tx.set("k:new", 2)
        tx.set("k:same", 1)  # an equal value is no change
        assert tx.get("k:new") == 2
        assert tx.key_serial("k:new") == 2
        assert tx.key_serial("k:same") == 1
        assert list(tx.keys("k:")) == ["k:new", "k:old", "k:same"]
        tx.set("k:gone", 3)
        assert tx.delete("k:gone") is True
        assert tx.delete("k:gone") is False
        assert tx.get("k:gone") is None
        assert tx.delete("k:old") is True
        assert dict(tx.items("k:")) == {"k:new": 2, "k:same": 1}
        tx.set("k:late", 4)
        assert dict(tx.items("k:")) == {"k:late": 4, "k:new": 2, "k:same": 1}
    with store.read() as tx:
        assert dict(tx.items("k:")) == {"k:late": 4, "k:new": 2, "k:same": 1}
    assert store.changed_keys(1) == ["k:late", "k:new", "k:old"]


def test_a_bulk_write_of_documents_refreshes_the_planner_statistics(store, postgres_dsn,
                                                                    monkeypatch):
    monkeypatch.setattr(pg_store, "ANALYZE_AFTER", 5)
    put_docs(store)  # three documents: below the threshold
    query = ("SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
             "WHERE schemaname = 'devpi' AND relname = 'search_doc'")
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute(query).fetchone() == (False,)
    with store.write() as tx:
        for n in range(5):
            search.put(tx, "a/dev", f"pkg{n}", {"summary": "bulk"})
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute(query).fetchone() == (True,)
