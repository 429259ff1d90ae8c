"""Mirror pages through the app: what is kept from upstream, caching, revalidation, refresh."""

from __future__ import annotations

import hashlib
import re
import time
from typing import TYPE_CHECKING

from devpi_core import hookimpl, services
from devpi_core_mirror import layout
from devpi_core_mirror.service import MirrorService
from devpi_core_mirror.tests.conftest import sdist, settle, wheel

if TYPE_CHECKING:
    from devpi_core.records import MirrorRefreshEvent


def test_json_page_keeps_every_upstream_field(mirror):
    w = wheel("hello", "1.0", requires_python=">=3.8")
    mirror.upstream.add(
        "hello",
        w,
        requires_python=">=3.8",
        yanked="broken",
        upload_time="2024-02-03T04:05:06.000000Z",
    )
    mirror.upstream.add("hello", sdist("hello", "0.9"))
    page = mirror.page("hello")
    files = {f["filename"]: f for f in page["files"]}
    entry = files[w.filename]
    assert entry["hashes"] == {"sha256": w.sha256}
    assert entry["requires-python"] == ">=3.8"
    assert entry["yanked"] == "broken"
    assert entry["size"] == len(w.content)
    assert entry["upload-time"] == "2024-02-03T04:05:06.000000Z"
    assert entry["core-metadata"] == {"sha256": hashlib.sha256(w.metadata).hexdigest()}
    assert entry["url"].startswith("../../_f/")
    assert "core-metadata" not in files["hello-0.9.tar.gz"]
    assert page["versions"] == ["0.9", "1.0"]


def test_html_upstream_is_read_too(make_mirror, fake_upstream):
    fake_upstream.json_pages = False
    m = make_mirror()
    w = wheel("hello", "1.0")
    fake_upstream.add("hello", w, requires_python="<4,>=3.8", yanked=True)
    html = m.page("hello", json_api=False).text
    anchor = re.search(r"<a ([^>]*)>hello-1.0-py3-none-any.whl</a>", html).group(1)
    assert f"#sha256={w.sha256}" in anchor
    assert 'data-requires-python="&lt;4,&gt;=3.8"' in anchor
    assert 'data-yanked=""' in anchor
    assert "data-core-metadata=" in anchor
    assert m.download("hello", w.filename).body == w.content


def test_second_request_is_served_from_cache(mirror):
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    first = mirror.page("hello")
    mirror.upstream.clear()
    assert mirror.page("hello") == first
    assert mirror.page("hello", json_api=False).status_int == 200
    assert mirror.upstream.count() == 0


def test_expired_page_is_revalidated_with_its_etag(make_mirror, fake_upstream):
    m = make_mirror(mirror_cache_expiry=0)
    fake_upstream.add("hello", wheel("hello", "1.0"))
    m.page("hello")
    m.page("hello")
    seen = fake_upstream.seen("/simple/hello/")
    assert len(seen) == 2
    assert "If-None-Match" not in seen[0].headers
    assert seen[1].headers["If-None-Match"].startswith('"')
    fake_upstream.add("hello", wheel("hello", "2.0"))
    assert [f["filename"] for f in m.page("hello")["files"]][-1] == "hello-2.0-py3-none-any.whl"


def test_unchanged_revalidation_keeps_the_page_token(make_mirror, fake_upstream):
    m = make_mirror(mirror_cache_expiry=0)
    fake_upstream.add("hello", wheel("hello", "1.0"))
    etag = m.page("hello", json_api=False).headers["ETag"]
    fake_upstream.touch("hello")  # new serial, same files
    again = m.page("hello", json_api=False)
    assert again.headers["ETag"] == etag
    assert again.body


def test_refresh_forces_an_upstream_request(mirror):
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    mirror.page("hello")
    mirror.upstream.add("hello", wheel("hello", "1.1"))
    assert len(mirror.page("hello")["files"]) == 1  # still fresh
    response = mirror.client.app.post("/root/fake/+simple/hello/refresh")
    assert response.status_int == 302
    assert len(mirror.page("hello")["files"]) == 2
    assert mirror.upstream.count("/simple/hello/") == 2


