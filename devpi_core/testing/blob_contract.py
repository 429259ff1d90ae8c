"""The contract test suite of blob stores (:class:`BlobStoreContract`), re-exported by
:mod:`devpi_core.testing.contracts`: a backend's tests subclass it and provide the fixtures
``blob_store`` (a fresh :class:`~devpi_core.interfaces.BlobStore`) and ``blob_tmpdir`` (a
directory on the same filesystem for temp files).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import TYPE_CHECKING

import pytest

from devpi_core.blobs import BlobIngest

if TYPE_CHECKING:
    from devpi_core.interfaces import BlobStore


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

    def test_empty_blob(self, blob_store: BlobStore, blob_tmpdir: str) -> None:
        digest = _ingest(blob_store, blob_tmpdir, b"")
        assert digest == hashlib.sha256(b"").hexdigest()
        assert blob_store.size(digest) == 0
        with blob_store.open(digest) as f:
            assert f.read() == b""

    def test_large_blob_streams_in_chunks(self, blob_store: BlobStore, blob_tmpdir: str) -> None:
        chunk = os.urandom(1 << 16)
        expected = hashlib.sha256()
        with BlobIngest(blob_store, blob_tmpdir) as ingest:
            for i in range(128):  # 8 MiB
                piece = bytes([i]) + chunk[1:]
                expected.update(piece)
                ingest.write(piece)
            digest = ingest.commit()
        assert digest == expected.hexdigest()
        assert blob_store.size(digest) == 128 << 16
        check = hashlib.sha256()
        with blob_store.open(digest) as f:
            while piece := f.read(100_000):
                check.update(piece)
            f.seek(-3, os.SEEK_END)
            assert f.read() == chunk[-3:]
        assert check.hexdigest() == digest

    def test_many_blobs(self, blob_store: BlobStore, blob_tmpdir: str) -> None:
        digests = {_ingest(blob_store, blob_tmpdir, f"blob {i}".encode()) for i in range(100)}
        assert len(digests) == 100
        assert set(blob_store.iter_blobs()) == digests
        assert all(blob_store.exists(d) for d in digests)

    def test_concurrent_ingest_of_the_same_content(
        self, blob_store: BlobStore, blob_tmpdir: str
    ) -> None:
        data = b"same content" * 10_000
        results: list[str] = []

        def store() -> None:
            results.append(_ingest(blob_store, blob_tmpdir, data))

        threads = [threading.Thread(target=store) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert set(results) == {hashlib.sha256(data).hexdigest()}
        assert list(blob_store.iter_blobs()) == results[:1]
        with blob_store.open(results[0]) as f:
            assert f.read() == data
        assert os.listdir(blob_tmpdir) == []

    def test_stat_gives_size_and_put_time(self, blob_store: BlobStore, blob_tmpdir: str) -> None:
        before = time.time()
        digest = _ingest(blob_store, blob_tmpdir, b"stat me")
        found = blob_store.stat(digest)
        assert found is not None
        assert found.size == 7
        # object stores keep whole seconds
        assert before - 1 <= found.mtime <= time.time() + 1
        assert blob_store.stat(hashlib.sha256(b"absent").hexdigest()) is None

    def test_collecting_delete_keeps_blobs_put_since(
        self, blob_store: BlobStore, blob_tmpdir: str
    ) -> None:
        digest = _ingest(blob_store, blob_tmpdir, b"collect me")
        first = blob_store.stat(digest)
        assert first is not None
        assert blob_store.delete(digest, older_than=first.mtime) is False
        # the same content uploaded again (after the clock moved on) renews the put time ...
        _wait_for_clock(first.mtime + 1.05)
        _ingest(blob_store, blob_tmpdir, b"collect me")
        # ... so a collector whose cut-off lies between the two puts keeps the blob
        assert blob_store.delete(digest, older_than=first.mtime + 1) is False
        assert blob_store.exists(digest)
        assert blob_store.delete(digest, older_than=time.time() + 2) is True
        assert not blob_store.exists(digest)
        assert blob_store.delete(digest, older_than=time.time() + 2) is False

    def test_delete_reports_whether_it_removed(
        self, blob_store: BlobStore, blob_tmpdir: str
    ) -> None:
        digest = _ingest(blob_store, blob_tmpdir, b"once")
        assert blob_store.delete(digest) is True
        assert blob_store.delete(digest) is False


def _wait_for_clock(moment: float) -> None:
    """Wait (at most 3 s) until the wall clock has passed ``moment``: put times are wall-clock
    times, some stores keep only whole seconds."""
    deadline = time.monotonic() + 3
    while time.time() <= moment:
        assert time.monotonic() < deadline, "the wall clock does not advance"
        time.sleep(0.02)
