"""What only the PostgreSQL store does: byte-order keys under any collation, the writer lock's
time-out, LISTEN/NOTIFY, the backend factory and two app nodes on one database."""

from __future__ import annotations

import threading
import time

import pytest

import devpi_core_pgstore
from devpi_core.errors import ServiceUnavailable, StartupError
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import import_component

psycopg = import_component("psycopg", "the 'postgresql' extra is not installed")

from devpi_core_pgstore import pg_store  # noqa: E402 - after the skip
from devpi_core_pgstore.pg_store import PgStore  # noqa: E402 - after the skip
from devpi_core_pgstore.settings import PgstoreSettings  # noqa: E402 - after the skip


def make_store(dsn, **settings):
    return PgStore(PgstoreSettings(dsn=dsn, pool_min=1, pool_max=4, **settings))


@pytest.fixture
def icu_dsn(postgres_server):
    """A database whose default collation is not byte order (ICU en-US: a < B < é < f < Z)."""
    name = "icu_en"
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f"DROP DATABASE {name}")
        conn.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
            " LOCALE 'C'"
        )
    return postgres_server.dsn(name)


def test_keys_are_in_byte_order_whatever_the_database_collation(icu_dsn):
    with psycopg.connect(icu_dsn) as conn:
        rows = conn.execute("SELECT x FROM unnest(ARRAY['Z', 'a', 'B']) x ORDER BY x").fetchall()
        assert [x for (x,) in rows] == ["a", "B", "Z"]  # the database's own order differs
    store = make_store(icu_dsn)
    try:
        with store.write() as tx:
            for key in ("k:Z", "k:a", "k:é", "k:B", "k:f", "k~"):
                tx.set(key, 1)
        with store.read() as tx:
            assert list(tx.keys("k:")) == ["k:B", "k:Z", "k:a", "k:f", "k:é"]
    finally:
        store.close()


def test_values_are_compressed_with_lz4_where_the_server_has_it(postgres_dsn):
    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute(
            "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"
        ).fetchone()
    has_lz4 = row is not None and "lz4" in row[0]
    store = make_store(postgres_dsn)
    store.close()
    make_store(postgres_dsn).close()  # a second start finds it set and changes nothing
    with psycopg.connect(postgres_dsn) as conn:
        compression = conn.execute(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = 'devpi.kv'::regclass "
            "AND attname = 'value'"
        ).fetchone()
    # without lz4 (older than 14, or built without it) the column keeps the server's default
    assert compression == (("l",) if has_lz4 else ("",))


def test_values_with_every_kind_of_quoting_survive_the_binary_batch(postgres_dsn):
    # the batched upsert sends its arrays in binary; text arrays would need every quote,
    # backslash, brace and comma escaped
    tricky = ['"{a,b}"', "back\\slash", "NULL", "", "é ☃ \u0000", {"k": ['"', "\\", "}{"]}]
    store = make_store(postgres_dsn)
    try:
        with store.write() as tx:
            for i, value in enumerate(tricky):
                tx.set(f"k:{i}", value)
            tx.set('k:"{,}"', "key with quotes")
        with store.read() as tx:
            assert [tx.get(f"k:{i}") for i in range(len(tricky))] == tricky
            assert tx.get('k:"{,}"') == "key with quotes"
    finally:
        store.close()


def test_a_connection_used_just_now_is_not_checked_again(postgres_dsn, monkeypatch):
    # the pool's check is a round trip of its own: only connections unused for a while
    from psycopg_pool import ConnectionPool  # noqa: PLC0415 - after the skip

    checked = []
    original = ConnectionPool.check_connection

    def counted(conn):
        checked.append(conn)
        original(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted))
    store = PgStore(PgstoreSettings(dsn=postgres_dsn, pool_min=1, pool_max=1))
    try:
        for _ in range(5):
            with store.read() as tx:
                tx.get("k")
        assert len(checked) <= 1  # the first use of the pool's one connection, at most
        monkeypatch.setattr(pg_store, "CHECK_IDLE", 0.0)
        with store.read() as tx:
            tx.get("k")
        assert len(checked) >= 1
    finally:
        store.close()


def test_a_stuck_writer_elsewhere_is_a_503_with_retry_after(postgres_dsn):
    store = make_store(postgres_dsn, lock_timeout=0.2)
    try:
        with psycopg.connect(postgres_dsn) as other:  # another node, mid-transaction
            other.execute("SELECT value FROM devpi.meta WHERE name = 'serial' FOR UPDATE")
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable) as info, store.write() as tx:
                tx.set("k", 1)
            assert time.monotonic() - started < 5
            assert (info.value.status, info.value.retry_after) == (503, 1)
        with store.write() as tx:  # the lock is free again; the pool connection still works
            tx.set("k", 1)
        assert store.current_serial() == 1
    finally:
        store.close()


def test_listen_learns_other_nodes_serials_without_polling(postgres_dsn):
    writer = make_store(postgres_dsn, listen=True)  # all nodes share one configuration
    listener = make_store(postgres_dsn, schema="devpi", listen=True)
    try:
        deadline = time.monotonic() + 5
        while listener._known[1] < 0 and time.monotonic() < deadline:  # listener connected
            time.sleep(0.005)
        lags = []
        for value in range(5):
            with writer.write() as tx:
                tx.set("k", value)
            committed = time.monotonic()
            while listener._known[0] != value + 1 and time.monotonic() < committed + 5:
                time.sleep(0.0005)
            lags.append(time.monotonic() - committed)
        assert listener._known[0] == 5, "NOTIFY must update the known serial by itself"
        assert max(lags) < 1.0, lags
    finally:
        listener.close()
        writer.close()