def test_names_are_normalized_before_asking_upstream(mirror):
    mirror.upstream.add("Hello.World", wheel("Hello.World", "1.0"))
    page = mirror.page("Hello_World")
    assert page["name"] == "hello-world"
    assert [r.path for r in mirror.upstream.seen("/simple/")] == ["/simple/hello-world/"]


def test_unknown_project_is_404_and_remembered(mirror):
    mirror.page("nothere", status=404)
    mirror.page("nothere", status=404)
    assert mirror.upstream.count("/simple/nothere/") == 1


def test_project_list_is_fetched_once_and_streamed(mirror):
    for name in ("alpha", "beta", "gamma"):
        mirror.upstream.add(name, wheel(name, "1.0"))
    listing = mirror.client.simple("root/fake", json_api=True).json
    assert [p["name"] for p in listing["projects"]] == ["alpha", "beta", "gamma"]
    again = mirror.client.simple("root/fake").text
    assert 'href="alpha/"' in again
    assert mirror.upstream.count("/simple/") == 1
    config = mirror.client.get_json("/root/fake")["result"]
    assert sorted(config["projects"]) == ["alpha", "beta", "gamma"]


def test_no_project_list_lists_cached_projects(make_mirror, fake_upstream):
    m = make_mirror(mirror_no_project_list=True)
    fake_upstream.add("alpha", wheel("alpha", "1.0"))
    fake_upstream.add("beta", wheel("beta", "1.0"))
    m.page("beta")
    listing = m.client.simple("root/fake", json_api=True).json
    assert [p["name"] for p in listing["projects"]] == ["beta"]
    assert fake_upstream.count("/simple/") == 1  # only beta's page


def test_project_and_version_json(mirror):
    w = wheel("hello", "1.0")
    mirror.upstream.add("hello", w, requires_python=">=3.8")
    data = mirror.client.get_json("/root/fake/hello")["result"]
    link = data["1.0"]["+links"][0]
    assert link["href"].endswith(f"/root/fake/+f/{w.sha256[:3]}/{w.sha256[3:16]}/{w.filename}")
    assert link["hash_spec"] == f"sha256={w.sha256}"
    assert data["1.0"]["requires_python"] == ">=3.8"
    version = mirror.client.get_json("/root/fake/hello/1.0")["result"]
    assert version["version"] == "1.0"


def test_file_metadata_json(mirror):
    w = wheel("hello", "1.0")
    mirror.upstream.add("hello", w)
    meta = mirror.client.get_json(mirror.file_url("hello", w.filename))["result"]
    assert meta["hash_spec"] == f"sha256={w.sha256}"
    assert meta["url"].startswith(mirror.upstream.root)


def test_hashless_links_get_e_paths_and_are_checked_after_download(mirror):
    w = wheel("hello", "1.0")
    mirror.upstream.add("hello", w, hashed=False)
    url = mirror.file_url("hello", w.filename)
    assert "/root/fake/_e/http_127.0.0.1_" in url
    assert mirror.client.app.get(url).body == w.content
    mirror.upstream.clear()
    assert mirror.client.app.get(url).body == w.content
    assert mirror.upstream.count() == 0


def test_a_short_link_hash_names_the_file_path_as_devpi_does(mirror):
    """devpi-server lists ``...#sha256=1234`` at ``+f/123/4/`` (unquoted name); fetching it is
    a clean error, never a blob lookup by the short hash."""
    w = wheel("hello", "1.0")
    mirror.upstream.add("hello", w)
    mirror.upstream.add_link("pkg", "/files/00000000/pkg-1%212017.4%2Bdevpi.zip#sha256=1234")
    data = mirror.client.get_json("/root/fake/pkg")["result"]
    [link] = data["1!2017.4+devpi"]["+links"]
    assert link["href"].endswith("/root/fake/+f/123/4/pkg-1!2017.4+devpi.zip")
    assert link["hash_spec"] == "sha256=1234"
    url = mirror.file_url("pkg", "pkg-1!2017.4+devpi.zip")
    assert url.endswith("/123/4/pkg-1!2017.4+devpi.zip")
    response = mirror.client.app.get(url, status=404, expect_errors=True)
    assert "error 404 getting" in response.text


