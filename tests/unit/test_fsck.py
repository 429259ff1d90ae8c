"""fsck's checks on the in-memory stores: references against blobs, orphans and repair."""

from __future__ import annotations

import hashlib

from devpi_core.fsck import DEFAULT_GRACE, check
from devpi_core.interfaces import BlobStat, serial_problems
from devpi_core.testing.memstore import MemoryBlobStore, MemoryStore


def put(blobs, tmp_path, data):
    path = tmp_path / "incoming"
    path.write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()
    blobs.put_file(str(path), sha256)
    return sha256


def refer(store, sha256, owner):
    with store.write() as tx:
        tx.set(f"blobref:{sha256}:{owner}", 1)


def test_a_consistent_store_has_no_problems(tmp_path):
    store, blobs = MemoryStore(), MemoryBlobStore()
    sha = put(blobs, tmp_path, b"content")
    refer(store, sha, "alice/dev/pkg-1.0.tar.gz")
    refer(store, sha, "bob/dev/pkg-1.0.tar.gz")
    report = check(store, blobs)
    assert (report.problems, report.references, report.blobs) == ([], 2, 1)


def test_missing_corrupt_and_orphan_blobs_are_problems(tmp_path):
    store, blobs = MemoryStore(), MemoryBlobStore()
    missing = hashlib.sha256(b"gone").hexdigest()
    refer(store, missing, "alice/dev/gone.tar.gz")
    corrupt = put(blobs, tmp_path, b"original")
    blobs._blobs[corrupt] = b"tampered"
    refer(store, corrupt, "alice/dev/corrupt.tar.gz")
    orphan = put(blobs, tmp_path, b"nobody uses me")
    blobs._put_times[orphan] -= 2 * DEFAULT_GRACE
    report = check(store, blobs)
    text = "\n".join(report.problems)
    assert f"missing blob {missing} (used by alice/dev/gone.tar.gz)" in text
    assert f"corrupt blob {corrupt}: its content hashes to " in text
    assert f"orphan blob {orphan} ({2 * DEFAULT_GRACE:.0f} s old)" in text
    assert len(report.problems) == 3
    repaired = check(store, blobs, repair=True)
    assert repaired.repaired == [f"deleted orphan blob {orphan}"]
    assert not blobs.exists(orphan)
    assert blobs.exists(corrupt), "repair never deletes a referenced blob"


class TimelessBlobStore(MemoryBlobStore):
    """A store that knows no put times (the BlobStore default) and has no local files."""

    def stat(self, sha256):
        size = self.size(sha256)
        return None if size is None else BlobStat(size, 0.0)


def test_a_young_orphan_without_a_local_file_is_left_alone(tmp_path):
    # an object store: the age comes from stat(), as a killed node's upload leaves it
    store, blobs = MemoryStore(), MemoryBlobStore()
    orphan = put(blobs, tmp_path, b"put, then the node was killed before the commit")
    report = check(store, blobs, repair=True)
    assert report.problems == []
    assert report.repaired == []
    assert [note.split(" (")[0] for note in report.notes] == [f"young orphan blob {orphan}"]
    assert blobs.exists(orphan)


def test_an_orphan_of_unknown_age_is_a_problem_and_deleted_only_without_grace(tmp_path):
    store, blobs = MemoryStore(), TimelessBlobStore()
    orphan = put(blobs, tmp_path, b"nobody uses me")
    assert check(store, blobs).problems == [f"orphan blob {orphan} (age unknown)"]
    assert check(store, blobs, repair=True).repaired == []
    repaired = check(store, blobs, repair=True, grace=0)
    assert repaired.repaired == [f"deleted orphan blob {orphan}"]
    assert not blobs.exists(orphan)


def test_serial_problems():
    assert serial_problems(5, 1, 5, 5, 5) == []
    assert serial_problems(0, None, None, 0, None) == []
    assert serial_problems(7, 3, 7, 5, 6) == []  # pruned at the old end
    assert serial_problems(6, 1, 5, 5, 6) == ["the serial is 6 but the changelog ends at 5"]
    assert serial_problems(5, 1, 5, 4, 5) == ["the changelog from 1 to 5 has gaps (4 entries)"]
    assert serial_problems(5, 1, 5, 5, 9) == [
        "a key was written at serial 9, after the serial 5"
    ]
