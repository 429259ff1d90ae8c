"""Simple API of a stage: PEP 503 HTML, PEP 691 JSON, PEP 592/658/700, ETag, gzip, redirects."""

from __future__ import annotations

import gzip
import hashlib
import re
from urllib.parse import urljoin

import pytest
from webob import Request

from devpi_core.testing.client import PEP691
from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel

PIP_UA = 'pip/24.0 {"installer":{"name":"pip"}}'


@pytest.fixture
def alice(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.wheel = make_wheel(DistSpec("Hello.World", "1.0", requires_python=">=3.8,<4"))
    client.sdist = make_sdist(DistSpec("Hello.World", "0.9"))
    client.upload("alice/dev", client.wheel, name="Hello.World")
    client.upload("alice/dev", client.sdist, name="Hello.World", version="0.9")
    client.logout()
    return client


def get(client, path, **headers):
    return client.app.get(path, headers=headers, status="*", expect_errors=True)


def test_html_page_has_hashes_requires_python_and_core_metadata(alice):
    response = alice.simple("alice/dev", "hello-world")
    assert response.content_type == "text/html"
    assert "Accept" in response.headers["Vary"]
    anchors = re.findall(r"<a ([^>]*)>([^<]*)</a>", response.text)
    by_name = {name: attrs for attrs, name in anchors}
    wheel_attrs = by_name[alice.wheel.filename]
    assert f'#sha256={alice.wheel.sha256}"' in wheel_attrs
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in wheel_attrs
    core = hashlib.sha256(alice.wheel.metadata).hexdigest()
    assert f'data-core-metadata="sha256={core}"' in wheel_attrs
    assert "data-core-metadata" not in by_name[alice.sdist.filename]
    assert "data-yanked" not in wheel_attrs


def test_json_page_has_pep691_and_pep700_fields(alice):
    response = alice.simple("alice/dev", "hello-world", json_api=True)
    assert response.content_type == PEP691
    page = response.json
    assert page["meta"]["api-version"] == "1.4"  # PEP 792 project-status
    assert page["project-status"] == {"status": "active"}
    assert page["name"] == "hello-world"
    assert page["versions"] == ["0.9", "1.0"]
    files = {f["filename"]: f for f in page["files"]}
    wheel = files[alice.wheel.filename]
    assert wheel["hashes"] == {"sha256": alice.wheel.sha256}
    assert wheel["requires-python"] == ">=3.8,<4"
    assert wheel["size"] == len(alice.wheel.content)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", wheel["upload-time"])
    assert wheel["core-metadata"] == {"sha256": hashlib.sha256(alice.wheel.metadata).hexdigest()}
    assert "yanked" not in wheel


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("application/vnd.pypi.simple.v1+json", PEP691),
        ("application/vnd.pypi.simple.latest+json", PEP691),
        ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.v1+html"),
        ("text/html", "text/html"),
        ("*/*", "text/html"),
        ("application/vnd.pypi.simple.v1+json;q=0.2, text/html", "text/html"),
        ("application/vnd.pypi.simple.v1+json, text/html;q=0.01", PEP691),
    ],
)
def test_negotiation(alice, accept, content_type):
    response = get(alice, "/alice/dev/+simple/hello-world/", Accept=accept)
    assert response.status_int == 200
    assert response.content_type == content_type


def test_no_accept_header_gets_html(alice):
    response = alice.app.get("/alice/dev/+simple/hello-world/")
    assert response.content_type == "text/html"


def test_browsers_are_redirected_to_the_normalized_url(alice):
    response = get(alice, "/alice/dev/+simple/Hello_World/", Accept="text/html")
    assert response.status_int == 302
    assert response.headers["Location"].endswith("/alice/dev/+simple/hello-world/")
    response = get(alice, "/alice/dev/+simple/hello-world", Accept="text/html")
    assert response.status_int == 302
    assert response.headers["Location"].endswith("/alice/dev/+simple/hello-world/")


@pytest.mark.parametrize(
    "path", ["/alice/dev/+simple/Hello_World/", "/alice/dev/+simple/hello.world"]
)
def test_installers_get_the_page_directly(alice, path):
    for headers in ({"User-Agent": PIP_UA}, {"Accept": PEP691}, {"User-Agent": "uv/0.4.0"}):
        response = get(alice, path, **headers)
        assert response.status_int == 200, headers
        assert alice.wheel.filename in response.text


def test_installer_shortcuts_on_index_and_project_urls(alice):
    listing = get(alice, "/alice/dev/", **{"User-Agent": PIP_UA})
    assert '<a href="hello-world/">hello-world</a>' in listing.text
    page = get(alice, "/alice/dev/hello-world/", **{"User-Agent": PIP_UA})
    assert alice.wheel.filename in page.text


def test_project_list(alice):
    html = alice.simple("alice/dev")
    assert '<a href="hello-world/">hello-world</a>' in html.text
    data = alice.simple("alice/dev", json_api=True).json
    assert data["projects"] == [{"name": "hello-world"}]
    assert data["meta"]["api-version"] == "1.1"
    redirect = get(alice, "/alice/dev/+simple", Accept="text/html")
    assert redirect.status_int == 302
    assert redirect.headers["Location"].endswith("/alice/dev/+simple/")


def test_unknown_project_and_index_are_404(alice):
    assert alice.simple("alice/dev", "nothere", status=404).status_int == 404
    assert get(alice, "/alice/nothere/+simple/x/", Accept=PEP691).status_int == 404
    assert get(alice, "/nobody/dev/+simple/", Accept=PEP691).status_int == 404


