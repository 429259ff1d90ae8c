"""Upstream takedowns: PEP 792 project status read from the upstream, files removed upstream.

Pages are refreshed with the mirror's own mechanism (``POST .../refresh``), never by waiting.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from devpi_core import services
from devpi_core.testing.dists import Dist
from devpi_core.testing.upstream import FakeUpstream
from devpi_core_mirror.index import MirrorIndex
from devpi_core_mirror.status import status_from_html, status_from_json

from .conftest import sdist, wheel

if TYPE_CHECKING:
    from collections.abc import Iterator

PEP691 = "application/vnd.pypi.simple.v1+json"


def refresh(mirror, project: str) -> None:
    response = mirror.client.app.post(f"/root/fake/+simple/{project}/refresh")
    assert response.status_int == 302


def cached_download(mirror, project: str, filename: str) -> str:
    """Download ``filename`` through the mirror (so it is cached); its server path."""
    url = mirror.file_url(project, filename)
    assert mirror.client.app.get(url).status_int == 200
    mirror.wait_cached()
    return url


def gone(mirror, url: str) -> str:
    response = mirror.client.app.get(url, headers={"Accept": "application/json"}, status=410)
    return str(response.json["message"])


# -- reading the status --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"meta":{"api-version":"1.4"},"project-status":{"status":"quarantined",'
         b'"reason":"malware"},"files":[]}', ("quarantined", "malware")),
        (b'{"project-status": {"status": "archived"}, "files": []}', ("archived", None)),
        (b'{"project-status": {"status": "active"}, "files": []}', None),
        (b'{"project-status": {"status": "sunk"}, "files": []}', None),
        (b'{"project-status": "quarantined", "files": []}', None),
        (b'{"files": [{"filename": "project-status"}]}', None),
        (b'{"project-status": {"status": "quarantined", "reason": "see {MAL-1}"}, "files": []}',
         ("quarantined", "see {MAL-1}")),
    ],
)
def test_status_from_json(body, expected):
    found = status_from_json(body)
    assert (found.status, found.reason) == expected if expected else found is None


def test_status_from_html_meta_tags():
    body = (
        b'<html><head><meta name="pypi:repository-version" content="1.4">'
        b"<meta content='deprecated' name='pypi:project-status'>"
        b'<meta name="pypi:project-status-reason" content="use &quot;new&quot; instead">'
        b"</head><body></body></html>"
    )
    found = status_from_html(body)
    assert found is not None
    assert (found.status, found.reason) == ("deprecated", 'use "new" instead')
    assert status_from_html(b"<html><body><a href='x-1.0.tar.gz'>x</a></body></html>") is None


# -- quarantine ------------------------------------------------------------------------------
def test_quarantined_upstream_project_links_and_serves_nothing(mirror):
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    url = cached_download(mirror, "hello", "hello-1.0-py3-none-any.whl")
    meta_url = url + ".metadata"
    assert mirror.client.app.get(meta_url).status_int == 200
    record = mirror.client.get_json(url)["result"]
    mirror.upstream.set_status("hello", "quarantined", "malware, reported")
    refresh(mirror, "hello")

    page = mirror.page("hello")
    assert page["files"] == []
    assert page["meta"]["api-version"] == "1.4"
    assert page["project-status"] == {"status": "quarantined", "reason": "malware, reported"}
    html = mirror.page("hello", json_api=False).text
    assert '<meta name="pypi:project-status" content="quarantined">' in html
    assert 'content="malware, reported"' in html
    assert "hello-1.0" not in html
    # every way to the cached file: 410 with the reason, and the blob is kept for forensics
    assert "malware, reported" in gone(mirror, url)
    mirror.client.app.get(meta_url, status=410)
    mirror.client.app.get(url.replace("/_f/", "/+f/"), status=410)
    assert mirror.client.get_json("/root/fake/hello")["result"] == {}
    sha = record["hashes"]["sha256"]
    assert services.blob_store(mirror.registry).exists(sha)
    upstream_files = mirror.upstream.count("/files/")
    mirror.client.app.get(url, status=410)
    assert mirror.upstream.count("/files/") == upstream_files


def test_a_never_cached_file_of_a_quarantined_project_is_gone_too(mirror):
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    url = mirror.file_url("hello", "hello-1.0-py3-none-any.whl")  # listed, not downloaded
    mirror.upstream.set_status("hello", "quarantined", "malware")
    refresh(mirror, "hello")
    assert "quarantined project 'hello': malware" in gone(mirror, url)
    mirror.client.app.get(url + ".metadata", status=410)
    mirror.client.app.get("/root/fake/+f/000/0000000000000/other-1.0.tar.gz", status=404)


def test_quarantine_is_lifted_when_the_upstream_lifts_it(mirror):
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    url = cached_download(mirror, "hello", "hello-1.0-py3-none-any.whl")
    mirror.upstream.set_status("hello", "quarantined")
    refresh(mirror, "hello")
    mirror.client.app.get(url, status=410)
    mirror.upstream.set_status("hello", "active")
    refresh(mirror, "hello")
    assert [f["filename"] for f in mirror.page("hello")["files"]] == ["hello-1.0-py3-none-any.whl"]
    assert mirror.client.app.get(url).status_int == 200


def test_archived_status_from_an_html_upstream_is_passed_on(make_mirror):
    with FakeUpstream(json_pages=False) as upstream:
        m = make_mirror(upstream=upstream)
        upstream.add("old", wheel("old", "1.0"))
        upstream.set_status("old", "archived", "no longer maintained")
        page = m.page("old")
        assert page["project-status"] == {"status": "archived", "reason": "no longer maintained"}
        assert [f["filename"] for f in page["files"]] == ["old-1.0-py3-none-any.whl"]
        assert m.download("old", "old-1.0-py3-none-any.whl").status_int == 200
        html = m.page("old", json_api=False).text
        assert '<meta name="pypi:project-status" content="archived">' in html


# a stage based on the mirror: this test needs the stages plugin besides the mirror's own
@pytest.mark.parametrize("plugins_needed", [("mirror", "stages", "fsstore", "passwd")])
def test_quarantine_reaches_a_stage_over_the_mirror(mirror):
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    client = mirror.client
    client.create_index("root/dev", bases="root/fake")
    assert client.simple_filenames("root/dev", "hello") == ["hello-1.0-py3-none-any.whl"]
    mirror.upstream.set_status("hello", "quarantined", "malware")
    refresh(mirror, "hello")
    page = client.simple("root/dev", "hello", json_api=True).json
    assert page["files"] == []
    assert page["project-status"]["status"] == "quarantined"


# -- files removed upstream ------------------------------------------------------------------
def test_file_removed_upstream_is_unlinked_and_no_longer_served(mirror):
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    mirror.upstream.add("hello", sdist("hello", "1.1"))
    old = cached_download(mirror, "hello", "hello-1.0-py3-none-any.whl")
    removed = mirror.file_url("hello", "hello-1.1.tar.gz")
    assert mirror.client.app.get(removed).status_int == 200
    mirror.wait_cached(2)
    mirror.upstream.remove_file("hello", "hello-1.1.tar.gz")
    refresh(mirror, "hello")
    assert [f["filename"] for f in mirror.page("hello")["files"]] == ["hello-1.0-py3-none-any.whl"]
    assert "removed from the upstream" in gone(mirror, removed)
    assert mirror.client.app.get(old).status_int == 200
    # put back upstream: linked and served again
    mirror.upstream.add("hello", sdist("hello", "1.1"))
    refresh(mirror, "hello")
    assert len(mirror.page("hello")["files"]) == 2
    assert mirror.client.app.get(removed).status_int == 200


def test_a_file_removed_while_it_downloads_is_recorded_as_removed(mirror, monkeypatch):
    """A download records its file once the client has it; a page refresh that dropped the
    file meanwhile found no record to mark. The late record is marked then, and a file the
    page still lists is recorded as live."""
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    mirror.upstream.add("hello", sdist("hello", "1.1"))
    kept = mirror.file_url("hello", "hello-1.0-py3-none-any.whl")
    removed = mirror.file_url("hello", "hello-1.1.tar.gz")
    go, waiting = threading.Event(), threading.Semaphore(0)
    commit = MirrorIndex._committed

    def held(self, ref, sha256):
        waiting.release()
        assert go.wait(10)
        commit(self, ref, sha256)

    monkeypatch.setattr(MirrorIndex, "_committed", held)
    assert mirror.client.app.get(removed).status_int == 200
    assert mirror.client.app.get(kept).status_int == 200
    for _ in range(2):  # both downloads are done and wait to record their files
        assert waiting.acquire(timeout=10)
    mirror.upstream.remove_file("hello", "hello-1.1.tar.gz")
    refresh(mirror, "hello")  # its commit finds no record of 1.1 to mark
    go.set()
    mirror.wait_cached(2)
    assert "removed from the upstream" in gone(mirror, removed)
    assert mirror.client.app.get(kept).status_int == 200
    upstream_files = mirror.upstream.count("/files/")
    mirror.client.app.get(removed, status=410)
    assert mirror.upstream.count("/files/") == upstream_files  # recorded, not fetched again


def test_keep_removed_serves_cached_copies_of_removed_files(make_mirror, fake_upstream):
    m = make_mirror(mirror_keep_removed=True)
    fake_upstream.add("hello", wheel("hello", "1.0"))
    dist = sdist("hello", "1.1")
    fake_upstream.add("hello", dist)
    url = m.file_url("hello", dist.filename)
    assert m.client.app.get(url).status_int == 200
    m.wait_cached()
    fake_upstream.remove_file("hello", dist.filename)
    refresh(m, "hello")
    assert [f["filename"] for f in m.page("hello")["files"]] == ["hello-1.0-py3-none-any.whl"]
    assert m.client.app.get(url).body == dist.content


class CountingTx:
    """A dict as a write transaction that counts single-key reads."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.gets = 0

    def get(self, key: str) -> Any:
        self.gets += 1
        return self.data.get(key)

    def items(self, prefix: str) -> Iterator[tuple[str, Any]]:
        return iter([(k, v) for k, v in sorted(self.data.items()) if k.startswith(prefix)])

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value


