"""First downloads across processes sharing one store: one upstream GET per cold file.

Two apps on one SQLite file and one blob directory stand for two nodes of a cluster. The fill
lease lives in the store; a fake "other node" is a lease taken under another holder name.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from devpi_core import services
from devpi_core.testing.contracts import wait_until
from devpi_core_mirror.tests.conftest import Mirror, wheel

if TYPE_CHECKING:
    from devpi_core.testing.dists import Dist

FILES = "/files/"


@pytest.fixture
def two_nodes(make_app, fake_upstream, tmp_path):
    """``two_nodes(index_config=None, **mirror_settings)`` -> (node A, node B), both serving
    ``root/fake``."""

    def factory(
        index_config: dict[str, Any] | None = None, **mirror_settings: Any
    ) -> tuple[Mirror, Mirror]:
        config = {
            "plugins": {
                "fsstore": {
                    "sqlite_path": str(tmp_path / "shared.sqlite"),
                    "blob_dir": str(tmp_path / "blobs"),
                },
                "mirror": {"fill_lease_ttl": 1.0, "fill_follow_wait": 5.0, **mirror_settings},
            }
        }
        node_a = make_app(config)
        node_a.login("root", "")
        node_a.create_index(
            "root/fake", type="mirror", mirror_url=fake_upstream.url, **(index_config or {})
        )
        node_b = make_app(config)
        return Mirror(node_a, fake_upstream), Mirror(node_b, fake_upstream)

    return factory


def _cold_file(node_a: Mirror, node_b: Mirror) -> tuple[Dist, str]:
    dist = wheel("hello", "1.0")
    node_a.upstream.add("hello", dist)
    url = node_a.file_url("hello", dist.filename)
    assert node_b.file_url("hello", dist.filename) == url  # both nodes know the page
    return dist, url


def _lease_name(dist: Dist) -> str:
    return f"fill:root/fake:{dist.filename}"


def _store(node: Mirror) -> Any:
    return services.metadata_store(node.registry)


def _get_in_thread(node: Mirror, url: str, bodies: list[bytes]) -> threading.Thread:
    thread = threading.Thread(target=lambda: bodies.append(node.client.app.get(url).body))
    thread.start()
    return thread


def test_concurrent_first_downloads_on_two_nodes_fetch_the_file_once(two_nodes, fake_upstream):
    node_a, node_b = two_nodes()
    dist, url = _cold_file(node_a, node_b)
    fake_upstream.faults.hold, fake_upstream.faults.only = threading.Event(), FILES
    bodies: list[bytes] = []
    threads = [_get_in_thread(node_a, url, bodies)]
    wait_until(lambda: fake_upstream.count(FILES) == 1)  # A leads: its GET is held upstream
    threads += [_get_in_thread(node, url, bodies) for node in (node_a, node_b, node_b)]
    wait_until(lambda: node_a.metric("waiting") == 2 and node_b.metric("waiting") == 2)
    fake_upstream.faults.hold.set()
    for thread in threads:
        thread.join(20)
    assert bodies == [dist.content] * 4
    assert fake_upstream.count(FILES) == 1, "one upstream GET for both nodes"
    assert node_a.metric("fills_led") == 1
    assert node_b.metric("fills_followed") == 1, "B served A's stored blob after its commit"
    assert node_b.metric("upstream_file_requests") == 0
    assert node_b.download("hello", dist.filename).body == dist.content
    assert fake_upstream.count(FILES) == 1


def test_a_follower_past_the_follow_wait_passes_the_file_through(two_nodes, fake_upstream):
    _node_a, node_b = two_nodes(fill_follow_wait=0.2)
    dist, url = _cold_file(_node_a, node_b)
    # another node holds the lease and stays alive (keeps heartbeating) but never commits
    assert _store(node_b).acquire_lease(_lease_name(dist), "slow-node", 60)
    assert node_b.client.app.get(url).body == dist.content
    assert node_b.metric("fills_passed_through") == 1
    assert fake_upstream.count(FILES) == 1
    # what it verified is stored too (the holder may have died: a SIGKILLed node never
    # commits), so the next request is served from the store, still under the held lease
    node_b.wait_cached()
    wait_until(lambda: node_b.metric("fills_running") == 0)
    assert node_b.client.app.get(url).body == dist.content
    assert node_b.metric("fills_led") == 0
    assert node_b.metric("fills_taken_over") == 0
    assert fake_upstream.count(FILES) == 1


def test_a_dead_holders_lease_is_taken_over_after_its_ttl(two_nodes, fake_upstream):
    node_a, node_b = two_nodes()
    dist, url = _cold_file(node_a, node_b)
    # a node took the lease, then was killed: it never renews it (ttl 1 s)
    assert _store(node_a).acquire_lease(_lease_name(dist), "killed-node", 1.0)
    assert node_a.client.app.get(url).body == dist.content
    assert node_a.metric("fills_taken_over") == 1
    assert node_a.metric("fills_passed_through") == 0
    node_a.wait_cached()
    assert node_b.client.app.get(url).body == dist.content  # from the store
    assert fake_upstream.count(FILES) == 1
    assert not _store(node_a).renew_lease(_lease_name(dist), "killed-node", 1.0)
    # the lease was released after the commit (before the fill ended): anyone may take it now
    wait_until(lambda: node_a.metric("fills_running") == 0)
    assert _store(node_b).acquire_lease(_lease_name(dist), "someone", 1.0)


def test_a_pass_through_stores_the_file_when_the_holder_is_gone_by_its_end(
    two_nodes, fake_upstream
):
    node_a, node_b = two_nodes(fill_follow_wait=0.1)
    dist, url = _cold_file(node_a, node_b)
    assert _store(node_a).acquire_lease(_lease_name(dist), "failing-node", 60)
    fake_upstream.faults.hold, fake_upstream.faults.only = threading.Event(), FILES
    bodies: list[bytes] = []
    thread = _get_in_thread(node_a, url, bodies)
    wait_until(lambda: fake_upstream.count(FILES) == 1)  # A passes through
    _store(node_a).release_lease(_lease_name(dist), "failing-node")  # the holder gave up
    fake_upstream.faults.hold.set()
    thread.join(20)
    assert bodies == [dist.content]
    assert node_a.metric("fills_passed_through") == 1
    node_a.wait_cached()
    assert node_a.metric("fills_taken_over") == 1
    assert node_b.client.app.get(url).body == dist.content
    assert fake_upstream.count(FILES) == 1


def _refreshes_done() -> bool:
    return not any(t.name == "names-root/fake" for t in threading.enumerate())


def test_only_the_lease_holder_refreshes_the_project_list(two_nodes, fake_upstream):
    node_a, node_b = two_nodes({"mirror_cache_expiry": 0})  # every listing refreshes it
    fake_upstream.add("hello", wheel("hello", "1.0"))
    assert "hello" in node_a.client.get("/root/fake/+simple/").text  # A stores the list
    wait_until(_refreshes_done)
    assert _store(node_b).acquire_lease("names:root/fake", "other-node", 60)
    assert "hello" in node_b.client.get("/root/fake/+simple/").text  # the stored list
    wait_until(_refreshes_done)
    assert node_b.metric("upstream_list_requests") == 0, "the other node refreshes it"
    _store(node_b).release_lease("names:root/fake", "other-node")
    assert "hello" in node_b.client.get("/root/fake/+simple/").text
    wait_until(lambda: node_b.metric("upstream_list_requests") == 1)


def test_a_cold_download_asks_the_blob_store_nothing_but_the_put(make_mirror, monkeypatch):
    # On an object store every question is a request (HEAD, GET): whether a cold file is
    # stored is answered by the metadata store, and the first client reads the verified
    # download itself, not the blob read back.
    mirror = make_mirror()
    dist = wheel("hello", "1.0")
    mirror.upstream.add("hello", dist)
    url = mirror.file_url("hello", dist.filename)
    blobs = services.blob_store(mirror.registry)
    asked: list[str] = []
    def counted(name: str) -> Any:
        original = getattr(blobs, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            asked.append(name)
            return original(*args, **kwargs)

        return call

    for name in ("exists", "stat", "size", "open"):
        monkeypatch.setattr(blobs, name, counted(name))
    assert mirror.client.app.get(url).body == dist.content
    mirror.wait_cached()
    assert asked == []
    assert mirror.client.app.get(url).body == dist.content  # now from the blob store


def test_content_stored_for_another_mirror_is_recorded_without_a_download(make_mirror):
    # the same upstream file through a second mirror: no second upstream GET, and the second
    # mirror then has it recorded like a file it downloaded (served as cached from then on)
    first = make_mirror()
    dist = wheel("hello", "1.0")
    first.upstream.add("hello", dist)
    assert first.download("hello", dist.filename).body == dist.content
    first.wait_cached()
    first.client.create_index("root/second", type="mirror", mirror_url=first.upstream.url)
    second = Mirror(first.client, first.upstream, index="root/second")
    gets = first.upstream.count(FILES)
    assert second.download("hello", dist.filename).body == dist.content
    assert first.upstream.count(FILES) == gets
    with _store(second).read() as tx:
        assert tx.get(f"mirror:root/second:f:{dist.filename}") is not None


@pytest.mark.parametrize("what", ["project", "index"])
def test_deleting_a_mirror_asks_only_about_the_files_it_cached(make_mirror, monkeypatch, what):
    # a page lists many files of which few are cached; deleting used to ask the blob store
    # about every listed one (a HEAD each on S3) and delete a record key for each
    mirror = make_mirror()
    dists = [wheel("hello", f"1.{i}") for i in range(40)]
    for dist in dists:
        mirror.upstream.add("hello", dist)
    assert mirror.download("hello", dists[0].filename).body == dists[0].content
    mirror.wait_cached()
    blobs = services.blob_store(mirror.registry)
    asked: list[str] = []
    original = blobs.exists

    def exists(sha256: str) -> bool:
        asked.append(sha256)
        return original(sha256)

    monkeypatch.setattr(blobs, "exists", exists)
    if what == "project":
        mirror.client.request("DELETE", "/root/fake/hello", status=200)
    else:
        mirror.client.request("DELETE", "/root/fake", status=201)  # devpi-server's status
    assert asked == []
    with _store(mirror).read() as tx:
        assert tx.get(f"orphan:{dists[0].sha256}") is not None  # its only reference is gone
        assert list(tx.keys("mirror:root/fake:f:")) == []
        assert list(tx.keys(f"blobref:{dists[0].sha256}:")) == []
