"""The metadata store on SQLite: one ``kv`` table, WAL mode, one writer, snapshot reads.

Each key row holds its JSON value and the serial of the transaction that last wrote it; the
``meta`` row ``serial`` is the changelog serial, incremented once per committing transaction
that changed something. ``changelog`` keeps which keys each serial touched (bounded), so other
processes sharing the file can tell what changed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

from devpi_core import search
from devpi_core.errors import StartupError
from devpi_core.interfaces import (
    MetadataStore,
    ReadTransaction,
    WriteTransaction,
    serial_problems,
)
from devpi_core.search import SearchResult

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from devpi_core.search import Candidate, SearchQuery

# A rowid table (with its key index), the serial before the value: a lookup walks the small
# index, and reading a key's serial never touches a big value's overflow pages. (An earlier
# WITHOUT ROWID table kept whole rows in its B-tree, so a few multi-megabyte values made every
# lookup slow; _migrate converts it.)
SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, serial INTEGER NOT NULL, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('serial', 0);
CREATE TABLE IF NOT EXISTS changelog (serial INTEGER PRIMARY KEY, at REAL NOT NULL,
    keys TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL,
    expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS identity (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Search documents (devpi_core.search) are kv rows under "search:"; triggers copy them into
# search_doc and its FTS5 index inside the writing transaction, whichever code path or process
# writes them, so the index can never disagree with the documents.
_DOC_EXPRS = """{row}key, coalesce(json_extract({row}value, '$.scope'), ''),
    coalesce(json_extract({row}value, '$.name'), ''),
    coalesce(json_extract({row}value, '$.title'), ''),
    coalesce(json_extract({row}value, '$.version'), ''),
    coalesce(json_extract({row}value, '$.summary'), ''),
    coalesce(json_extract({row}value, '$.keywords'), ''),
    coalesce(json_extract({row}value, '$.description'), '')"""
_DOC_VALUES = "(" + _DOC_EXPRS.format(row="new.") + ")"
_WEIGHTS = ", ".join(str(weight) for weight in search.WEIGHTS)
_HIT_FIELDS = ("scope", "name", "title", "version", "summary", "description")
_DOC_COLUMNS = "(key, scope, name, title, version, summary, keywords, description)"
# Only constants and "?" placeholders are formatted into SQL here (ruff's S608 below).
SEARCH_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS search_doc (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL, name TEXT NOT NULL, title TEXT NOT NULL, version TEXT NOT NULL,
    summary TEXT NOT NULL,
    keywords TEXT NOT NULL, description TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS search_doc_scope ON search_doc (scope, name);
CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(title, summary, keywords, description,
    content='search_doc', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE IF NOT EXISTS search_name USING fts5(name, content='search_doc',
    content_rowid='id', tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS search_doc_ai AFTER INSERT ON search_doc BEGIN
    INSERT INTO search_fts (rowid, title, summary, keywords, description)
    VALUES (new.id, new.title, new.summary, new.keywords, new.description);
    INSERT INTO search_name (rowid, name) VALUES (new.id, new.name); END;
CREATE TRIGGER IF NOT EXISTS search_doc_ad AFTER DELETE ON search_doc BEGIN
    INSERT INTO search_fts (search_fts, rowid, title, summary, keywords, description)
    VALUES ('delete', old.id, old.title, old.summary, old.keywords, old.description);
    INSERT INTO search_name (search_name, rowid, name) VALUES ('delete', old.id, old.name); END;
INSERT INTO search_fts (search_fts, rank) VALUES ('rank', 'bm25({_WEIGHTS})');
CREATE TRIGGER IF NOT EXISTS kv_search_ai AFTER INSERT ON kv WHEN new.key GLOB 'search:*' BEGIN
    INSERT INTO search_doc {_DOC_COLUMNS} VALUES {_DOC_VALUES}; END;
CREATE TRIGGER IF NOT EXISTS kv_search_au AFTER UPDATE ON kv WHEN new.key GLOB 'search:*' BEGIN
    DELETE FROM search_doc WHERE key = old.key;
    INSERT INTO search_doc {_DOC_COLUMNS} VALUES {_DOC_VALUES}; END;
CREATE TRIGGER IF NOT EXISTS kv_search_ad AFTER DELETE ON kv WHEN old.key GLOB 'search:*' BEGIN
    DELETE FROM search_doc WHERE key = old.key; END;
"""  # noqa: S608
log = logging.getLogger(__name__)
CHANGELOG_KEEP = 10000
# Upper bound for prefix scans: no key character sorts after U+10FFFF.
_MAX_CHAR = "\U0010ffff"
POOL_SIZE = 32
# Page cache per connection, in KiB (SQLite's default is 2,000): every pooled connection keeps
# its own, and reading a mirror page of a few megabytes filled it; the pages still come from
# the OS's file cache. uv's cold lock left 5-17 MB less resident.
CACHE_KIB = 256
# How stale current_serial() may be about other processes' commits (never about this store's).
SERIAL_REFRESH = 0.05


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    """Convert an older ``kv`` table (WITHOUT ROWID, value before serial) in one transaction;
    a process that opens the file at the same time waits, then finds it converted. A current
    file only costs one read (no write lock at every start)."""
    if not _old_layout(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _old_layout(conn):
            log.warning("converting the metadata table of %s to the current layout", path)
            conn.execute(
                "CREATE TABLE kv_new (key TEXT PRIMARY KEY, serial INTEGER NOT NULL,"
                " value TEXT NOT NULL)"
            )
            conn.execute("INSERT INTO kv_new SELECT key, serial, value FROM kv")
            conn.execute("DROP TABLE kv")
            conn.execute("ALTER TABLE kv_new RENAME TO kv")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _old_layout(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'kv'")
    found = row.fetchone()
    return found is not None and "WITHOUT ROWID" in found[0].upper()


def _create_search_index(conn: sqlite3.Connection) -> None:
    """Create the search tables (once per file: a current file costs one read), filling
    them from search documents written before they existed."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'kv_search_ad'"
    ).fetchone()
    if found is not None:
        return
    conn.executescript(SEARCH_SCHEMA)  # idempotent: another process may do the same
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            f"INSERT OR IGNORE INTO search_doc {_DOC_COLUMNS} "  # noqa: S608
            f"SELECT {_DOC_EXPRS.format(row='')} FROM kv WHERE key GLOB 'search:*'"
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


class _Read(ReadTransaction):
    def __init__(self, conn: sqlite3.Connection, serial: int) -> None:
        self.conn = conn
        self.serial = serial

    def get(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def key_serial(self, key: str) -> int | None:
        row = self.conn.execute("SELECT serial FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def items(self, prefix: str) -> Iterator[tuple[str, Any]]:
        rows = self.conn.execute(
            "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key",
            (prefix, prefix + _MAX_CHAR),
        )
        for key, value in rows:
            yield key, json.loads(value)

    def keys(self, prefix: str) -> Iterator[str]:
        rows = self.conn.execute(
            "SELECT key FROM kv WHERE key >= ? AND key < ? ORDER BY key",
            (prefix, prefix + _MAX_CHAR),
        )
        for (key,) in rows:
            yield key

    def search(self, query: SearchQuery) -> SearchResult:
        """Rank with the indexes: names by B-tree range and trigram index, words with FTS5
        and bm25; read the documents of the shown page only."""
        scopes = query.scopes
        if not scopes:
            return SearchResult([], 0)
        names = search.order(self._name_matches(query))
        if query.words and len(names) >= query.offset + query.limit:
            # the page holds names only: the word matches are counted, not ranked (bm25 is
            # most of a query's cost when a common word matches thousands of projects)
            shown = search.result(names, query, self._documents)
            total = min(search.MAX_MATCHES, shown.total + self._word_count(query))
            return SearchResult(shown.hits, total)
        found = [*names, *self._word_matches(query)]
        return search.result(search.order(found), query, self._documents)

    def _word_count(self, query: SearchQuery) -> int:
        """How many projects match the words but not the name (those are counted already)."""
        marks = ",".join("?" * len(query.scopes))
        row = self._run(
            "SELECT count(*) FROM search_fts CROSS JOIN search_doc d"  # noqa: S608
            f" ON d.id = search_fts.rowid WHERE search_fts MATCH ? AND d.scope IN ({marks})"
            " AND instr(d.name, ?) = 0",
            (_fts_words(query.words), *query.scopes, query.needle or "\n"),
        )
        return int(row[0][0])

    def _run(self, sql: str, args: Sequence[object]) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, args).fetchall()

    def _name_matches(self, query: SearchQuery) -> list[Candidate]:
        needle, scopes = query.needle, query.scopes
        if not needle:
            return []
        marks = ",".join("?" * len(scopes))
        limit = search.MAX_MATCHES
        rows = self._run(  # exact names and prefixes: a range of the (scope, name) index
            f"SELECT scope, name FROM search_doc WHERE scope IN ({marks})"  # noqa: S608
            " AND name >= ? AND name < ? LIMIT ?",
            (*scopes, needle, needle + _MAX_CHAR, limit),
        )
        if len(needle) >= 3:  # substrings: the trigram index
            rows += self._run(
                # CROSS JOIN: the index first (the planner would probe it once per document)
                "SELECT d.scope, d.name FROM search_name CROSS JOIN search_doc d"  # noqa: S608
                f" ON d.id = search_name.rowid WHERE search_name MATCH ? AND d.scope IN ({marks})"
                " LIMIT ?",
                (_fts_string(needle), *scopes, limit),
            )
        else:  # one or two characters: too short for trigrams, scan the names
            rows += self._run(
                f"SELECT scope, name FROM search_doc WHERE scope IN ({marks})"  # noqa: S608
                " AND instr(name, ?) > 0 LIMIT ?",
                (*scopes, needle, limit),
            )
        found = []
        for scope, name in rows:
            tier = search.name_tier(needle, name)
            if tier is not None:
                found.append(search.Candidate(scope, name, tier))
        return found

    def _word_matches(self, query: SearchQuery) -> list[Candidate]:
        terms = query.words
        if not terms:
            return []
        marks = ",".join("?" * len(query.scopes))
        rows = self._run(  # rank: bm25 with search.WEIGHTS, configured with the table
            "SELECT d.scope, d.name, search_fts.rank"  # noqa: S608
            " FROM search_fts CROSS JOIN search_doc d ON d.id = search_fts.rowid"
            f" WHERE search_fts MATCH ? AND d.scope IN ({marks}) ORDER BY search_fts.rank LIMIT ?",
            (_fts_words(terms), *query.scopes, search.MAX_MATCHES),
        )
        tier = search.TEXT_TIER
        return [search.Candidate(scope, name, tier, -rank) for scope, name, rank in rows]

    def _documents(
        self, shown: list[Candidate]
    ) -> dict[tuple[str, str], Mapping[str, Any]]:
        keys = [search.doc_key(c.scope, c.name) for c in shown]
        rows = self._run(
            f"SELECT {', '.join(_HIT_FIELDS)} FROM search_doc"  # noqa: S608
            f" WHERE key IN ({','.join('?' * len(keys))})",
            keys,
        )
        docs = [dict(zip(_HIT_FIELDS, row, strict=True)) for row in rows]
        return {(doc["scope"], doc["name"]): doc for doc in docs}


def _fts_words(terms: list[str]) -> str:
    """Every term as the start of a word (FTS5 prefix queries, implicitly ANDed)."""
    return " ".join(f"{_fts_string(term)}*" for term in terms)


def _fts_string(text: str) -> str:
    """``text`` as one FTS5 string (a phrase of its tokens): never query syntax."""
    return '"' + text.replace('"', '""') + '"'


class _Write(_Read, WriteTransaction):
    def __init__(self, conn: sqlite3.Connection, serial: int) -> None:
        super().__init__(conn, serial)
        self.new_serial = serial + 1
        self.changed: list[str] = []
        self.callbacks: list[Callable[[int], None]] = []

    def set(self, key: str, value: Any) -> None:
        text = _dumps(value)
        # compared inside SQLite: a multi-megabyte old value is never copied into Python
        row = self.conn.execute("SELECT value = ? FROM kv WHERE key = ?", (text, key)).fetchone()
        if row is not None and row[0]:
            return
        self.conn.execute(
            "INSERT INTO kv (key, value, serial) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, serial = excluded.serial",
            (key, text, self.new_serial),
        )
        self.changed.append(key)

    def delete(self, key: str) -> bool:
        deleted = self.conn.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount > 0
        if deleted:
            self.changed.append(key)
        return deleted

    def after_commit(self, callback: Callable[[int], None]) -> None:
        self.callbacks.append(callback)


class SQLiteStore(MetadataStore):
    """Metadata in one SQLite file; safe for threads, and for processes sharing the file."""

    def __init__(self, path: str, *, synchronous: str = "normal") -> None:
        self.path = path
        self.synchronous = synchronous.upper()
        # list.append/pop are atomic: a lock-free pool, cheaper than queue.Queue per request
        self._pool: list[sqlite3.Connection] = []
        self._all: list[sqlite3.Connection] = []
        self._write_lock = threading.Lock()
        self._known: tuple[int, float] = (0, -SERIAL_REFRESH)
        self._pool_lock = threading.Lock()
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            conn = self._connect()
            _migrate(conn, path)
            conn.executescript(SCHEMA)
            _create_search_index(conn)
        except sqlite3.Error as exc:
            raise StartupError(f"cannot open the metadata database {path}: {exc}") from None
        self._pool.append(conn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        with self._pool_lock:
            self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._pool.pop()
        except IndexError:
            conn = self._connect()
        try:
            yield conn
        finally:
            if len(self._pool) < POOL_SIZE:
                self._pool.append(conn)
            else:
                conn.close()

    @staticmethod
    def _serial(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT value FROM meta WHERE name = 'serial'").fetchone()[0])

    def current_serial(self) -> int:
        # Every request asks for this. A query would release and re-take the GIL, which with
        # waitress's worker threads cost more than the whole rest of a cached page (about
        # 100 us of CPU per request); this store's own commits update the known serial at
        # once, other processes' commits are seen after at most SERIAL_REFRESH seconds.
        serial, checked = self._known
        if time.monotonic() - checked < SERIAL_REFRESH:
            return serial
        try:
            conn = self._pool.pop()
        except IndexError:
            conn = self._connect()
        try:
            return self._observe(self._serial(conn))
        finally:
            self._pool.append(conn)

    def _observe(self, serial: int) -> int:
        """Remember ``serial`` (read just now, or committed by this store); keep the highest."""
        known, _checked = self._known
        if serial >= known:
            self._known = (serial, time.monotonic())
        return serial

    @contextlib.contextmanager
    def read(self) -> Iterator[ReadTransaction]:
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                yield _Read(conn, self._observe(self._serial(conn)))
            finally:
                conn.execute("COMMIT")

    @contextlib.contextmanager
    def write(self) -> Iterator[WriteTransaction]:
        with self._write_lock, self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            tx = _Write(conn, self._serial(conn))
            try:
                yield tx
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if not tx.changed:
                conn.execute("ROLLBACK")
                return
            self._commit(conn, tx)
            self._observe(tx.new_serial)
        # Outside the writer lock, as the contract says (and as other processes see it): a
        # callback may write, and must not assume no other writer committed since.
        for callback in tx.callbacks:
            callback(tx.new_serial)

    def _autocommit(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        with self._connection() as conn:
            return conn.execute(sql, args).fetchall()

    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        # Wall-clock time: every process sharing the file runs on this host.
        now = time.time()
        rows = self._autocommit(
            "INSERT INTO leases (name, holder, expires) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires "
            "WHERE leases.holder = excluded.holder OR leases.expires < ? RETURNING 1",
            (name, holder, now + ttl, now),
        )
        return bool(rows)

    def renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        rows = self._autocommit(
            "UPDATE leases SET expires = ? WHERE name = ? AND holder = ? RETURNING 1",
            (time.time() + ttl, name, holder),
        )
        return bool(rows)

    def release_lease(self, name: str, holder: str) -> None:
        self._autocommit("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def shared_identity(self, uuid: str, secret: bytes) -> tuple[str, bytes]:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR IGNORE INTO identity (name, value) VALUES (?, ?)",
                    [("uuid", uuid), ("secret", secret.hex())],
                )
                rows = dict(conn.execute("SELECT name, value FROM identity").fetchall())
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return rows["uuid"], bytes.fromhex(rows["secret"])

    def _commit(self, conn: sqlite3.Connection, tx: _Write) -> None:
        try:
            conn.execute("UPDATE meta SET value = ? WHERE name = 'serial'", (tx.new_serial,))
            conn.execute(
                "INSERT INTO changelog (serial, at, keys) VALUES (?, ?, ?)",
                (tx.new_serial, time.time(), _dumps(sorted(set(tx.changed)))),
            )
            if tx.new_serial % 1000 == 0:
                conn.execute("DELETE FROM changelog WHERE serial <= ?",
                             (tx.new_serial - CHANGELOG_KEEP,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def changed_keys(self, since: int) -> list[str] | None:
        """Keys written after serial ``since``; None if the changelog no longer reaches back."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT serial, keys FROM changelog WHERE serial > ? ORDER BY serial", (since,)
            ).fetchall()
            current = self._serial(conn)
        if current > since and (not rows or rows[0][0] != since + 1):
            return None
        return sorted({key for _serial, keys in rows for key in json.loads(keys)})

    def problems(self) -> list[str]:
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                serial = self._serial(conn)
                low, high, count = conn.execute(
                    "SELECT min(serial), max(serial), count(*) FROM changelog"
                ).fetchone()
                newest = conn.execute("SELECT max(serial) FROM kv").fetchone()[0]
            finally:
                conn.execute("COMMIT")
        return serial_problems(serial, low, high, count, newest)

    def close(self) -> None:
        with self._pool_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