def test_a_new_page_of_many_files_unmarks_by_range_not_one_read_per_file():
    from devpi_core_mirror import layout  # noqa: PLC0415 - the plugin loads with the app
    from devpi_core_mirror.project_cache import Takedowns  # noqa: PLC0415

    names = {f"many-1.{i}.tar.gz" for i in range(2000)} | {"many_x-1.0-py3-none-any.whl"}
    key = layout.file_key("root/fake", "many-1.7.tar.gz")
    meta = layout.file_key("root/fake", "many_x-1.0-py3-none-any.whl.metadata")
    other = layout.file_key("root/fake", "other-1.0.tar.gz")
    tx: Any = CountingTx({
        key: {"sha256": "a", "removed": 1.0},
        meta: {"sha256": "b", "removed": 1.0},
        other: {"sha256": "c", "removed": 1.0},
    })
    Takedowns(back=frozenset(names), at=2.0).apply(tx, "root/fake")
    assert tx.data == {key: {"sha256": "a"}, meta: {"sha256": "b"}, other: tx.data[other]}
    assert "removed" in tx.data[other]
    assert tx.gets == 0  # was two reads per file: 4,002 for this page
    # a few names are read one by one (a scan could read many more records)
    tx = CountingTx({key: {"sha256": "a"}})
    Takedowns(gone=frozenset({"many-1.7.tar.gz"}), at=2.0).apply(tx, "root/fake")
    assert tx.data[key] == {"sha256": "a", "removed": 2.0}
    assert tx.gets == 2


