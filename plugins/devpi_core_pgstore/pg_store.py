"""The metadata store on PostgreSQL, shared by every node of a cluster.

One writer at a time across all nodes: a write transaction locks the ``serial`` row of ``meta``
``FOR UPDATE`` as its first statement (READ COMMITTED, so every later statement sees every
earlier writer's commit), which makes serials gap-free and commit order equal serial order.
Reads are REPEATABLE READ READ ONLY snapshots that carry the serial they see. Keys use
``COLLATE "C"``: byte order, the same order SQLite and the contract specify.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from devpi_core import search
from devpi_core.errors import ServiceUnavailable, StartupError
from devpi_core.interfaces import (
    SERIAL_BOUND,
    MetadataStore,
    ReadTransaction,
    WriteTransaction,
    serial_problems,
)
from devpi_core_pgstore import search_index
from devpi_core_pgstore.schema import SCHEMA_VERSION, create_schema

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from devpi_core.search import SearchQuery, SearchResult
    from devpi_core_pgstore.settings import PgstoreSettings

log = logging.getLogger(__name__)
# How stale current_serial() may be about other nodes' commits (never about this node's):
# one poll query costs 27-41 us over loopback, so at most ~20 queries/s per node (one thread
# polls at a time: under load, every request thread used to find the serial stale at once).
SERIAL_REFRESH = 0.05
CHANGELOG_KEEP = 10000
NOTIFY_CHANNEL = "devpi_serial"
# Upper bound for prefix scans: no key character sorts after U+10FFFF (in byte order either).
_MAX_CHAR = "\U0010ffff"
# Prefix scans page by key instead of holding a server-side cursor: a generator abandoned
# half-way (``next(tx.keys(p), None)``) then leaves nothing open on the connection.
_KEY_PAGE = 1000
_ITEM_PAGE = 200
# A request waiting for a pool connection checks after this long whether the database accepts
# connections at all (one probe per node per PROBE_EVERY): a stopped or restarting database is
# a 503 at once, not after lock_timeout, while a busy pool is still waited for.
POOL_SLICE = 0.25
PROBE_EVERY = 0.5
PROBE_TIMEOUT = 2
# seconds a pooled connection may have been unused before the pool checks it (a round trip)
CHECK_IDLE = 1.0
# A write transaction buffers this many keys (or bytes of values) before writing them.
FLUSH_KEYS = 2000
FLUSH_BYTES = 8 * 1024 * 1024
# After a transaction that wrote this many search documents (an import, a big index deleted),
# the search table's statistics are refreshed at once: with stale ones the planner reads every
# document instead of asking the GIN index (autovacuum would only catch up a minute later).
ANALYZE_AFTER = 1000
Conn = psycopg.Connection[tuple[Any, ...]]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


class _Read(ReadTransaction):
    def __init__(self, conn: Conn, schema: str, serial: int) -> None:
        self.conn = conn
        self.kv = f'"{schema}".kv'
        self.search_table = f'"{schema}".search_doc'
        self.serial = serial

    def _one(self, column: str, key: str) -> Any:
        row = self.conn.execute(
            f"SELECT {column} FROM {self.kv} WHERE key = %s",  # noqa: S608 - fixed names
            (key,),
        ).fetchone()
        return None if row is None else row[0]

    def get(self, key: str) -> Any:
        text = self._one("value", key)
        return None if text is None else json.loads(text)

    def key_serial(self, key: str) -> int | None:
        serial = self._one("serial", key)
        return None if serial is None else int(serial)

    def _scan(self, columns: str, prefix: str, page: int) -> Iterator[tuple[Any, ...]]:
        low, op, high = prefix, ">=", prefix + _MAX_CHAR
        while True:
            self._before_scan(prefix)
            rows = self.conn.execute(
                f"SELECT {columns} FROM {self.kv} WHERE key {op} %s AND key < %s "  # noqa: S608
                f"ORDER BY key LIMIT {page}",
                (low, high),
            ).fetchall()
            yield from rows
            if len(rows) < page:
                return
            low, op = rows[-1][0], ">"

    def _before_scan(self, prefix: str) -> None:
        """Called before each page of a prefix scan (a write transaction writes its buffer)."""

    def items(self, prefix: str) -> Iterator[tuple[str, Any]]:
        for key, value in self._scan("key, value", prefix, _ITEM_PAGE):
            yield key, json.loads(value)

    def keys(self, prefix: str) -> Iterator[str]:
        for (key,) in self._scan("key", prefix, _KEY_PAGE):
            yield key

    def search(self, query: SearchQuery) -> SearchResult:
        """Ranked by PostgreSQL's indexes (:mod:`devpi_core_pgstore.search_index`)."""
        return search_index.Searcher(self.conn, self.search_table).find(query)


