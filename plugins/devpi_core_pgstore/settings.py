"""The ``plugins.pgstore`` section: where the PostgreSQL metadata store is, how it connects."""

from __future__ import annotations

from dataclasses import dataclass

from devpi_core.specs import setting

SECTION = "pgstore"


@dataclass(frozen=True)
class PgstoreSettings:
    """The ``plugins.pgstore`` section (used when ``storage.metadata`` is ``postgresql``)."""

    dsn: str = setting(
        "",
        "libpq connection string or URL, e.g. 'host=db dbname=devpi user=devpi'; write the "
        "password as {env: VARIABLE}; several hosts with target_session_attrs=read-write for HA",
        {"type": "string"},
    )
    schema: str = setting(
        "devpi",
        "PostgreSQL schema holding devpi's tables (created at start-up)",
        {"type": "string", "pattern": "^[a-z_][a-z0-9_]{0,62}$"},
    )
    pool_min: int = setting(
        2, "connections the pool keeps open", {"type": "integer", "minimum": 1}
    )
    pool_max: int = setting(
        12,
        "most connections per node (server.threads + 4 is enough); "
        "PostgreSQL needs max_connections >= nodes x (pool_max + 1) + admin",
        {"type": "integer", "minimum": 1},
    )
    lock_timeout: float = setting(
        10.0,
        "seconds a writer waits for the cluster-wide writer lock (or a request for a pool "
        "connection) before answering 503",
        {"type": "number", "exclusiveMinimum": 0},
    )
    idle_in_transaction_timeout: float = setting(
        60.0,
        "seconds after which PostgreSQL ends a transaction a hung node left open",
        {"type": "number", "exclusiveMinimum": 0},
    )
    listen: bool = setting(
        False,
        "also LISTEN for commits of other nodes (about 1 ms instead of the 50 ms poll), and "
        "NOTIFY them of this node's commits (only then): set it alike on every node; needs a "
        "direct connection, not a transaction-pooling PgBouncer",
        {"type": "boolean"},
    )
    listen_dsn: str | None = setting(
        None,
        "connection string for the listener; default: dsn",
        {"type": ["string", "null"]},
    )