def test_an_empty_upstream_page_is_a_project_without_releases(mirror):
    """devpi-server: 200 with no links (an empty body too) lists no releases, not a 502."""
    mirror.upstream.add_page("empty", b"")
    mirror.upstream.add_page("nolinks", b"<!DOCTYPE html><title>Links for nolinks</title>")
    for project in ("empty", "nolinks"):
        assert mirror.client.get_json(f"/root/fake/{project}")["result"] == {}
        assert mirror.page(project)["files"] == []
        assert mirror.client.simple_filenames("root/fake", project) == []
    # an error text answered with 200 is not a page: nothing cached, so a 502
    mirror.upstream.add_page("text", b"Service temporarily unavailable", "text/plain")
    assert "malformed" in mirror.page("text", status=502).json["message"]


def test_metrics_in_status(mirror):
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    mirror.page("hello")
    mirror.settle()  # the stored page moves the serial: the next answer asks the mirror again
    mirror.page("hello")
    metrics = {
        name: value
        for name, _kind, value in mirror.client.get_json("/+status")["result"]["metrics"]
    }
    assert metrics["devpi_mirror_upstream_page_requests"] == 1
    assert metrics["devpi_mirror_page_cache_hits"] >= 1


def test_freshness_survives_a_new_process_state(mirror):
    # a restart loses the in-memory state; the persisted fetched-at keeps pages fresh
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    mirror.page("hello")
    mirror.settle()
    indexes = services.indexes(mirror.registry)
    runtime = mirror.registry[MirrorService].runtime(indexes.env, indexes.get("root/fake"))
    runtime.pages.forget("hello")
    state = runtime.pages.state("hello")
    assert state.token is not None
    assert state.fresh_until > time.time() + 1000
    mirror.upstream.clear()
    mirror.page("hello")
    assert mirror.upstream.count() == 0


def _runtime(mirror):
    indexes = services.indexes(mirror.registry)
    return mirror.registry[MirrorService].runtime(indexes.env, indexes.get("root/fake"))


def test_unchanged_page_keeps_its_token_in_a_new_process_state(make_mirror, fake_upstream):
    m = make_mirror(mirror_cache_expiry=0)
    fake_upstream.add("hello", wheel("hello", "1.0"))
    etag = m.page("hello", json_api=False).headers["ETag"]
    m.settle()
    pages = _runtime(m).pages
    token = pages.state("hello").token
    pages.forget("hello")
    pages._parsed.clear()  # as after a restart: the page is only in the store
    fake_upstream.touch("hello")  # a new serial and ETag, the same files
    assert m.page("hello", json_api=False).headers["ETag"] == etag
    assert pages.state("hello").token == token
    assert fake_upstream.count("/simple/hello/") == 2


def test_state_records_without_a_page_token_still_work(mirror):
    # written before the token was kept in the s: record: the p: key's serial stands in
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    mirror.page("hello")
    mirror.settle()
    store = services.metadata_store(mirror.registry)
    key = layout.state_key("root/fake", "hello")
    with store.write() as tx:
        old = {k: v for k, v in tx.get(key).items() if k != "page"}
        tx.set(key, old)
        expected = tx.key_serial(layout.page_key("root/fake", "hello"))
    pages = _runtime(mirror).pages
    pages.forget("hello")
    pages._parsed.clear()
    assert pages.state("hello").token == expected
    assert [f["filename"] for f in mirror.page("hello")["files"]] == ["hello-1.0-py3-none-any.whl"]
    assert mirror.upstream.count("/simple/hello/") == 1


