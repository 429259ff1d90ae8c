"""The warm-file shortcut (devpi_core.file_shortcut): stored files of public indexes answered
before Pyramid, byte for byte and header for header what the full path answers; ranges,
conditions, HEAD, JSON, withheld and held files and private indexes go through Pyramid."""

from __future__ import annotations

import time
from urllib.parse import urljoin

import pytest
from devpi_core_policy.rules import parse_time
from devpi_core_policy.service import Policy

from devpi_core import file_shortcut, page_shortcut, services
from devpi_core.testing.dists import DistSpec, make_wheel

NOW = parse_time("2026-11-10T12:00:00Z")


def _count_full(client, monkeypatch):
    client.full = []  # the requests Pyramid handled
    real = page_shortcut.default_execution_policy

    def counted(environ, router):
        client.full.append(environ["PATH_INFO"])
        return real(environ, router)

    monkeypatch.setattr(page_shortcut, "default_execution_policy", counted)


def _file_url(client, index, project, filename=None):
    page = client.simple(index, project, json_api=True).json
    url = next(f["url"] for f in page["files"] if filename in (None, f["filename"]))
    return urljoin(f"http://localhost/{index}/+simple/{project}/", url)[len("http://localhost"):]


@pytest.fixture
def alice(client, monkeypatch):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.wheel = make_wheel(DistSpec("hello", "1.0"))
    client.upload("alice/dev", client.wheel, name="hello")
    client.path = _file_url(client, "alice/dev", "hello")
    client.logout()
    _count_full(client, monkeypatch)
    return client


def _headers(response):
    return sorted((k, v) for k, v in response.headerlist if k != "X-Request-ID")


def _full_path(monkeypatch):
    """Make the shortcut stand aside, to see what the full path answers."""
    monkeypatch.setattr(file_shortcut.FileShortcut, "answer", lambda self, environ: None)


def test_a_stored_file_skips_pyramid_and_answers_the_same(alice, monkeypatch):
    paths = [alice.path, alice.path.replace("/_f/", "/+f/")]
    assert paths[0] != paths[1]
    warm = [alice.app.get(path) for path in paths]
    assert alice.full == []  # the shortcut answered both URLs
    with monkeypatch.context() as m:
        _full_path(m)
        full = [alice.app.get(path) for path in paths]
    assert alice.full == paths
    for fast, slow in zip(warm, full, strict=True):
        assert fast.body == slow.body == alice.wheel.content
        assert _headers(fast) == _headers(slow)
        assert fast.headers["ETag"] == f'"{alice.wheel.sha256}"'
        assert fast.headers["X-Content-Type-Options"] == "nosniff"
        assert fast.headers["X-Request-ID"] != slow.headers["X-Request-ID"]
    metrics = alice.app.get("/+metrics").text
    counted = 'devpi_http_requests_total{method="GET",route="file_f_alias",status="200"} 2.0'
    assert counted in metrics


def test_ranges_conditions_head_and_json_go_through_pyramid(alice):
    content, path = alice.wheel.content, alice.path
    etag = f'"{alice.wheel.sha256}"'
    ranged = alice.app.get(path, headers={"Range": "bytes=0-9"}, status=206)
    assert ranged.body == content[:10]
    assert ranged.headers["Content-Range"] == f"bytes 0-9/{len(content)}"
    alice.app.get(path, headers={"If-None-Match": etag}, status=304)
    head = alice.app.head(path)
    assert head.headers["Content-Length"] == str(len(content))
    assert head.body == b""
    meta = alice.app.get(path, headers={"Accept": "application/json"})
    assert meta.json["result"]["hash_spec"].startswith("sha256=")
    alice.app.get(path + "?x=1")
    assert alice.full == [path] * 5


def test_a_quarantined_file_is_not_served_after_being_served(alice):
    alice.app.get(alice.path)  # warm: remembered for this serial
    assert alice.full == []
    alice.full.clear()
    alice.login("alice")
    alice.request("PATCH", "/alice/dev/hello", {"project-status": "quarantined"})
    alice.logout()
    refused = alice.app.get(alice.path, status=410)
    assert refused.json["message"]
    assert alice.path in alice.full


def test_a_private_index_goes_through_pyramid(alice):
    alice.login("alice")
    alice.modify_index("alice/dev", {"acl_read": ["alice"]})
    alice.logout()
    alice.full.clear()
    alice.app.get(alice.path, status=401)
    assert alice.full == [alice.path]


@pytest.fixture
def mirror(make_app, fake_upstream, monkeypatch):
    fake_upstream.add("pkg", make_wheel(DistSpec("pkg", "1.0")),
                      upload_time="2026-10-10T12:00:00.000000Z")
    fake_upstream.add("pkg", make_wheel(DistSpec("pkg", "2.0")),
                      upload_time="2026-11-10T11:00:00.000000Z")
    client = make_app()
    client.login("root", "")
    client.create_index("root/up", type="mirror", mirror_url=fake_upstream.url,
                        mirror_cache_expiry=3600)
    clock = [NOW]
    services.lookup(client.app.app.registry, Policy).clock = lambda: clock[0]
    client.clock = clock
    _count_full(client, monkeypatch)
    return client


def test_a_cached_mirror_file_is_answered_until_a_policy_holds_it(mirror):
    url = _file_url(mirror, "root/up", "pkg", "pkg-2.0-py3-none-any.whl")
    first = mirror.app.get(url)  # fetched from upstream, stored once complete
    deadline = time.monotonic() + 10
    while True:  # until the file is stored: then the shortcut answers it
        mirror.full.clear()
        again = mirror.app.get(url)
        if not mirror.full or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert mirror.full == []  # the cached file came from the shortcut
    assert again.body == first.body
    # a waiver that expires holds the version again with no write at all
    mirror.modify_index("root/up", ["min_release_age=3d",
                                    "waivers+=pkg==2.0@2026-11-11T00:00:00Z"])
    assert mirror.app.get(url).body == first.body
    mirror.clock[0] = parse_time("2026-11-11T00:00:01Z")
    mirror.full.clear()
    refused = mirror.app.get(url, status=403)
    assert "pkg 2.0" in refused.json["message"]
    assert mirror.full == [url]


def test_files_take_the_shortcut_when_pages_link_absolutely(make_app, monkeypatch):
    client = make_app({"server": {"outside_url": "http://pkgs.example.invalid/"}})
    client.create_and_login("alice")
    client.create_index("alice/dev")
    wheel = make_wheel(DistSpec("hello", "1.0"))
    client.upload("alice/dev", wheel, name="hello")
    client.logout()
    page = client.simple("alice/dev", "hello", json_api=True).json
    url = page["files"][0]["url"]
    assert url.startswith("http://pkgs.example.invalid/alice/dev/")  # absolute
    path = url[len("http://pkgs.example.invalid"):]
    _count_full(client, monkeypatch)
    client.simple("alice/dev", "hello", json_api=True)
    assert client.full == ["/alice/dev/+simple/hello/"]  # absolute pages: the full path
    assert client.app.get(path).body == wheel.content
    assert client.full == ["/alice/dev/+simple/hello/"]  # the file came from the shortcut
