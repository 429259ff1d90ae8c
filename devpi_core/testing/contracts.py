"""Contract test suites for storage backends.

A backend's tests subclass these and provide a fixture: ``metadata_store`` (a fresh, empty
:class:`~devpi_core.interfaces.MetadataStore`) or ``blob_store`` (a fresh
:class:`~devpi_core.interfaces.BlobStore`) plus ``blob_tmpdir`` (a directory on the same
filesystem for temp files). A metadata store that several processes may share also runs
:class:`SharedMetadataStoreContract`, with a second fixture ``metadata_store_twin``: another
store object on the same database as ``metadata_store`` (as a second node would open it).
Third-party backends run the same classes.
"""

from __future__ import annotations

import statistics
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest

from devpi_core.interfaces import SERIAL_BOUND, StashKey
from devpi_core.testing.blob_contract import BlobStoreContract
from devpi_core.testing.search_contract import SearchContract

__all__ = [
    "BlobStoreContract",
    "MetadataStoreContract",
    "SharedMetadataStoreContract",
    "wait_until",
]

if TYPE_CHECKING:
    from collections.abc import Callable

    from devpi_core.interfaces import MetadataStore


class Boom(Exception):
    """Raised inside a transaction to force a rollback."""


def failing_write(
    store: MetadataStore, values: dict[str, Any], callback: Callable[[int], None] | None = None
) -> None:
    """Set ``values`` (and register ``callback``) in a write transaction, then raise ``Boom``."""
    with store.write() as tx:
        for key, value in values.items():
            tx.set(key, value)
        if callback is not None:
            tx.after_commit(callback)
        raise Boom


def _reached(store: MetadataStore, serial: int) -> bool:
    return store.current_serial() >= serial


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> float:
    """Poll ``condition`` until true; return the seconds it took (fail after ``timeout``)."""
    started = time.monotonic()
    while not condition():
        elapsed = time.monotonic() - started
        assert elapsed < timeout, f"condition not met within {timeout} s"
        time.sleep(0.001)
    return time.monotonic() - started


_SEEN = StashKey[list[str]]()