def test_one_thread_polls_the_serial_while_others_answer_with_the_known_one(
    postgres_dsn, monkeypatch
):
    store = make_store(postgres_dsn)
    try:
        with store.write() as tx:
            tx.set("k", 1)
        known = store.current_serial()
        polls, polling, release = [], threading.Event(), threading.Event()
        real = store._serial

        def slow_poll(conn, *, lock=False):
            polls.append(lock)
            polling.set()
            release.wait(2)
            return real(conn, lock=lock)

        monkeypatch.setattr(store, "_serial", slow_poll)
        monkeypatch.setattr(pg_store, "SERIAL_BOUND", 3600)  # the known serial stays usable
        store._known = (known, time.monotonic() - pg_store.SERIAL_REFRESH)  # due for a poll
        poller = threading.Thread(target=store.current_serial)
        poller.start()
        assert polling.wait(10)
        # meanwhile every other caller answers at once, without a query of its own
        assert [store.current_serial() for _ in range(5)] == [known] * 5
        release.set()
        poller.join(10)
        assert polls == [False]
    finally:
        release.set()
        store.close()


def test_commits_notify_only_when_listen_is_on(postgres_dsn):
    quiet = make_store(postgres_dsn)
    loud = make_store(postgres_dsn, listen=True)
    try:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute('LISTEN "devpi_serial_devpi"')
            with quiet.write() as tx:
                tx.set("k", "quiet")
            with loud.write() as tx:
                tx.set("k", "loud")
            serial = loud.current_serial()
            # notifications arrive in commit order: the quiet commit's would come first
            payloads = [n.payload for n in conn.notifies(timeout=5, stop_after=1)]
        assert payloads == [str(serial)]
    finally:
        loud.close()
        quiet.close()


def test_backend_is_chosen_by_name_and_needs_a_dsn(postgres_dsn, tmp_path):
    (backend,) = devpi_core_pgstore.devpi_metadata_backends()
    assert (backend.name, backend.section) == ("postgresql", "pgstore")
    with pytest.raises(StartupError, match="dsn is empty"):
        backend.factory(str(tmp_path), {})
    with pytest.raises(StartupError, match="cannot open the PostgreSQL metadata store"):
        backend.factory(str(tmp_path), {"dsn": "host=127.0.0.1 port=1 connect_timeout=2"})
    store = backend.factory(str(tmp_path), {"dsn": postgres_dsn, "schema": "other"})
    try:
        assert store.current_serial() == 0
        assert store.schema_version() == 2
    finally:
        store.close()


def test_two_app_nodes_share_one_database(make_app, postgres_dsn):
    config = {
        "storage": {"metadata": "postgresql"},
        "plugins": {"pgstore": {"dsn": postgres_dsn, "pool_max": 4}},
    }
    node_a, node_b = make_app(config), make_app(config)
    node_a.create_and_login("alice")
    node_a.create_index("alice/dev")
    # node B answers at once from the same data: no 404 while its serial cache catches up
    assert node_b.get_json("/alice/dev")["result"]["type"] == "stage"
    node_a.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")))
    assert node_b.simple_filenames("alice/dev", "pkg") == ["pkg-1.0-py3-none-any.whl"]
    node_b.auth = node_a.auth  # a login token made by node A works on node B
    node_b.create_index("alice/other")
    uuids = {node.get_json("/+status")["result"]["uuid"] for node in (node_a, node_b)}
    assert len(uuids) == 1


def test_problems_report_a_changelog_that_disagrees_with_the_serial(postgres_dsn):
    store = make_store(postgres_dsn)
    try:
        for value in range(3):
            with store.write() as tx:
                tx.set("k", value)
        assert store.problems() == []
        with psycopg.connect(postgres_dsn) as conn:
            conn.execute("DELETE FROM devpi.changelog WHERE serial = 2")
            conn.execute("UPDATE devpi.kv SET serial = 9")
        assert store.problems() == [
            "the changelog from 1 to 3 has gaps (2 entries)",
            "a key was written at serial 9, after the serial 3",
        ]
    finally:
        store.close()


def test_a_dropped_database_is_a_503_at_once_not_after_the_pool_timeout(postgres_server):
    dsn = postgres_server.create_database()
    store = make_store(dsn, lock_timeout=30)
    try:
        with store.write() as tx:
            tx.set("k", 1)
        name = dsn.rsplit("=", 1)[1]
        with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        started = time.monotonic()
        for attempt in (store.read, store.write, store.read):
            with pytest.raises(ServiceUnavailable), attempt() as tx:
                tx.get("k")
        assert time.monotonic() - started < 5
    finally:
        store.close()


def test_an_unreachable_database_is_a_503_not_a_hang(postgres_server):
    dsn = postgres_server.create_database()
    store = make_store(dsn, lock_timeout=1)
    try:
        with store.write() as tx:
            tx.set("k", 1)
        name = dsn.rsplit("=", 1)[1]
        with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        started = time.monotonic()
        for attempt in (store.read, store.write):
            with pytest.raises(ServiceUnavailable) as info, attempt() as tx:
                tx.get("k")
            assert (info.value.status, info.value.retry_after) == (503, 1)
        assert time.monotonic() - started < 10
    finally:
        store.close()