def test_strong_etag_and_304(alice):
    first = alice.simple("alice/dev", "hello-world")
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert not etag.startswith("W/")
    assert re.match(r"^max-age=\d+", first.headers["Cache-Control"])
    again = alice.simple("alice/dev", "hello-world", status=304, **{"If-None-Match": etag})
    assert again.body == b""
    assert again.headers["ETag"] == etag
    json_etag = alice.simple("alice/dev", "hello-world", json_api=True).headers["ETag"]
    assert json_etag != etag
    listing = alice.simple("alice/dev")
    alice.simple("alice/dev", status=304, **{"If-None-Match": listing.headers["ETag"]})


def test_etag_changes_after_upload(alice):
    before = alice.simple("alice/dev", "hello-world").headers["ETag"]
    alice.login("alice")
    alice.upload("alice/dev", make_wheel(DistSpec("hello-world", "2.0")))
    after = alice.simple("alice/dev", "hello-world")
    assert after.headers["ETag"] != before
    assert "hello_world-2.0" in after.text
    alice.simple("alice/dev", "hello-world", status=200, **{"If-None-Match": before})


def test_gzip_when_accepted(alice):
    alice.login("alice")
    for n in range(30):
        alice.upload("alice/dev", make_wheel(DistSpec("hello-world", f"3.{n}")))
    plain = alice.simple("alice/dev", "hello-world")
    # WebTest decodes gzip itself; ask the WSGI app directly
    zipped = Request.blank(
        "/alice/dev/+simple/hello-world/",
        headers={"Accept": "text/html", "Accept-Encoding": "gzip"},
    ).get_response(alice.app.app)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.body) == plain.body
    assert "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in zipped.headers["Vary"]


def test_yank_and_unyank(alice):
    alice.login("alice")
    response = alice.request(
        "PATCH", "/alice/dev/hello-world/1.0", {"yanked": "broken build"}, status=200
    )
    assert response.json["message"]
    files = {
        f["filename"]: f
        for f in alice.simple("alice/dev", "hello-world", json_api=True).json["files"]
    }
    assert files[alice.wheel.filename]["yanked"] == "broken build"
    assert "yanked" not in files[alice.sdist.filename]
    html = alice.simple("alice/dev", "hello-world").text
    assert 'data-yanked="broken build"' in html
    assert alice.get_json("/alice/dev/hello-world/1.0")["result"]["yanked"] == "broken build"
    alice.request("PATCH", "/alice/dev/hello-world/1.0", {"yanked": True}, status=200)
    assert 'data-yanked=""' in alice.simple("alice/dev", "hello-world").text
    json_files = alice.simple("alice/dev", "hello-world", json_api=True).json["files"]
    assert {f["filename"]: f.get("yanked") for f in json_files}[alice.wheel.filename] is True
    alice.request("PATCH", "/alice/dev/hello-world/1.0", {"yanked": False}, status=200)
    assert "data-yanked" not in alice.simple("alice/dev", "hello-world").text


@pytest.mark.parametrize("body", [{"yanked": 1}, {"yanked": None}, {"other": True}, {}])
def test_yank_bad_bodies(alice, body):
    alice.login("alice")
    alice.request("PATCH", "/alice/dev/hello-world/1.0", body, status=400)


def test_yank_needs_upload_permission_and_an_existing_version(alice):
    alice.request("PATCH", "/alice/dev/hello-world/1.0", {"yanked": True}, status=401)
    alice.create_and_login("bob")
    alice.request("PATCH", "/alice/dev/hello-world/1.0", {"yanked": True}, status=403)
    alice.login("alice")
    alice.request("PATCH", "/alice/dev/hello-world/7.0", {"yanked": True}, status=404)


def test_absolute_urls_on_request(alice):
    page = alice.simple(
        "alice/dev", "hello-world", json_api=True, **{"X-Devpi-Absolute-Urls": "1"}
    ).json
    assert all(f["url"].startswith("http://localhost/alice/dev/_f/") for f in page["files"])
    relative = alice.simple("alice/dev", "hello-world", json_api=True).json
    assert all(not f["url"].startswith("http") for f in relative["files"])


def test_known_outside_url_makes_links_absolute(alice, make_app):
    headers = {"X-Outside-Url": "https://pkgs.example/sub"}
    for _ in range(2):  # rendered, then from the page cache
        page = alice.simple("alice/dev", "hello-world", json_api=True, **headers).json
        urls = [f["url"] for f in page["files"]]
        assert all(url.startswith("https://pkgs.example/sub/alice/dev/_f/") for url in urls)
    relative = alice.simple("alice/dev", "hello-world", json_api=True).json
    assert all(not f["url"].startswith("http") for f in relative["files"])
    configured = make_app({"server": {"outside_url": "https://index.example/"}})
    configured.create_and_login("bob")
    configured.create_index("bob/dev")
    configured.upload("bob/dev", make_wheel(DistSpec("hello-world", "1.0")), status=200)
    page = configured.simple("bob/dev", "hello-world").text
    assert 'href="https://index.example/bob/dev/_f/' in page


def test_page_links_resolve_to_the_files(alice):
    for entry in alice.simple("alice/dev", "hello-world", json_api=True).json["files"]:
        body = alice.app.get(urljoin("/alice/dev/+simple/hello-world/", entry["url"])).body
        assert hashlib.sha256(body).hexdigest() == entry["hashes"]["sha256"]
