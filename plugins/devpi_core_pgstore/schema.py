"""The tables of the PostgreSQL metadata store, created (or checked) once per start-up."""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from devpi_core.errors import StartupError

log = logging.getLogger(__name__)
# 2: the search tables (a node of version 1 would write search documents without indexing
# them, so it must refuse to run on version 2 tables).
SCHEMA_VERSION = 2
# ``COLLATE "C"``: byte order, so prefix scans and items() order match SQLite and the contract
# whatever the database's default collation. ``vhash`` (sha256 of the canonical JSON) tells
# "same value" without reading a TOASTed value back.
TABLES = """
CREATE TABLE IF NOT EXISTS {s}.meta (name text COLLATE "C" PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.kv (
    key text COLLATE "C" PRIMARY KEY,
    serial bigint NOT NULL,
    vhash bytea NOT NULL,
    value text NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.changelog (
    serial bigint PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    keys text[] NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.leases (
    name text COLLATE "C" PRIMARY KEY,
    holder text NOT NULL,
    expires timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.identity (name text COLLATE "C" PRIMARY KEY, value text NOT NULL);
INSERT INTO {s}.meta (name, value) VALUES ('serial', 0), ('schema', {version})
    ON CONFLICT (name) DO NOTHING;
"""
# The search documents (``search:`` keys of kv) as rows, written by the store's write path in
# the same transaction as their keys: the shown fields, and ``tsv``, the document's words
# (devpi_core.search.words, so they split like SQLite's unicode61) weighted A (title),
# B (summary, keywords) and D (description) under the ``simple`` configuration.
SEARCH_TABLES = """
CREATE TABLE IF NOT EXISTS {s}.search_doc (
    key text COLLATE "C" PRIMARY KEY,
    scope text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    title text NOT NULL,
    version text NOT NULL,
    summary text NOT NULL,
    keywords text NOT NULL,
    description text NOT NULL,
    tsv tsvector NOT NULL);
CREATE INDEX IF NOT EXISTS search_doc_scope_name ON {s}.search_doc (scope, name);
CREATE INDEX IF NOT EXISTS search_doc_tsv ON {s}.search_doc USING gin (tsv);
"""
TRIGRAM_INDEX = (
    "CREATE INDEX IF NOT EXISTS search_doc_name_trgm ON {s}.search_doc "
    "USING gin (name {ext}.gin_trgm_ops)"
)


def _statements(conn: psycopg.Connection[Any], script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement.encode())


def create_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create the schema's tables if missing, under an advisory lock: nodes starting at once
    do not race, and a node never runs on tables of a newer version than it knows."""
    quoted = f'"{schema}"'
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"devpi-schema:{schema}",))
    try:
        # asked first: a role without CREATE on the database may use a schema made for it
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() \
                is None:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        _statements(conn, TABLES.format(s=quoted, version=SCHEMA_VERSION))
        _compress_with_lz4(conn, quoted)
        row = conn.execute(
            f"SELECT value FROM {quoted}.meta WHERE name = 'schema'"  # noqa: S608 - fixed names
        ).fetchone()
        if row is not None and int(row[0]) <= SCHEMA_VERSION:
            _create_search_tables(conn, quoted, int(row[0]))
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"devpi-schema:{schema}",))
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise StartupError(
            f"the PostgreSQL schema {schema} has version {row[0]}; "
            f"this devpi-core knows up to {SCHEMA_VERSION}: upgrade devpi-core"
        )


def _compress_with_lz4(conn: psycopg.Connection[Any], quoted: str) -> None:
    """Values (a mirror page of thousands of files is megabytes of JSON) are compressed with
    lz4 where the server has it (PostgreSQL 14+ built with lz4): the default pglz made a 2.7 MB
    page's insert take 45 ms instead of 14 ms. Values stored before stay as they are; asked
    first, so a running cluster's table is not locked again at every start."""
    row = conn.execute(
        "SELECT a.attcompression, s.enumvals FROM pg_attribute a "
        "JOIN pg_settings s ON s.name = 'default_toast_compression' "
        "WHERE a.attrelid = %s::regclass AND a.attname = 'value'",
        (f"{quoted}.kv",),
    ).fetchone()
    if row is None or row[0] == "l" or "lz4" not in (row[1] or ()):
        return  # an older server (no such setting), already lz4, or built without it
    conn.execute(f"ALTER TABLE {quoted}.kv ALTER COLUMN value SET COMPRESSION lz4".encode())


def _create_search_tables(conn: psycopg.Connection[Any], quoted: str, version: int) -> None:
    """The search tables and their indexes; tables of version 1 get the rows of the search
    documents they hold (in one transaction, with the new version)."""
    _statements(conn, SEARCH_TABLES.format(s=quoted))
    ext = trigram_schema(conn)
    if ext is not None:
        conn.execute(TRIGRAM_INDEX.format(s=quoted, ext=f'"{ext}"').encode())
    if version >= SCHEMA_VERSION:
        return
    from devpi_core_pgstore.search_index import backfill  # noqa: PLC0415 - imports this module

    with conn.transaction():
        count = backfill(conn, quoted)
        conn.execute(
            f"UPDATE {quoted}.meta SET value = %s WHERE name = 'schema'",  # noqa: S608
            (SCHEMA_VERSION,),
        )
    conn.execute(f"ANALYZE {quoted}.search_doc")
    log.warning("PostgreSQL schema %s upgraded to version %d: %d search documents indexed",
                quoted, SCHEMA_VERSION, count)


def trigram_schema(conn: psycopg.Connection[Any]) -> str | None:
    """The schema of the ``pg_trgm`` extension (created if missing), or None (logged) when it
    cannot be created: name substrings are then found by reading the names."""
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except psycopg.Error as exc:  # no privilege, or not installed
        log.warning("PostgreSQL extension pg_trgm is not available (%s): name substring "
                    "search reads every project name", str(exc).strip())
        return None
    row = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    ).fetchone()
    return None if row is None else str(row[0])
