"""The filesystem blob store's layout and safety, and the plugin's settings."""

from __future__ import annotations

import hashlib
import os
import stat
import threading

import pytest

import devpi_core_fsstore
from devpi_core.blobs import BlobIngest
from devpi_core.errors import StartupError
from devpi_core.interfaces import BlobStore, MetadataStore
from devpi_core_fsstore.blob_store import FileBlobStore


def ingest(blobs, tmpdir, data):
    with BlobIngest(blobs, str(tmpdir)) as handle:
        handle.write(data)
        return handle.commit()


def test_layout_is_content_addressed_and_world_readable(tmp_path):
    blobs = FileBlobStore(str(tmp_path / "blobs"))
    digest = ingest(blobs, tmp_path, b"content")
    path = tmp_path / "blobs" / digest[:2] / digest[2:4] / digest
    assert blobs.local_path(digest) == str(path)
    assert path.read_bytes() == b"content"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "abc", "g" * 64, ""])
def test_paths_are_never_built_from_anything_but_a_digest(tmp_path, bad):
    blobs = FileBlobStore(str(tmp_path / "blobs"))
    for call in (blobs.exists, blobs.open, blobs.size, blobs.delete, blobs.local_path):
        with pytest.raises(ValueError, match="not a sha256 hex digest"):
            call(bad)


def test_stray_files_are_not_blobs(tmp_path):
    blobs = FileBlobStore(str(tmp_path / "blobs"))
    digest = ingest(blobs, tmp_path, b"real")
    (tmp_path / "blobs" / "README").write_text("not a blob")
    (tmp_path / "blobs" / digest[:2] / f"{digest}.partial").write_text("")
    assert list(blobs.iter_blobs()) == [digest]


def test_uncreatable_root_is_a_startup_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StartupError, match="cannot create"):
        FileBlobStore(str(tmp_path / "file" / "blobs"))


def test_backends_live_in_the_serverdir_by_default(tmp_path):
    (meta,) = devpi_core_fsstore.devpi_metadata_backends()
    (blob,) = devpi_core_fsstore.devpi_blob_backends()
    assert (meta.name, blob.name, meta.section, blob.section) == (
        "sqlite",
        "fs",
        "fsstore",
        "fsstore",
    )
    defaults: dict[str, object] = {}
    store = meta.factory(str(tmp_path), defaults)
    blobs = blob.factory(str(tmp_path), defaults)
    try:
        assert isinstance(store, MetadataStore)
        assert isinstance(blobs, BlobStore)
        assert (tmp_path / "metadata.sqlite").exists()
        assert (tmp_path / "+blobs").is_dir()
    finally:
        store.close()


def test_settings_move_database_and_blobs(tmp_path):
    (meta,) = devpi_core_fsstore.devpi_metadata_backends()
    (blob,) = devpi_core_fsstore.devpi_blob_backends()
    settings = {
        "sqlite_path": str(tmp_path / "db" / "m.sqlite"),
        "blob_dir": str(tmp_path / "files"),
        "synchronous": "full",
    }
    store = meta.factory(str(tmp_path / "sd"), settings)
    blobs = blob.factory(str(tmp_path / "sd"), settings)
    try:
        digest = ingest(blobs, tmp_path, b"moved")
        assert (tmp_path / "files" / digest[:2] / digest[2:4] / digest).exists()
        assert (tmp_path / "db" / "m.sqlite").exists()
        assert store.synchronous == "FULL"
        assert digest == hashlib.sha256(b"moved").hexdigest()
    finally:
        store.close()


def test_a_put_during_a_collecting_delete_is_never_lost(tmp_path, monkeypatch):
    # The collector has read an old put time and is about to unlink, when the same content is
    # uploaded again: the put must wait for the delete (or the delete see the new put time),
    # never refresh a file that is unlinked right after.
    blobs = FileBlobStore(str(tmp_path / "blobs"))
    digest = ingest(blobs, tmp_path, b"raced")
    path = str(blobs.local_path(digest))
    os.utime(path, (1000, 1000))  # put long ago
    real_stat = blobs.stat
    put_done = threading.Event()

    def stat_then_race(sha256):
        found = real_stat(sha256)
        def put():
            ingest(blobs, tmp_path, b"raced")
            put_done.set()

        thread = threading.Thread(target=put)
        thread.start()
        put_done.wait(0.5)  # without the lock the put completes in this window
        threads.append(thread)
        return found

    threads = []
    monkeypatch.setattr(blobs, "stat", stat_then_race)
    assert blobs.delete(digest, older_than=2000) is True
    threads[0].join(10)
    assert put_done.is_set()
    assert os.path.exists(path), "an acknowledged put was deleted"
