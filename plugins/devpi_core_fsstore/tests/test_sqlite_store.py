"""What the SQLite store does beyond the contract: WAL, the changelog, crashes, shared files."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from devpi_core.errors import StartupError
from devpi_core_fsstore import sqlite_store
from devpi_core_fsstore.sqlite_store import SQLiteStore


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "metadata.sqlite")


@pytest.fixture
def store(path):
    store = SQLiteStore(path)
    yield store
    store.close()


def pragma(store, name):
    with store.read() as tx:
        return tx.conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_wal_mode_and_synchronous_setting(path):
    normal = SQLiteStore(path)
    full = SQLiteStore(path, synchronous="full")
    try:
        assert pragma(normal, "journal_mode") == "wal"
        assert pragma(normal, "synchronous") == 1
        assert pragma(full, "synchronous") == 2
        # a small page cache per pooled connection (SQLite's default is 2,000 KiB each)
        assert pragma(normal, "cache_size") == -256
    finally:
        normal.close()
        full.close()
    # WAL is a property of the file: a plain connection sees it too
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_changelog_records_the_keys_of_each_serial(store):
    with store.write() as tx:
        tx.set("a", 1)
        tx.set("b", 1)
    with store.write() as tx:
        tx.set("b", 2)
        tx.delete("a")
    with store.write() as tx:
        tx.set("c", 1)
    assert store.changed_keys(0) == ["a", "b", "c"]
    assert store.changed_keys(1) == ["a", "b", "c"]
    assert store.changed_keys(2) == ["c"]
    assert store.changed_keys(3) == []


def test_changelog_is_bounded_and_says_when_it_no_longer_reaches_back(store, monkeypatch):
    monkeypatch.setattr(sqlite_store, "CHANGELOG_KEEP", 10)
    for i in range(1000):
        with store.write() as tx:
            tx.set("counter", i)
    assert store.current_serial() == 1000
    assert store.changed_keys(995) == ["counter"]
    assert store.changed_keys(0) is None  # trimmed: a reader must reload everything


def test_data_survives_reopening(path):
    first = SQLiteStore(path)
    with first.write() as tx:
        tx.set("user:alice", {"email": "a@example.com"})
    first.close()
    second = SQLiteStore(path)
    try:
        assert second.current_serial() == 1
        with second.read() as tx:
            assert tx.get("user:alice") == {"email": "a@example.com"}
    finally:
        second.close()


def test_a_file_with_the_older_table_layout_is_converted(path, caplog):
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, serial INTEGER NOT NULL)"
        " WITHOUT ROWID;"
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT INTO meta VALUES ('serial', 7);"
        "CREATE TABLE changelog (serial INTEGER PRIMARY KEY, at REAL NOT NULL, keys TEXT NOT NULL);"
        """INSERT INTO kv VALUES ('user:alice', '{"email":"a@example.com"}', 3);"""
        """INSERT INTO kv VALUES ('big', '{"rows":"%s"}', 7);""" % ("x" * 300_000)
    )
    old.close()
    store = SQLiteStore(path)
    try:
        with store.read() as tx:
            assert tx.get("user:alice") == {"email": "a@example.com"}
            assert (tx.key_serial("user:alice"), tx.key_serial("big")) == (3, 7)
            assert len(tx.get("big")["rows"]) == 300_000
        check = sqlite3.connect(path)
        sql = check.execute("SELECT sql FROM sqlite_master WHERE name = 'kv'").fetchone()[0]
        check.close()
        assert "WITHOUT ROWID" not in sql.upper()
        assert store.current_serial() == 7
        with store.write() as tx:
            tx.set("user:alice", {"email": "new@example.com"})
        with store.read() as tx:
            assert tx.key_serial("user:alice") == 8
        assert "converting the metadata table" in caplog.text
    finally:
        store.close()
    caplog.clear()
    SQLiteStore(path).close()  # converted once
    assert "converting" not in caplog.text


def test_two_stores_on_one_file_share_serials(path):
    # Several processes may open the same file; writes are serialised by SQLite itself.
    one, two = SQLiteStore(path), SQLiteStore(path)

    def bump(store):
        for _ in range(25):
            with store.write() as tx:
                tx.set("counter", (tx.get("counter") or 0) + 1)

    try:
        threads = [threading.Thread(target=bump, args=(s,)) for s in (one, two, one, two)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with one.read() as tx1, two.read() as tx2:
            assert tx1.serial == tx2.serial == 100
            assert tx2.get("counter") == 100
        # a read transaction brings current_serial up to date at once
        assert one.current_serial() == two.current_serial() == 100
        assert one.changed_keys(99) == ["counter"]
    finally:
        one.close()
        two.close()


CRASHING_WRITER = textwrap.dedent("""
    import os, signal, sys
    from devpi_core_fsstore.sqlite_store import SQLiteStore
    store = SQLiteStore(sys.argv[1])
    with store.write() as tx:
        tx.set("committed", 1)
    with store.write() as tx:
        for i in range(500):
            tx.set(f"half:{i:03d}", "x" * 1000)
        tx.set("committed", 2)
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_killed_writer_leaves_no_half_written_transaction(path):
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, path], timeout=60, capture_output=True, check=False
    )
    assert result.returncode == -signal.SIGKILL
    store = SQLiteStore(path)
    try:
        assert store.current_serial() == 1
        with store.read() as tx:
            assert tx.get("committed") == 1
            assert list(tx.keys("half:")) == []
        with store.write() as tx:  # and the file takes writes again
            tx.set("committed", 3)
        assert store.current_serial() == 2
    finally:
        store.close()