class _Write(_Read, WriteTransaction):
    """Sets and deletes are buffered and written a batch at a time (one statement each for
    the keys and their search rows, instead of a round trip per key): before a read that
    could see them, when the buffer is full, and at commit."""

    def __init__(self, conn: Conn, schema: str, serial: int) -> None:
        super().__init__(conn, schema, serial)
        self.new_serial = serial + 1
        self.changed: set[str] = set()
        self.callbacks: list[Callable[[int], None]] = []
        # key -> canonical JSON, or None for a deletion; the search rows of "search:" keys
        self._pending: dict[str, str | None] = {}
        self._pending_bytes = 0
        self._docs: dict[str, tuple[str, ...]] = {}
        self.search_rows = 0  # search documents written or removed

    def set(self, key: str, value: Any) -> None:
        text = _dumps(value)
        self._pending[key] = text
        self._pending_bytes += len(text)
        if key.startswith(search.PREFIX):
            self._docs[key] = search_index.row(key, value if isinstance(value, dict) else {})
        if len(self._pending) >= FLUSH_KEYS or self._pending_bytes >= FLUSH_BYTES:
            self.flush()

    def delete(self, key: str) -> bool:
        if key in self._pending:  # decided by this transaction: no need to ask
            existed = self._pending[key] is not None
            self._pending[key] = None
            self._docs.pop(key, None)
            return existed
        row = self.conn.execute(
            f"DELETE FROM {self.kv} WHERE key = %s RETURNING 1",  # noqa: S608 - fixed names
            (key,),
        ).fetchone()
        if row is not None:
            self.changed.add(key)
            if key.startswith(search.PREFIX):
                search_index.write(self.conn, self.search_table, (), [key])
                self.search_rows += 1
        return row is not None

    def get(self, key: str) -> Any:
        if key in self._pending:
            text = self._pending[key]
            return None if text is None else json.loads(text)
        return super().get(key)

    def key_serial(self, key: str) -> int | None:
        if key in self._pending:
            self.flush()
        return super().key_serial(key)

    def _before_scan(self, prefix: str) -> None:
        if any(key.startswith(prefix) for key in self._pending):
            self.flush()

    def search(self, query: SearchQuery) -> SearchResult:
        if self._docs or any(key.startswith(search.PREFIX) for key in self._pending):
            self.flush()
        return super().search(query)

    def flush(self) -> None:
        """Write the buffered sets and deletes; remember which keys really changed."""
        if not self._pending:
            return
        pending, docs = self._pending, self._docs
        self._pending, self._docs, self._pending_bytes = {}, {}, 0
        gone = [key for key, text in pending.items() if text is None]
        if gone:
            rows = self.conn.execute(
                f"DELETE FROM {self.kv} WHERE key = ANY(%s) RETURNING key",  # noqa: S608
                (gone,),
            ).fetchall()
            self.changed.update(key for (key,) in rows)
            docs_gone = [key for key in gone if key.startswith(search.PREFIX)]
            search_index.write(self.conn, self.search_table, (), docs_gone)
            self.search_rows += len(docs_gone)
        keys = [key for key, text in pending.items() if text is not None]
        if not keys:
            return
        texts = [pending[key] for key in keys]
        # Compared by hash inside PostgreSQL: an unchanged multi-megabyte value is neither
        # sent back nor detoasted, and writes no WAL. The arrays go in binary (%b): as text
        # every quote of a value's JSON is escaped, and PostgreSQL's array parser took 360 ms
        # for a 2.8 MB mirror page (15 ms in binary).
        hashes = [hashlib.sha256(str(text).encode()).digest() for text in texts]
        rows = self.conn.execute(
            f"INSERT INTO {self.kv} AS t (key, serial, vhash, value) "  # noqa: S608
            "SELECT k, %s, h, v FROM unnest(%b::text[], %b::bytea[], %b::text[]) AS u(k, h, v) "
            "ON CONFLICT (key) DO UPDATE SET serial = excluded.serial, "
            "vhash = excluded.vhash, value = excluded.value "
            "WHERE t.vhash IS DISTINCT FROM excluded.vhash RETURNING t.key",
            (self.new_serial, keys, hashes, texts),
        ).fetchall()
        written = [key for (key,) in rows]
        self.changed.update(written)
        rows_written = [docs[key] for key in written if key in docs]
        search_index.write(self.conn, self.search_table, rows_written, ())
        self.search_rows += len(rows_written)

    def after_commit(self, callback: Callable[[int], None]) -> None:
        self.callbacks.append(callback)