class MetadataStoreContract(SearchContract):
    """What every metadata store must do (searching its documents included)."""

    def test_keys_are_in_byte_order(self, metadata_store: MetadataStore) -> None:
        keys = ["k:a", "k:B", "k:é", "k:Z", "k:f", "k:_", "k:\u20ac", "k:0"]
        with metadata_store.write() as tx:
            for key in keys:
                tx.set(key, key)
        expected = sorted(keys, key=lambda key: key.encode())
        assert expected == ["k:0", "k:B", "k:Z", "k:_", "k:a", "k:f", "k:é", "k:\u20ac"]
        with metadata_store.read() as tx:
            assert list(tx.keys("k:")) == expected
            assert [key for key, _value in tx.items("k")] == expected

    def test_stash_is_per_transaction(self, metadata_store: MetadataStore) -> None:
        with metadata_store.write() as tx:
            tx.stash.setdefault(_SEEN, []).append("first")
            assert tx.stash[_SEEN] == ["first"]
            assert tx.stash is tx.stash
        with metadata_store.write() as tx:
            assert _SEEN not in tx.stash
            assert tx.stash.get(_SEEN, []) == []

    def test_after_commit_runs_outside_the_writer_lock(
        self, metadata_store: MetadataStore
    ) -> None:
        # A callback may write (and other writers may commit before it runs): it does not
        # hold the writer lock, so it cannot deadlock on it.
        seen: list[Any] = []

        def follow_up(serial: int) -> None:
            with metadata_store.write() as tx:
                tx.set("follow-up", serial)
            seen.append(metadata_store.current_serial())

        def write() -> None:
            with metadata_store.write() as tx:
                tx.set("k", 1)
                tx.after_commit(follow_up)

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "an after_commit callback that writes deadlocked"
        assert seen == [2]
        with metadata_store.read() as tx:
            assert (tx.get("follow-up"), tx.key_serial("follow-up")) == (1, 2)

    def test_leases(self, metadata_store: MetadataStore) -> None:
        store = metadata_store
        assert store.acquire_lease("fill:x", "node-a", 30)
        assert not store.acquire_lease("fill:x", "node-b", 30), "a held lease is exclusive"
        assert store.acquire_lease("fill:x", "node-a", 30), "the holder may take it again"
        assert store.acquire_lease("gc", "node-b", 30), "leases are independent"
        assert store.renew_lease("fill:x", "node-a", 30)
        assert not store.renew_lease("fill:x", "node-b", 30)
        store.release_lease("fill:x", "node-b")  # not the holder: nothing happens
        assert not store.acquire_lease("fill:x", "node-b", 30)
        store.release_lease("fill:x", "node-a")
        assert not store.renew_lease("fill:x", "node-a", 30)
        assert store.acquire_lease("fill:x", "node-b", 30)
        assert store.current_serial() == 0, "leases are not metadata changes"

    def test_expired_lease_is_taken_over(self, metadata_store: MetadataStore) -> None:
        store = metadata_store
        assert store.acquire_lease("fill:y", "node-a", 0.2)
        waited = wait_until(lambda: store.acquire_lease("fill:y", "node-b", 30))
        assert waited > 0.05, "taken over before it expired"
        assert not store.renew_lease("fill:y", "node-a", 30), "the old holder lost it"
        assert not store.acquire_lease("fill:y", "node-a", 30)

    def test_shared_identity_keeps_the_first(self, metadata_store: MetadataStore) -> None:
        first = metadata_store.shared_identity("a" * 32, b"s" * 32)
        assert first == ("a" * 32, b"s" * 32)
        assert metadata_store.shared_identity("b" * 32, b"t" * 32) in {first, ("b" * 32, b"t" * 32)}

    def test_empty_store_has_serial_zero(self, metadata_store: MetadataStore) -> None:
        assert metadata_store.current_serial() == 0
        with metadata_store.read() as tx:
            assert tx.serial == 0
            assert tx.get("user:x") is None
            assert list(tx.items("")) == []

    def test_write_commits_and_increments_serial(self, metadata_store: MetadataStore) -> None:
        with metadata_store.write() as tx:
            tx.set("user:alice", {"email": "a@example.com", "n": [1, 2]})
        assert metadata_store.current_serial() == 1
        with metadata_store.read() as tx:
            assert tx.get("user:alice") == {"email": "a@example.com", "n": [1, 2]}
            assert tx.key_serial("user:alice") == 1
            assert tx.serial == 1

    def test_unchanged_write_creates_no_serial(self, metadata_store: MetadataStore) -> None:
        with metadata_store.write() as tx:
            tx.set("k", {"a": 1})
        with metadata_store.write() as tx:
            tx.set("k", {"a": 1})
            assert tx.delete("missing") is False
        assert metadata_store.current_serial() == 1

    def test_exception_rolls_back(self, metadata_store: MetadataStore) -> None:
        with metadata_store.write() as tx:
            tx.set("k", 1)
        with pytest.raises(Boom):
            failing_write(metadata_store, {"k": 2, "other": 3})
        with metadata_store.read() as tx:
            assert tx.get("k") == 1
            assert tx.get("other") is None
        assert metadata_store.current_serial() == 1

    def test_write_sees_own_changes(self, metadata_store: MetadataStore) -> None:
        with metadata_store.write() as tx:
            tx.set("a:1", "x")
            assert tx.get("a:1") == "x"
            assert [k for k, _ in tx.items("a:")] == ["a:1"]
            assert tx.delete("a:1") is True
            assert tx.get("a:1") is None

    def test_prefix_scan_is_ordered_and_exact(self, metadata_store: MetadataStore) -> None:
        with metadata_store.write() as tx:
            for key in ("p:b", "p:a", "p:c:1", "q:a", "p", "pz"):
                tx.set(key, key)
        with metadata_store.read() as tx:
            assert [k for k, _ in tx.items("p:")] == ["p:a", "p:b", "p:c:1"]
            assert list(tx.keys("p:c")) == ["p:c:1"]
            assert dict(tx.items("q:")) == {"q:a": "q:a"}

    def test_key_serial_tracks_last_write(self, metadata_store: MetadataStore) -> None:
        with metadata_store.write() as tx:
            tx.set("a", 1)
            tx.set("b", 1)
        with metadata_store.write() as tx:
            tx.set("b", 2)
        with metadata_store.read() as tx:
            assert tx.key_serial("a") == 1
            assert tx.key_serial("b") == 2
            assert tx.key_serial("c") is None

    def test_changes_commit_at_the_next_serial(self, metadata_store: MetadataStore) -> None:
        for value in ("first", "second"):
            seen: list[int] = []
            with metadata_store.write() as tx:
                expected = tx.serial + 1
                tx.set("k", value)
                tx.after_commit(seen.append)
            assert seen == [expected] == [metadata_store.current_serial()]
            with metadata_store.read() as rtx:
                assert rtx.key_serial("k") == expected

    def test_after_commit_runs_with_serial_only_on_commit(
        self, metadata_store: MetadataStore
    ) -> None:
        seen: list[int] = []
        with metadata_store.write() as tx:
            tx.set("a", 1)
            tx.after_commit(seen.append)
        with pytest.raises(Boom):
            failing_write(metadata_store, {"a": 2}, seen.append)
        assert seen == [1]

    def test_reader_keeps_its_snapshot(self, metadata_store: MetadataStore) -> None:
        with metadata_store.write() as tx:
            tx.set("a", "old")
        with metadata_store.read() as reader:
            assert reader.get("a") == "old"
            done = threading.Event()

            def write() -> None:
                with metadata_store.write() as tx:
                    tx.set("a", "new")
                done.set()

            thread = threading.Thread(target=write)
            thread.start()
            assert done.wait(10), "a writer must not wait for readers"
            assert reader.get("a") == "old"
        thread.join()
        with metadata_store.read() as later:
            assert later.get("a") == "new"

    def test_values_are_copies(self, metadata_store: MetadataStore) -> None:
        value: dict[str, Any] = {"list": [1]}
        with metadata_store.write() as tx:
            tx.set("a", value)
        value["list"].append(2)
        with metadata_store.read() as tx:
            got = tx.get("a")
            got["list"].append(3)
            assert tx.get("a") == {"list": [1]}

    def test_concurrent_writers_serialize(self, metadata_store: MetadataStore) -> None:
        def bump() -> None:
            for _ in range(20):
                with metadata_store.write() as tx:
                    tx.set("counter", (tx.get("counter") or 0) + 1)

        threads = [threading.Thread(target=bump) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with metadata_store.read() as tx:
            assert tx.get("counter") == 80
        assert metadata_store.current_serial() == 80

    def test_unicode_keys_and_values(self, metadata_store: MetadataStore) -> None:
        with metadata_store.write() as tx:
            tx.set("u:ümlaut", {"t": "naïve ☃"})
        with metadata_store.read() as tx:
            assert dict(tx.items("u:")) == {"u:ümlaut": {"t": "naïve ☃"}}

    def test_values_of_every_json_type(self, metadata_store: MetadataStore) -> None:
        values = {"f": False, "z": 0, "e": "", "l": [], "d": {}, "x": 1.5, "n": [None, True, -3]}
        with metadata_store.write() as tx:
            for key, value in values.items():
                tx.set(f"v:{key}", value)
        with metadata_store.read() as tx:
            assert {key[2:]: value for key, value in tx.items("v:")} == values

    def test_non_json_values_are_refused(self, metadata_store: MetadataStore) -> None:
        with pytest.raises(TypeError):
            failing_write(metadata_store, {"ok": 1, "bad": {1, 2}})
        with metadata_store.read() as tx:
            assert tx.get("ok") is None
        assert metadata_store.current_serial() == 0

    def test_large_values(self, metadata_store: MetadataStore) -> None:
        big = {
            "text": "x" * (2 << 20),
            "list": list(range(50_000)),
            "deep": {"a": {"b": {"c": ["d"]}}},
        }
        with metadata_store.write() as tx:
            tx.set("big", big)
        with metadata_store.read() as tx:
            assert tx.get("big") == big

    def test_many_keys(self, metadata_store: MetadataStore) -> None:
        names = [f"m:{i:05d}" for i in range(3000)]
        with metadata_store.write() as tx:
            for name in reversed(names):
                tx.set(name, {"n": name})
        with metadata_store.write() as tx:
            for name in names[::2]:
                assert tx.delete(name)
        assert metadata_store.current_serial() == 2
        with metadata_store.read() as tx:
            assert list(tx.keys("m:")) == names[1::2]
            assert [value["n"] for _key, value in tx.items("m:00")] == names[1:1000:2]
            assert len(list(tx.keys(""))) == 1500

    def test_delete_then_set_in_one_transaction(self, metadata_store: MetadataStore) -> None:
        with metadata_store.write() as tx:
            tx.set("k", "first")
        with metadata_store.write() as tx:
            assert tx.delete("k") is True
            assert tx.key_serial("k") is None
            tx.set("k", "second")
        with metadata_store.read() as tx:
            assert (tx.get("k"), tx.key_serial("k")) == ("second", 2)

    def test_deleted_key_is_gone(self, metadata_store: MetadataStore) -> None:
        with metadata_store.write() as tx:
            tx.set("k", 1)
        with metadata_store.write() as tx:
            tx.delete("k")
        assert metadata_store.current_serial() == 2
        with metadata_store.read() as tx:
            assert (tx.get("k"), tx.key_serial("k"), list(tx.keys("k"))) == (None, None, [])

    def test_after_commit_order_and_visibility(self, metadata_store: MetadataStore) -> None:
        seen: list[tuple[str, int, Any, int]] = []

        def callback(label: str) -> Any:
            def run(serial: int) -> None:
                with metadata_store.read() as tx:
                    seen.append((label, serial, tx.get("k"), metadata_store.current_serial()))
            return run

        with metadata_store.write() as tx:
            tx.set("k", "committed")
            tx.after_commit(callback("first"))
            tx.after_commit(callback("second"))
            assert seen == []
        # In registration order, after the commit: readers already see the change.
        assert seen == [("first", 1, "committed", 1), ("second", 1, "committed", 1)]

    def test_transaction_without_changes_runs_no_callbacks(
        self, metadata_store: MetadataStore
    ) -> None:
        seen: list[int] = []
        with metadata_store.write() as tx:
            tx.get("nothing")
            tx.after_commit(seen.append)
        assert seen == []
        assert metadata_store.current_serial() == 0

    def test_read_serial_matches_current_serial(self, metadata_store: MetadataStore) -> None:
        for value in range(3):
            with metadata_store.write() as tx:
                tx.set("k", value)
            with metadata_store.read() as tx:
                assert tx.serial == metadata_store.current_serial() == value + 1


class SharedMetadataStoreContract:
    """What a metadata store several processes (nodes) share must do: run with two store
    objects on one database, ``metadata_store`` (node A) and ``metadata_store_twin`` (node B)."""

    def test_serials_are_gap_free_across_nodes(
        self, metadata_store: MetadataStore, metadata_store_twin: MetadataStore
    ) -> None:
        def bump(store: MetadataStore, name: str) -> None:
            for i in range(12):
                with store.write() as tx:
                    tx.set("counter", (tx.get("counter") or 0) + 1)
                    tx.set(f"w:{name}:{i:02d}", tx.serial + 1)

        threads = [
            threading.Thread(target=bump, args=(store, f"{node}{n}"))
            for node, store in (("a", metadata_store), ("b", metadata_store_twin))
            for n in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with metadata_store_twin.read() as tx:
            assert tx.get("counter") == tx.serial == 48, "writers were not serialized"
            written = [tx.key_serial(key) or 0 for key in tx.keys("w:")]
            # every commit took the next serial, in commit order, on whichever node
            assert sorted(written) == list(range(1, 49))
            assert all(value == tx.key_serial(key) for key, value in tx.items("w:"))

    def test_the_other_node_notices_a_write_within_the_bound(
        self, metadata_store: MetadataStore, metadata_store_twin: MetadataStore
    ) -> None:
        lags: list[float] = []
        for value in range(5):
            metadata_store_twin.current_serial()  # B's cache is fresh: the worst case
            with metadata_store.write() as tx:
                tx.set("k", value)
            with metadata_store_twin.read() as tx:  # a new transaction sees it at once
                assert (tx.serial, tx.get("k")) == (value + 1, value)
            lags.append(wait_until(partial(_reached, metadata_store_twin, value + 1)))
        assert statistics.median(lags) <= SERIAL_BOUND, lags

    def test_snapshot_isolation_across_nodes(
        self, metadata_store: MetadataStore, metadata_store_twin: MetadataStore
    ) -> None:
        with metadata_store.write() as tx:
            tx.set("a", "old")
        with metadata_store_twin.read() as reader:
            assert reader.get("a") == "old"
            with metadata_store.write() as tx:
                tx.set("a", "new")
                tx.set("b", "new")
            assert (reader.serial, reader.get("a"), reader.get("b")) == (1, "old", None)
            assert list(reader.keys("")) == ["a"]
        with metadata_store_twin.read() as later:
            assert (later.serial, later.get("a"), later.get("b")) == (2, "new", "new")

    def test_lease_takeover_across_nodes(
        self, metadata_store: MetadataStore, metadata_store_twin: MetadataStore
    ) -> None:
        assert metadata_store.acquire_lease("fill:z", "node-a", 0.3)
        assert not metadata_store_twin.acquire_lease("fill:z", "node-b", 30)
        assert metadata_store.renew_lease("fill:z", "node-a", 0.3)  # a heartbeat keeps it
        assert not metadata_store_twin.acquire_lease("fill:z", "node-b", 30)
        # node A stops heartbeating (killed): node B takes over once the lease expired
        wait_until(lambda: metadata_store_twin.acquire_lease("fill:z", "node-b", 30))
        assert not metadata_store.renew_lease("fill:z", "node-a", 30)
        metadata_store_twin.release_lease("fill:z", "node-b")
        assert metadata_store.acquire_lease("fill:z", "node-a", 30)

    def test_identity_is_shared(
        self, metadata_store: MetadataStore, metadata_store_twin: MetadataStore
    ) -> None:
        first = metadata_store.shared_identity("a" * 32, b"s" * 32)
        assert metadata_store_twin.shared_identity("b" * 32, b"t" * 32) == first
        assert first == ("a" * 32, b"s" * 32)