def test_outdated_project_list_is_served_and_refreshed_in_the_background(
    make_mirror, fake_upstream
):
    m = make_mirror(mirror_cache_expiry=0)
    fake_upstream.add("alpha", wheel("alpha", "1.0"))
    assert m.client.simple("root/fake", json_api=True).json["projects"] == [{"name": "alpha"}]
    fake_upstream.add("beta", wheel("beta", "1.0"))
    stale = m.client.simple("root/fake", json_api=True).json["projects"]
    assert stale == [{"name": "alpha"}]  # the stored list answers at once
    deadline = time.monotonic() + 10
    while {"name": "beta"} not in m.client.simple("root/fake", json_api=True).json["projects"]:
        assert time.monotonic() < deadline, "the list was not refreshed"
        time.sleep(0.01)
    assert fake_upstream.count("/simple/") >= 2


def test_a_list_replaced_while_it_is_read_is_read_to_the_end(mirror):
    # a background refresh stores a new list and drops the old blob while a page is rendered
    mirror.upstream.add("alpha", wheel("alpha", "1.0"))
    names = _runtime(mirror).names
    assert list(names.names()) == ["alpha"]
    reading = names.names()
    mirror.upstream.add("beta", wheel("beta", "1.0"))
    names._fetch()
    assert list(reading) == ["alpha"]  # the list as it was when the reader started
    assert sorted(names.names()) == ["alpha", "beta"]


def test_project_list_failure_lists_the_cached_projects(mirror, caplog):
    mirror.upstream.add("alpha", wheel("alpha", "1.0"))
    mirror.page("alpha")
    mirror.upstream.faults.status = 500
    listing = mirror.client.simple("root/fake", json_api=True).json
    assert listing["projects"] == [{"name": "alpha"}]
    assert "cannot fetch the upstream project list" in caplog.text


class Events:
    """Records mirror refresh events (a plugin object)."""

    def __init__(self) -> None:
        self.seen: list[MirrorRefreshEvent] = []

    @hookimpl
    def devpi_on_mirror_refresh(self, event: MirrorRefreshEvent) -> None:
        self.seen.append(event)


def test_refresh_events_tell_whether_the_page_changed(make_app, fake_upstream):
    events = Events()
    client = make_app(modules=(("events", events),))
    client.login("root", "")
    client.create_index(
        "root/fake", type="mirror", mirror_url=fake_upstream.url, mirror_cache_expiry=0
    )
    fake_upstream.add("hello", wheel("hello", "1.0"))
    client.simple("root/fake", "hello")
    client.simple("root/fake", "hello")
    settle(client.app.app.registry)  # events follow the commit, behind the answer
    assert [(e.index, e.project, e.changed) for e in events.seen] == [
        ("root/fake", "hello", True),
        ("root/fake", "hello", False),
    ]
    assert events.seen[0].upstream_serial == 1


def test_a_file_whose_page_left_memory_is_found_in_the_store(mirror):
    for name in ("hello", "other", "third"):
        mirror.upstream.add(name, wheel(name, "1.0"))
    url = mirror.file_url("hello", "hello-1.0-py3-none-any.whl")
    mirror.page("other")
    mirror.page("third")  # hello's decoded page is gone from memory now
    mirror.settle()
    pages = _runtime(mirror).pages
    assert ("hello", pages.state("hello").token) not in pages._parsed
    response = mirror.client.app.get(url)
    assert hashlib.sha256(response.body).hexdigest() == mirror.page("hello")["files"][0][
        "hashes"
    ]["sha256"]
    mirror.client.app.get(url.replace("hello-1.0", "hello-9.9"), status=404)


def test_a_file_of_a_page_another_node_answered_is_fetched_not_a_404(make_mirror, fake_upstream):
    """In a cluster an installer reads a page from one node and asks another for the file,
    before the first stored the page (pages are written behind the answer): the other node
    asks the upstream for the page itself. Two apps with their own stores stand for it."""
    w = wheel("hello", "1.0")
    fake_upstream.add("hello", w)
    first, second = make_mirror(), make_mirror()
    url = first.file_url("hello", w.filename)
    assert second.client.app.get(url).body == w.content
    # a file the upstream's page does not list is still a 404, and costs no second fetch
    pages = fake_upstream.count("/simple/hello/")
    second.client.app.get(url.replace("hello-1.0", "hello-2.0"), status=404)
    assert fake_upstream.count("/simple/hello/") == pages

