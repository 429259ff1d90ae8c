"""The blob garbage collector on the in-memory stores: marks, the ``gc`` lease, a killed sweep."""

from __future__ import annotations

import hashlib
import threading

import pytest

from devpi_core.blob_gc import LEASE, BlobCollector
from devpi_core.model.blobrefs import (
    BlobCollecting,
    add_ref,
    drop_ref,
    gone_key,
    orphan_key,
)
from devpi_core.testing.memstore import MemoryBlobStore, MemoryStore


def put(blobs, tmp_path, data):
    path = tmp_path / "incoming"
    path.write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()
    blobs.put_file(str(path), sha256)
    return sha256


def orphaned(tmp_path, data=b"content"):
    store, blobs = MemoryStore(), MemoryBlobStore()
    sha = put(blobs, tmp_path, data)
    with store.write() as tx:
        add_ref(tx, blobs, sha, "alice/dev/a.whl")
    with store.write() as tx:
        drop_ref(tx, blobs, sha, "alice/dev/a.whl")
    return store, blobs, sha


def test_the_last_reference_marks_and_a_new_one_clears(tmp_path):
    store, blobs, sha = orphaned(tmp_path)
    with store.read() as tx:
        assert tx.get(orphan_key(sha))["since"] > 0
    with store.write() as tx:
        add_ref(tx, blobs, sha, "bob/dev/a.whl")
    with store.read() as tx:
        assert tx.get(orphan_key(sha)) is None
    assert BlobCollector(store, blobs, grace=0).sweep().removed == []
    assert blobs.exists(sha)


def test_two_sweepers_on_one_store_one_holds_gc(tmp_path):
    store, blobs, sha = orphaned(tmp_path)
    first, second = (BlobCollector(store, blobs, grace=0, holder=name) for name in "ab")
    deleting, go_on = threading.Event(), threading.Event()
    real_delete = blobs.delete

    def slow_delete(sha256, *, older_than=None):
        deleting.set()
        assert go_on.wait(30)
        return real_delete(sha256, older_than=older_than)

    blobs.delete = slow_delete
    results = []
    sweeping = threading.Thread(target=lambda: results.append(first.sweep()))
    sweeping.start()
    assert deleting.wait(30)
    try:
        other = second.sweep()
        assert other.lease_held_elsewhere
        assert other.removed == []
        assert not store.acquire_lease(LEASE, "someone else", 30)
    finally:
        go_on.set()
        sweeping.join(30)
    assert [sha256 for sha256, _size in results[0].removed] == [sha]
    assert store.acquire_lease(LEASE, "someone else", 30), "released after the sweep"


def test_a_killed_sweep_is_finished_by_the_next_one_and_blocks_add_ref_meanwhile(tmp_path):
    store, blobs, sha = orphaned(tmp_path)
    killed = BlobCollector(store, blobs, grace=0, holder="killed")
    assert killed._claim(float("inf"), set()) == {sha: pytest.approx(store_since(store, sha))}
    with pytest.raises(BlobCollecting), store.write() as tx:  # it may vanish at any moment
        add_ref(tx, blobs, sha, "bob/dev/a.whl")
    report = BlobCollector(store, blobs, grace=3600, holder="next").sweep()
    assert [sha256 for sha256, _size in report.removed] == [sha], "deleting marks are taken over"
    assert not blobs.exists(sha)
    with store.read() as tx:
        assert tx.get(orphan_key(sha)) is None
        assert tx.get(gone_key(sha)) is not None
    # a writer without the content (a mirror fill that put it before the delete) is refused...
    with pytest.raises(BlobCollecting), store.write() as tx:
        add_ref(tx, blobs, sha, "bob/dev/a.whl")
    # ...and accepted once it stored the content again
    put(blobs, tmp_path, b"content")
    with store.write() as tx:
        add_ref(tx, blobs, sha, "bob/dev/a.whl")
    with store.read() as tx:
        assert tx.get(gone_key(sha)) is None


def store_since(store, sha):
    with store.read() as tx:
        return tx.get(orphan_key(sha))["since"]


def test_content_put_again_during_the_sweep_is_kept_with_a_fresh_mark(tmp_path):
    store, blobs, sha = orphaned(tmp_path)
    since = store_since(store, sha)
    real_delete = blobs.delete

    def delete(sha256, *, older_than=None):
        put(blobs, tmp_path, b"content")  # an upload whose transaction is still to come
        return real_delete(sha256, older_than=older_than)

    blobs.delete = delete
    report = BlobCollector(store, blobs, grace=0).sweep()
    assert (report.removed, report.kept) == ([], [sha])
    assert blobs.exists(sha)
    assert store_since(store, sha) > since, "a new grace period"


def test_a_failing_blob_store_leaves_no_deleting_marks_behind(tmp_path):
    store, blobs, first = orphaned(tmp_path, b"first")
    second = put(blobs, tmp_path, b"second")
    with store.write() as tx:
        add_ref(tx, blobs, second, "alice/dev/b.whl")
        drop_ref(tx, blobs, second, "alice/dev/b.whl")
    real_delete = blobs.delete

    def broken(sha256, *, older_than=None):
        raise OSError("the object store answered 500")

    blobs.delete = broken
    with pytest.raises(OSError, match="500"):
        BlobCollector(store, blobs, grace=0).sweep()
    with store.read() as tx:
        marks = dict(tx.items("orphan:"))
        assert sorted(marks) == sorted([orphan_key(first), orphan_key(second)])
        assert all("deleting" not in mark for mark in marks.values()), "uploads need not wait"
        assert len(list(tx.keys("blobgone:"))) == 1, "the failed delete may have happened"
    blobs.delete = real_delete
    report = BlobCollector(store, blobs, grace=0).sweep()
    assert sorted(sha256 for sha256, _size in report.removed) == sorted([first, second])
