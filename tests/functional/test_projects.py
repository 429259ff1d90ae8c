"""Project and version JSON, release files (+f), and deletion with the volatile/?force rules."""

from __future__ import annotations

import hashlib

import pytest

from devpi_core import services
from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel

JSON = {"Accept": "application/json"}


@pytest.fixture
def alice(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.create_index("alice/prod", volatile=False)
    client.files = {}
    for index in ("alice/dev", "alice/prod"):
        for version in ("1.0", "2.0"):
            wheel = make_wheel(DistSpec("pkg", version))
            sdist = make_sdist(DistSpec("pkg", version))
            client.upload(index, wheel)
            client.upload(index, sdist)
            client.files[(index, version)] = (wheel, sdist)
    return client


def file_hrefs(client, index, project, version):
    links = client.get_json(f"/{index}/{project}/{version}")["result"]["+links"]
    return [
        link["href"].replace("http://localhost", "")
        for link in links
        if link["rel"] == "releasefile"
    ]


def test_project_json(alice):
    data = alice.get_json("/alice/dev/pkg")
    assert data["type"] == "projectconfig"
    assert set(data["result"]) == {"1.0", "2.0"}
    verdata = data["result"]["1.0"]
    assert verdata["name"] == "pkg"
    assert verdata["version"] == "1.0"
    assert {link["rel"] for link in verdata["+links"]} == {"releasefile"}
    for link in verdata["+links"]:
        assert link["href"].startswith("http://localhost/alice/dev/+f/")
        assert set(link) >= {"rel", "href", "hash_spec", "hashes", "log"}


def test_project_json_needs_json_accept(make_app):
    # devpi answers 415 unless the Accept header names JSON (a web UI may answer text/html)
    client = make_app({"plugins": {"disabled": ["webui"]}})
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")))
    client.app.get("/alice/dev/pkg", status=415)
    client.app.get("/alice/dev/pkg", headers={"Accept": "text/html"}, status=415)
    client.app.get("/alice/dev/pkg", headers={"Accept": "application/xml"}, status=415)


def test_project_json_redirects_non_normalized_names(alice):
    response = alice.app.get("/alice/dev/PKG", headers=JSON, status=302)
    assert response.headers["Location"].endswith("/alice/dev/pkg")
    response = alice.app.get("/alice/dev/Pkg/1.0", headers=JSON, status=302)
    assert response.headers["Location"].endswith("/alice/dev/pkg/1.0")


def test_version_json_and_404s(alice):
    data = alice.get_json("/alice/dev/pkg/2.0")
    assert data["type"] == "versiondata"
    assert data["result"]["version"] == "2.0"
    assert "+shadowing" not in data["result"]
    alice.get("/alice/dev/pkg/3.0", status=404)
    alice.get("/alice/dev/nothere", status=404)
    alice.get("/alice/ghost/pkg", status=404)


def test_file_json_meta(alice):
    href = file_hrefs(alice, "alice/dev", "pkg", "1.0")[0]
    meta = alice.get_json(href)
    assert meta["type"] == "releasefilemeta"
    assert meta["result"]["project"] == "pkg"
    assert meta["result"]["version"] == "1.0"
    assert meta["result"]["hash_spec"].startswith("sha256=")


def test_file_download_headers(alice):
    wheel, _sdist = alice.files[("alice/dev", "1.0")]
    href = next(h for h in file_hrefs(alice, "alice/dev", "pkg", "1.0") if h.endswith(".whl"))
    response = alice.app.get(href)
    assert response.body == wheel.content
    assert response.headers["ETag"] == f'"{wheel.sha256}"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert "immutable" in response.headers["Cache-Control"]
    assert "Last-Modified" in response.headers
    head = alice.app.head(href)
    assert head.headers["Content-Length"] == str(len(wheel.content))
    part = alice.app.get(href, headers={"Range": "bytes=0-3"}, status=206)
    assert part.body == wheel.content[:4]


def test_acl_read_protects_files_and_their_metadata(alice):
    href = next(h for h in file_hrefs(alice, "alice/dev", "pkg", "1.0") if h.endswith(".whl"))
    alice.modify_index("alice/dev", ["acl_read=alice"])
    alice.logout()
    alice.app.get(href, status=401)
    alice.app.get(href, headers=JSON, status=401)
    alice.app.get(href + ".metadata", status=401)
    alice.app.get("/alice/dev/+f/abc/def/guessed.whl", status=401)
    alice.login("alice")
    assert alice.get(href, Accept="*/*").body == alice.files[("alice/dev", "1.0")][0].content


def test_delete_version_on_volatile_index(alice):
    hrefs = file_hrefs(alice, "alice/dev", "pkg", "1.0")
    response = alice.request("DELETE", "/alice/dev/pkg/1.0", status=200)
    assert response.json["message"]
    alice.get("/alice/dev/pkg/1.0", status=404)
    assert set(alice.get_json("/alice/dev/pkg")["result"]) == {"2.0"}
    for href in hrefs:
        alice.app.get(href, status=404)
    _wheel, _sdist = alice.files[("alice/dev", "1.0")]
    assert "pkg-1.0" not in alice.simple("alice/dev", "pkg").text


def test_deleting_last_version_removes_project(alice):
    alice.request("DELETE", "/alice/dev/pkg/1.0", status=200)
    alice.request("DELETE", "/alice/dev/pkg/2.0", status=200)
    alice.get("/alice/dev/pkg", status=404)
    assert alice.get_json("/alice/dev")["result"]["projects"] == []
    alice.simple("alice/dev", "pkg", status=404)


def test_delete_project(alice):
    alice.request("DELETE", "/alice/dev/pkg", status=200)
    alice.get("/alice/dev/pkg", status=404)
    alice.request("DELETE", "/alice/dev/pkg", status=404)
    alice.request("DELETE", "/alice/dev/pkg/1.0", status=404)


def test_delete_on_non_volatile_needs_force(alice):
    alice.request("DELETE", "/alice/prod/pkg/1.0", status=403)
    alice.request("DELETE", "/alice/prod/pkg", status=403)
    href = file_hrefs(alice, "alice/prod", "pkg", "1.0")[0]
    alice.request("DELETE", href, status=403)
    alice.request("DELETE", "/alice/prod/pkg/1.0?force", status=200)
    alice.request("DELETE", "/alice/prod/pkg?force", status=200)
    alice.get("/alice/prod/pkg", status=404)


def test_delete_single_file(alice):
    wheel_href, sdist_href = sorted(
        file_hrefs(alice, "alice/dev", "pkg", "2.0"), key=lambda h: h.endswith(".gz")
    )
    alice.request("DELETE", wheel_href, status=200)
    alice.app.get(wheel_href, status=404)
    assert file_hrefs(alice, "alice/dev", "pkg", "2.0") == [sdist_href]
    alice.request("DELETE", sdist_href, status=200)
    alice.get("/alice/dev/pkg/2.0", status=404)


def test_deleted_files_leave_no_blobs(alice):
    blobs = services.blob_store(alice.app.app.registry)
    wheel, sdist = alice.files[("alice/dev", "1.0")]
    assert blobs.exists(wheel.sha256)
    alice.request("DELETE", "/alice/dev/pkg/1.0", status=200)
    # the same content is still used by alice/prod
    assert blobs.exists(wheel.sha256)
    alice.request("DELETE", "/alice/prod/pkg/1.0?force", status=200)
    assert blobs.exists(wheel.sha256), "kept for the garbage collection grace period"
    services.blob_collector(alice.app.app.registry).sweep(grace=0)
    assert not blobs.exists(wheel.sha256)
    assert not blobs.exists(sdist.sha256)


def test_delete_permissions(alice):
    alice.create_and_login("bob")
    alice.request("DELETE", "/alice/dev/pkg/1.0", status=403)
    alice.logout()
    alice.request("DELETE", "/alice/dev/pkg", status=403)  # as devpi-server, anonymous too
    alice.login("alice")
    alice.modify_index("alice/dev", ["acl_upload+=bob"])
    alice.login("bob")
    alice.request("DELETE", "/alice/dev/pkg/1.0", status=200)
    alice.login("root", "")
    alice.request("DELETE", "/alice/dev/pkg/2.0", status=200)


def test_file_moved_to_another_version_keeps_its_blob(alice):
    # the same file uploaded again under another version moves there; its blob must survive
    sdist = alice.files[("alice/dev", "1.0")][1]
    alice.upload("alice/dev", sdist, version="1")
    assert services.blob_store(alice.app.app.registry).exists(sdist.sha256)
    href = file_hrefs(alice, "alice/dev", "pkg", "1")[0]
    assert alice.get(href, Accept="*/*").body == sdist.content


def test_reuploaded_wheel_with_same_metadata_keeps_core_metadata(alice):
    first = make_wheel(DistSpec("samemeta", "1.0"))
    rebuilt = make_wheel(DistSpec("samemeta", "1.0"), padding=200)
    assert first.metadata == rebuilt.metadata
    alice.upload("alice/dev", first)
    alice.upload("alice/dev", rebuilt)
    [entry] = alice.simple("alice/dev", "samemeta", json_api=True).json["files"]
    url = f"/alice/dev/+f/{rebuilt.sha256[:3]}/{rebuilt.sha256[3:16]}/{rebuilt.filename}.metadata"
    assert alice.app.get(url).body == rebuilt.metadata
    assert entry["core-metadata"]["sha256"] == hashlib.sha256(rebuilt.metadata).hexdigest()
