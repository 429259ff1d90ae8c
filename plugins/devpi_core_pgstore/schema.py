"""The tables of the PostgreSQL metadata store, created (or checked) once per start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devpi_core.errors import StartupError

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 1
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


def create_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create the schema's tables if missing, under an advisory lock: nodes starting at once
    do not race, and a node never runs on tables of a newer version than it knows."""
    quoted = f'"{schema}"'
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"devpi-schema:{schema}",))
    try:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        for statement in TABLES.format(s=quoted, version=SCHEMA_VERSION).split(";"):
            if statement.strip():
                conn.execute(statement.encode())
        row = conn.execute(
            f"SELECT value FROM {quoted}.meta WHERE name = 'schema'"  # noqa: S608 - fixed names
        ).fetchone()
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"devpi-schema:{schema}",))
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise StartupError(
            f"the PostgreSQL schema {schema} has version {row[0]}; "
            f"this devpi-core knows up to {SCHEMA_VERSION}: upgrade devpi-core"
        )
