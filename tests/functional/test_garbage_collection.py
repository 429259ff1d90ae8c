"""Blob garbage collection through the app: the grace period, a re-upload during it, an upload
racing the sweep's delete, and ``devpi-core gc``."""

from __future__ import annotations

import signal
import threading

import pytest

from devpi_core import cli, services
from devpi_core.fsck import check
from devpi_core.model.blobrefs import gone_key, orphan_key
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import FAST_HASHING, write_config

WHEEL = make_wheel(DistSpec("pkg", "1.0"))


@pytest.fixture
def alice(make_app):
    client = make_app()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", WHEEL)
    return client


def stores(client):
    registry = client.app.app.registry
    return services.metadata_store(registry), services.blob_store(registry)


def marks(client):
    store, _blobs = stores(client)
    with store.read() as tx:
        return dict(tx.items("orphan:"))


def download(client):
    [href] = [link["href"] for link in client.get_json("/alice/dev/pkg/1.0")["result"]["+links"]]
    return client.get(href, Accept="*/*").body


def test_a_deleted_release_keeps_its_blob_for_the_grace_period(alice):
    store, blobs = stores(alice)
    collector = services.blob_collector(alice.app.app.registry)
    alice.request("DELETE", "/alice/dev/pkg", status=200)
    assert orphan_key(WHEEL.sha256) in marks(alice)
    assert collector.sweep().removed == [], "within the grace period (default one hour)"
    assert blobs.exists(WHEEL.sha256)
    report = check(store, blobs)
    assert report.problems == [], "a marked orphan is not a problem"
    assert any(WHEEL.sha256 in note for note in report.notes)
    swept = collector.sweep(grace=0)
    assert WHEEL.sha256 in [sha256 for sha256, _size in swept.removed]
    assert (WHEEL.sha256, len(WHEEL.content)) in swept.removed
    assert not blobs.exists(WHEEL.sha256)
    assert marks(alice) == {}
    assert check(store, blobs).problems == []
    metrics = alice.get("/+metrics").text
    assert f"devpi_blob_gc_collected_blobs_total {float(len(swept.removed))}" in metrics
    assert f"devpi_blob_gc_collected_bytes_total {float(swept.bytes)}" in metrics


def test_an_upload_of_the_same_content_during_the_grace_period_keeps_it(alice):
    store, blobs = stores(alice)
    alice.request("DELETE", "/alice/dev/pkg", status=200)
    alice.upload("alice/dev", WHEEL)
    assert orphan_key(WHEEL.sha256) not in marks(alice), "live again"
    swept = services.blob_collector(alice.app.app.registry).sweep(grace=0)
    assert swept.removed == []
    assert download(alice) == WHEEL.content
    assert check(store, blobs).problems == []


def test_an_upload_racing_the_delete_stores_its_content_again(alice, monkeypatch):
    # An object store's delete checks the put time, then deletes (two requests): a put of the
    # same content in between is lost. The upload must notice and put it again.
    store, blobs = stores(alice)
    collector = services.blob_collector(alice.app.app.registry)
    alice.request("DELETE", "/alice/dev/pkg", status=200)
    put, real_put, real_delete = threading.Event(), blobs.put_file, blobs.delete
    puts: list[str] = []

    def put_file(path, sha256):
        real_put(path, sha256)
        puts.append(sha256)
        put.set()

    def delete(sha256, *, older_than=None):
        if sha256 != WHEEL.sha256:
            return real_delete(sha256, older_than=older_than)
        found = blobs.stat(sha256)  # "HEAD": still the old put
        uploader.start()
        assert put.wait(30), "the racing upload never stored its content"
        assert found is not None
        assert found.mtime < older_than
        return real_delete(sha256)  # "DELETE": takes the content just put with it

    answers = []
    uploader = threading.Thread(target=lambda: answers.append(
        alice.upload("alice/dev", WHEEL, status="*").status_int))
    monkeypatch.setattr(blobs, "put_file", put_file)
    monkeypatch.setattr(blobs, "delete", delete)
    swept = collector.sweep(grace=0)
    uploader.join(60)
    assert answers == [200]
    assert WHEEL.sha256 in [sha256 for sha256, _size in swept.removed]
    assert puts.count(WHEEL.sha256) == 2, "put again after the sweep deleted it"
    assert blobs.exists(WHEEL.sha256)
    assert download(alice) == WHEEL.content
    with store.read() as tx:
        assert tx.get(gone_key(WHEEL.sha256)) is None
        assert tx.get(orphan_key(WHEEL.sha256)) is None
    assert check(store, blobs).problems == []


@pytest.fixture
def _keep_sigterm_handler():
    saved = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, saved)


@pytest.mark.usefixtures("_keep_sigterm_handler")
def test_the_gc_command_prints_and_removes(alice, tmp_path, capsys):
    _store, blobs = stores(alice)
    serverdir = services.settings(alice.app.app.registry).server.serverdir
    config = str(write_config(tmp_path / "c.yml", {"plugins": {"passwd": dict(FAST_HASHING)}}))
    alice.request("DELETE", "/alice/dev/pkg", status=200)
    argv = ["gc", "--serverdir", serverdir, "--config", config]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.splitlines() == ["0 blobs removed, 0 bytes freed"]
    assert blobs.exists(WHEEL.sha256)
    assert cli.main([*argv, "--grace", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"removed blob {WHEEL.sha256} ({len(WHEEL.content)} bytes)" in lines
    assert lines[-1].startswith("2 blobs removed, ")  # the wheel and its core metadata
    assert not blobs.exists(WHEEL.sha256)
