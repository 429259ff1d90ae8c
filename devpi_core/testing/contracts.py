"""Contract test suites for storage backends.

A backend's tests subclass these and provide a fixture: ``metadata_store`` (a fresh, empty
:class:`~devpi_core.interfaces.MetadataStore`) or ``blob_store`` (a fresh
:class:`~devpi_core.interfaces.BlobStore`) plus ``blob_tmpdir`` (a directory on the same
filesystem for temp files). Third-party backends run the same classes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import TYPE_CHECKING, Any

import pytest

from devpi_core.blobs import BlobIngest

if TYPE_CHECKING:
    from devpi_core.interfaces import BlobStore, MetadataStore


class Boom(Exception):
    """Raised inside a transaction to force a rollback."""


class MetadataStoreContract:
    """What every metadata store must do."""

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
        with pytest.raises(Boom), metadata_store.write() as tx:
            tx.set("k", 2)
            tx.set("other", 3)
            raise Boom
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

    def test_after_commit_runs_with_serial_only_on_commit(
        self, metadata_store: MetadataStore
    ) -> None:
        seen: list[int] = []
        with metadata_store.write() as tx:
            tx.set("a", 1)
            tx.after_commit(seen.append)
        with pytest.raises(Boom), metadata_store.write() as tx:
            tx.set("a", 2)
            tx.after_commit(seen.append)
            raise Boom
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
        with metadata_store.read() as tx:
            assert tx.get("a") == "new"

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


def _ingest(blobs: BlobStore, tmpdir: str, data: bytes) -> str:
    with BlobIngest(blobs, tmpdir) as ingest:
        ingest.write(data)
        return ingest.commit()


class BlobStoreContract:
    """What every blob store must do."""

    def test_put_and_read(self, blob_store: BlobStore, blob_tmpdir: str) -> None:
        data = b"hello" * 1000
        digest = _ingest(blob_store, blob_tmpdir, data)
        assert digest == hashlib.sha256(data).hexdigest()
        assert blob_store.exists(digest)
        assert blob_store.size(digest) == len(data)
        with blob_store.open(digest) as f:
            assert f.read() == data
            f.seek(5)
            assert f.read(5) == b"hello"
        assert digest in set(blob_store.iter_blobs())

    def test_temp_file_is_consumed(self, blob_store: BlobStore, blob_tmpdir: str) -> None:
        _ingest(blob_store, blob_tmpdir, b"x")
        assert os.listdir(blob_tmpdir) == []

    def test_put_twice_is_noop(self, blob_store: BlobStore, blob_tmpdir: str) -> None:
        first = _ingest(blob_store, blob_tmpdir, b"same")
        second = _ingest(blob_store, blob_tmpdir, b"same")
        assert first == second
        assert list(blob_store.iter_blobs()).count(first) == 1
        assert os.listdir(blob_tmpdir) == []

    def test_missing_blob(self, blob_store: BlobStore) -> None:
        digest = hashlib.sha256(b"nothing").hexdigest()
        assert not blob_store.exists(digest)
        assert blob_store.size(digest) is None
        with pytest.raises(FileNotFoundError):
            blob_store.open(digest)
        blob_store.delete(digest)  # deleting what is absent is fine

    def test_delete(self, blob_store: BlobStore, blob_tmpdir: str) -> None:
        digest = _ingest(blob_store, blob_tmpdir, b"bye")
        blob_store.delete(digest)
        assert not blob_store.exists(digest)
        assert digest not in set(blob_store.iter_blobs())

    def test_discarded_ingest_leaves_nothing(self, blob_store: BlobStore, blob_tmpdir: str) -> None:
        with BlobIngest(blob_store, blob_tmpdir) as ingest:
            ingest.write(b"partial")
        assert os.listdir(blob_tmpdir) == []
        assert not blob_store.exists(hashlib.sha256(b"partial").hexdigest())

    def test_local_path_if_any_has_content(self, blob_store: BlobStore, blob_tmpdir: str) -> None:
        digest = _ingest(blob_store, blob_tmpdir, b"local")
        path = blob_store.local_path(digest)
        if path is not None:
            with open(path, "rb") as f:
                assert f.read() == b"local"