def test_unopenable_database_is_a_startup_error(tmp_path):
    (tmp_path / "db").mkdir()
    with pytest.raises(StartupError, match="cannot open the metadata database"):
        SQLiteStore(str(tmp_path / "db"))


def test_many_concurrent_readers_beyond_the_pool(store):
    with store.write() as tx:
        tx.set("k", "v")
    barrier = threading.Barrier(sqlite_store.POOL_SIZE + 8)
    results = []

    def read():
        with store.read() as tx:
            barrier.wait(timeout=30)  # all hold a connection at once
            results.append(tx.get("k"))

    threads = [threading.Thread(target=read) for _ in range(barrier.parties)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["v"] * barrier.parties


def test_current_serial_sees_another_stores_commit_within_the_refresh_time(path):
    one, two = SQLiteStore(path), SQLiteStore(path)
    try:
        assert one.current_serial() == 0
        with two.write() as tx:
            tx.set("k", 1)
        assert two.current_serial() == 1  # its own commit: at once
        deadline = time.monotonic() + 5
        while one.current_serial() != 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert one.current_serial() == 1
    finally:
        one.close()
        two.close()


def test_nodes_sharing_the_database_share_uuid_and_token_secret(make_app, tmp_path):
    # two server directories, one database: a login token made by one node works on the other
    config = {"plugins": {"fsstore": {"sqlite_path": str(tmp_path / "shared.sqlite")}}}
    node_a, node_b = make_app(config), make_app(config)
    node_a.create_and_login("alice")
    node_b.auth = node_a.auth
    node_b.create_index("alice/dev")
    assert node_a.get_json("/alice/dev")["result"]["type"] == "stage"
    uuids = {node.get_json("/+status")["result"]["uuid"] for node in (node_a, node_b)}
    assert len(uuids) == 1


def test_problems_report_a_changelog_that_disagrees_with_the_serial(path):
    store = SQLiteStore(path)
    try:
        for value in range(3):
            with store.write() as tx:
                tx.set("k", value)
        assert store.problems() == []
        conn = sqlite3.connect(path)
        conn.execute("DELETE FROM changelog WHERE serial = 2")
        conn.execute("UPDATE meta SET value = 4 WHERE name = 'serial'")
        conn.commit()
        conn.close()
        assert store.problems() == [
            "the serial is 4 but the changelog ends at 3",
            "the changelog from 1 to 3 has gaps (2 entries)",
        ]
    finally:
        store.close()