def test_a_removed_file_listed_again_on_a_new_big_page_is_served_again(mirror):
    """A removed file's record outlives deleting the project (it is not on the page); when the
    page is fetched anew with the file listed again, the file is served again."""
    for i in range(40):  # enough files for the commit to read their records by range
        mirror.upstream.add("hello", Dist(f"hello-0.{i}.tar.gz", b"%d" % i))
    dist = sdist("hello", "1.1")
    mirror.upstream.add("hello", dist)
    url = cached_download(mirror, "hello", dist.filename)
    mirror.upstream.remove_file("hello", dist.filename)
    refresh(mirror, "hello")
    assert "removed from the upstream" in gone(mirror, url)
    mirror.client.request("DELETE", "/root/fake/hello", status=200)
    mirror.settle()
    mirror.upstream.add("hello", dist)
    assert len(mirror.page("hello")["files"]) == 41
    mirror.settle()
    assert mirror.client.app.get(url).body == dist.content


def test_file_records_are_found_by_name_and_metadata_few_or_many():
    from devpi_core.testing.memstore import MemoryStore  # noqa: PLC0415
    from devpi_core_mirror import layout  # noqa: PLC0415
    from devpi_core_mirror.project_cache import SCAN_FROM, file_records  # noqa: PLC0415

    store = MemoryStore()
    stored = ["a-1.whl", "a-1.whl.metadata", "a-2.whl", "ab-1.whl", "b-1.tar.gz.metadata",
              "c-1.whl.metadata", "z-9.whl"]
    with store.write() as tx:
        for filename in stored:
            tx.set(layout.file_key("root/m", filename), {"name": filename})
    few = ["a-1.whl", "b-1.tar.gz", "c-1.whl.metadata"]
    many = few + [f"a-{i}.zip" for i in range(100, 100 + SCAN_FROM)]
    expected = ["a-1.whl", "a-1.whl.metadata", "b-1.tar.gz.metadata", "c-1.whl.metadata"]
    with store.read() as tx:
        for names in (few, many):
            found = [value["name"] for _key, value in file_records(tx, "root/m", names)]
            assert sorted(found) == expected