class PgStore(MetadataStore):
    """Metadata in PostgreSQL; safe for threads, and for any number of nodes on one database."""

    def __init__(self, settings: PgstoreSettings) -> None:
        dsn, schema = settings.dsn, settings.schema
        self.schema = schema
        self.lock_timeout = settings.lock_timeout
        self._idle_ms = int(settings.idle_in_transaction_timeout * 1000)
        self._known: tuple[int, float] = (0, -SERIAL_REFRESH)
        self._polling = threading.Lock()
        self._closed = threading.Event()
        self._dsn = dsn
        self._probe_lock = threading.Lock()
        self._probed: tuple[float, bool] = (-PROBE_EVERY, True)
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                create_schema(conn, schema)
        except psycopg.Error as exc:
            raise StartupError(f"cannot open the PostgreSQL metadata store: {exc}") from None
        self.pool: ConnectionPool[Conn] = ConnectionPool(
            dsn,
            min_size=min(settings.pool_min, settings.pool_max),
            max_size=settings.pool_max,
            kwargs={"autocommit": True},
            configure=self._configure,
            check=self._check,
            # waiting for a connection is bounded like waiting for the writer lock
            timeout=settings.lock_timeout,
            open=True,
            name=f"devpi-{schema}",
        )
        # when each pooled connection was last given back (see _check)
        self._returned: weakref.WeakKeyDictionary[Conn, float] = weakref.WeakKeyDictionary()
        self._listener: threading.Thread | None = None
        # every node shares one configuration: without listeners, a NOTIFY per commit would
        # only cost the server a queue entry nobody reads
        self._notify = settings.listen
        if settings.listen:
            self._listener = threading.Thread(
                target=self._listen,
                args=(settings.listen_dsn or dsn,), name="devpi-pg-listen", daemon=True
            )
            self._listener.start()

    def _check(self, conn: Conn) -> None:
        """Checked before use (a round trip) only after CHECK_IDLE unused: a connection that
        just answered is alive, and a round trip is a fifth of a short read transaction. One
        that broke since (the database restarted within that second) fails its request with a
        503, and the pool replaces it."""
        returned = self._returned.get(conn)
        if returned is None or time.monotonic() - returned > CHECK_IDLE:
            ConnectionPool.check_connection(conn)

    def _configure(self, conn: Conn) -> None:
        # A hung or stopped node must not hold the writer lock for ever.
        conn.execute(f"SET idle_in_transaction_session_timeout = {self._idle_ms}")

    def _table(self, name: str) -> str:
        return f'"{self.schema}".{name}'

    def _serial(self, conn: Conn, *, lock: bool = False, begin: str = "") -> int:
        """The committed serial; with ``begin``, those statements (a BEGIN, settings) are sent
        in the same round trip, ahead of the query."""
        suffix = " FOR UPDATE" if lock else ""
        query = f"SELECT value FROM {self._table('meta')} WHERE name = 'serial'{suffix}"  # noqa: S608
        if not begin:
            row = conn.execute(query).fetchone()
        else:
            cursor = conn.execute(f"{begin}; {query}".encode())
            for _ in range(begin.count(";") + 1):  # to the query's result
                cursor.nextset()
            row = cursor.fetchone()
        assert row is not None
        return int(row[0])

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Conn]:
        """A pooled connection; an unreachable or restarting database answers 503."""
        try:
            with contextlib.ExitStack() as stack:
                yield self._checkout(stack)
        except psycopg.OperationalError as exc:
            if isinstance(exc, pg_errors.LockNotAvailable):
                raise
            log.warning("PostgreSQL metadata store: %s", exc)
            raise ServiceUnavailable(
                "the metadata store cannot be reached; please retry", retry_after=1
            ) from None

    def _checkout(self, stack: contextlib.ExitStack) -> Conn:
        """A connection from the pool (returned when ``stack`` closes), waiting at most
        lock_timeout for a busy pool, and no longer than a probe when the database is down."""
        deadline = time.monotonic() + self.lock_timeout
        while True:
            wait = min(POOL_SLICE, max(0.0, deadline - time.monotonic()))
            try:
                conn = stack.enter_context(self.pool.connection(timeout=wait))
            except PoolTimeout:
                if time.monotonic() >= deadline or not self._reachable():
                    raise
                continue
            # runs before the pool takes it back (the stack unwinds in reverse)
            stack.callback(self._returned.__setitem__, conn, time.monotonic())
            return conn

    def _reachable(self) -> bool:
        """Whether the database accepts a new connection (asked at most every PROBE_EVERY)."""
        with self._probe_lock:
            checked, answer = self._probed
            if time.monotonic() - checked < PROBE_EVERY:
                return answer
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=PROBE_TIMEOUT):
                    answer = True
            except psycopg.Error:
                answer = False
            self._probed = (time.monotonic(), answer)
            return answer

    def current_serial(self) -> int:
        serial, checked = self._known
        age = time.monotonic() - checked
        if age < SERIAL_REFRESH:
            return serial
        # One poll at a time: while a thread polls, others answer with the serial known, as
        # long as it is within the bound; past it they wait for the poll (or poll themselves).
        if not self._polling.acquire(blocking=age >= SERIAL_BOUND):
            return serial
        try:
            serial, checked = self._known
            if time.monotonic() - checked < SERIAL_REFRESH:  # polled while this one waited
                return serial
            with self._connection() as conn:
                return self._observe(self._serial(conn))
        finally:
            self._polling.release()

    def _observe(self, serial: int) -> int:
        """Remember ``serial`` (read just now, or committed here); keep the highest."""
        known, _checked = self._known
        if serial >= known:
            self._known = (serial, time.monotonic())
        return max(serial, known)

    @contextlib.contextmanager
    def read(self) -> Iterator[ReadTransaction]:
        with self._connection() as conn:
            try:
                serial = self._serial(conn, begin="BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                self._observe(serial)
                yield _Read(conn, self.schema, serial)
            finally:
                conn.execute("ROLLBACK")

    @contextlib.contextmanager
    def write(self) -> Iterator[WriteTransaction]:
        with self._connection() as conn:
            try:
                begin = f"BEGIN; SET LOCAL lock_timeout = {int(self.lock_timeout * 1000)}"
                tx = _Write(conn, self.schema, self._serial(conn, lock=True, begin=begin))
            except pg_errors.LockNotAvailable:
                conn.execute("ROLLBACK")
                retry = max(1, round(self.lock_timeout))
                raise ServiceUnavailable(
                    "the metadata store is busy with another writer; please retry",
                    retry_after=retry,
                ) from None
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                yield tx
                tx.flush()
                if tx.changed:
                    self._commit(conn, tx)
                else:
                    conn.execute("ROLLBACK")
            except BaseException:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    with contextlib.suppress(psycopg.Error):
                        conn.execute("ROLLBACK")
                raise
        if tx.changed:
            self._observe(tx.new_serial)
            if tx.search_rows >= ANALYZE_AFTER:
                self._analyze("search_doc")
            # After the commit and outside the writer lock (which COMMIT released): a
            # callback must not assume no other writer has committed since.
            for callback in tx.callbacks:
                callback(tx.new_serial)

    def _analyze(self, table: str) -> None:
        try:
            with self._connection() as conn:
                conn.execute(f"ANALYZE {self._table(table)}")
        except (psycopg.Error, ServiceUnavailable) as exc:  # only a query plan is at stake
            log.warning("PostgreSQL metadata store: ANALYZE %s: %s", table, exc)

    def _commit(self, conn: Conn, tx: _Write) -> None:
        conn.execute(
            f"UPDATE {self._table('meta')} SET value = %s WHERE name = 'serial'",  # noqa: S608
            (tx.new_serial,),
        )
        conn.execute(
            f"INSERT INTO {self._table('changelog')} (serial, keys) VALUES (%s, %s)",  # noqa: S608
            (tx.new_serial, sorted(tx.changed)),
        )
        if tx.new_serial % 1000 == 0:
            conn.execute(
                f"DELETE FROM {self._table('changelog')} WHERE serial <= %s",  # noqa: S608
                (tx.new_serial - CHANGELOG_KEEP,),
            )
        if self._notify:
            conn.execute("SELECT pg_notify(%s, %s)", (self._channel, str(tx.new_serial)))
        conn.execute("COMMIT")

    @property
    def _channel(self) -> str:
        return f"{NOTIFY_CHANNEL}_{self.schema}"

    def _listen(self, dsn: str) -> None:
        """Learn other nodes' serials about 1 ms after their commit; the poll stays the floor."""
        while not self._closed.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f'LISTEN "{self._channel}"')
                    # notifications sent while disconnected are lost: read the serial now
                    self._observe(self._serial(conn))
                    while not self._closed.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            self._observe(int(notify.payload))
            except (psycopg.Error, ValueError) as exc:
                log.warning("PostgreSQL listener: %s; reconnecting", exc)
                self._closed.wait(1.0)

    def _autocommit(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return conn.execute(sql.encode(), args).fetchall()

    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        # The database's clock, the one every node shares: clock_timestamp(), not now()
        # (the transaction's start).
        rows = self._autocommit(
            f"INSERT INTO {self._table('leases')} AS l (name, holder, expires) "  # noqa: S608
            "VALUES (%s, %s, clock_timestamp() + make_interval(secs => %s)) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "expires = excluded.expires "
            "WHERE l.holder = excluded.holder OR l.expires < clock_timestamp() RETURNING 1",
            (name, holder, ttl),
        )
        return bool(rows)

    def renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        rows = self._autocommit(
            f"UPDATE {self._table('leases')} "  # noqa: S608
            "SET expires = clock_timestamp() + make_interval(secs => %s) "
            "WHERE name = %s AND holder = %s RETURNING 1",
            (ttl, name, holder),
        )
        return bool(rows)

    def release_lease(self, name: str, holder: str) -> None:
        self._autocommit(
            f"DELETE FROM {self._table('leases')} WHERE name = %s AND holder = %s "  # noqa: S608
            "RETURNING 1",
            (name, holder),
        )

    def shared_identity(self, uuid: str, secret: bytes) -> tuple[str, bytes]:
        table = self._table("identity")
        with self._connection() as conn:
            conn.execute(
                f"INSERT INTO {table} (name, value) VALUES ('uuid', %s), ('secret', %s) "  # noqa: S608
                "ON CONFLICT (name) DO NOTHING",
                (uuid, secret.hex()),
            )
            rows: dict[str, str] = dict(
                conn.execute(f"SELECT name, value FROM {table}").fetchall()  # noqa: S608
            )
        return str(rows["uuid"]), bytes.fromhex(rows["secret"])

    def changed_keys(self, since: int) -> list[str] | None:
        """Keys written after serial ``since``; None if the changelog no longer reaches back."""
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT serial, keys FROM {self._table('changelog')} "  # noqa: S608
                "WHERE serial > %s ORDER BY serial",
                (since,),
            ).fetchall()
            current = self._serial(conn)
        if current > since and (not rows or rows[0][0] != since + 1):
            return None
        return sorted({key for _serial, keys in rows for key in keys})

    def problems(self) -> list[str]:
        with self._connection() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                serial = self._serial(conn)
                row = conn.execute(
                    f"SELECT min(serial), max(serial), count(*) FROM {self._table('changelog')}"  # noqa: S608
                ).fetchone()
                newest = conn.execute(
                    f"SELECT max(serial) FROM {self._table('kv')}"  # noqa: S608
                ).fetchone()
            finally:
                conn.execute("ROLLBACK")
        assert row is not None  # aggregates always return a row
        assert newest is not None
        return serial_problems(serial, row[0], row[1], row[2], newest[0])

    def schema_version(self) -> int:
        """The version of the tables (``SCHEMA_VERSION`` once created)."""
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT value FROM {self._table('meta')} WHERE name = 'schema'"  # noqa: S608
            ).fetchone()
        return SCHEMA_VERSION if row is None else int(row[0])

    def close(self) -> None:
        self._closed.set()
        self.pool.close()
        if self._listener is not None:
            self._listener.join(5)
