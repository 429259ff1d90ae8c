"""Release and mirrored files never render as pages on the server's origin.

The attack: a release file ``x-3.0.html.bz2`` that starts with ``BZh`` but holds HTML was served
as ``text/html`` (the type guessed from its name) and its script ran with the reader's
credentials for the whole origin; a mirror passed an upstream's ``Content-Type: text/html``
through on the first download. Every file response now has an allowlisted type, ``nosniff`` and
a CSP sandbox, whatever the name or the upstream says.
"""

from __future__ import annotations

import pytest

from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel
from devpi_core.testing.upstream import FakeUpstream

SCRIPT = b"BZh<html><script>fetch('/+api')</script></html>"
EVIL = "evil-3.0.html.bz2"
ACTIVE_TYPES = (
    "text/html",
    "image/svg+xml",
    "text/xml",
    "application/xml",
    "application/xhtml+xml",
    "application/javascript",
    "text/javascript",
)
SAFE_TYPES = {
    "application/octet-stream",
    "application/zip",
    "application/x-tar",
    "application/gzip",
    "application/x-bzip2",
    "application/x-xz",
}


def assert_inert(response, *, allowed=SAFE_TYPES):
    """The headers a browser acts on keep the body from rendering as an active page."""
    if response.status_int != 304:
        content_type = response.headers["Content-Type"].split(";")[0].strip()
        assert content_type in allowed
        assert content_type not in ACTIVE_TYPES
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = response.headers["Content-Security-Policy"]
    assert "sandbox" in policy
    assert "allow-scripts" not in policy
    assert "default-src 'none'" in policy


@pytest.fixture
def alice(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    return client


def upload_evil(client):
    class Evil:
        filename = EVIL
        content = SCRIPT

    client.app.post(
        "/alice/dev/",
        params=[(":action", "file_upload"), ("name", "evil"), ("version", "3.0")],
        upload_files=[("content", Evil.filename, Evil.content)],
        headers=client._headers(json_accept=False),
    )
    return "/alice/dev/+f/" + next(
        link["href"].split("/+f/", 1)[1]
        for link in client.get_json("/alice/dev/evil/3.0")["result"]["+links"]
    )


def test_html_named_release_file_is_not_served_as_html(alice):
    path = upload_evil(alice)
    response = alice.app.get(path)
    assert response.body == SCRIPT
    assert_inert(response)
    assert response.headers["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Range": "bytes=0-3"}, {"Range": "bytes=999-"}],
    ids=["get", "range", "unsatisfiable"],
)
def test_every_file_response_kind_is_inert(alice, headers):
    path = upload_evil(alice)
    response = alice.app.get(path, headers=headers, status="*")
    assert response.status_int in (200, 206, 416)
    assert_inert(response)
    etag = alice.app.get(path).headers["ETag"]
    assert_inert(alice.app.get(path, headers={"If-None-Match": etag}, status=304))
    assert_inert(alice.app.head(path))
    assert_inert(alice.app.get(path.replace("/+f/", "/_f/")))


def test_allowlisted_types_for_real_distributions(alice):
    wheel = make_wheel(DistSpec("pkg", "1.0"))
    sdist = make_sdist(DistSpec("pkg", "1.0"))
    for dist in (wheel, sdist):
        alice.upload("alice/dev", dist)
    links = {
        link["href"].rsplit("/", 1)[1]: link["href"].split("/+f/", 1)[1]
        for link in alice.get_json("/alice/dev/pkg/1.0")["result"]["+links"]
    }
    whl = alice.app.get(f"/alice/dev/+f/{links[wheel.filename]}")
    assert whl.body == wheel.content
    assert whl.headers["Content-Type"] == "application/zip"
    assert_inert(whl)
    tgz = alice.app.get(f"/alice/dev/+f/{links[sdist.filename]}")
    assert_inert(tgz)
    metadata = alice.app.get(f"/alice/dev/+f/{links[wheel.filename]}.metadata")
    assert metadata.body.startswith(b"Metadata-Version")
    assert_inert(metadata, allowed={"text/plain"})


def _html_upstream_files(monkeypatch):
    """The fake upstream answers file downloads with ``Content-Type: text/html``."""
    original = FakeUpstream._file

    def answer(self, request, key, filename):
        response = original(self, request, key, filename)
        response.content_type = "text/html"
        return response

    monkeypatch.setattr(FakeUpstream, "_file", answer)


@pytest.mark.parametrize("verify_before_send", ["4M", 0], ids=["held-back", "streamed"])
def test_mirror_first_download_ignores_upstream_html_type(
    make_app, fake_upstream, monkeypatch, verify_before_send
):
    _html_upstream_files(monkeypatch)
    client = make_app({"plugins": {"mirror": {"verify_before_send": verify_before_send}}})
    client.login("root", "")
    client.create_index("root/fake", type="mirror", mirror_url=fake_upstream.url)
    wheel = make_wheel(DistSpec("hello", "1.0"))
    fake_upstream.add("hello", wheel)
    page = client.simple("root/fake", "hello", json_api=True).json
    url = page["files"][0]["url"]
    path = "/root/fake/+simple/hello/" + url if not url.startswith("/") else url
    path = path.replace("/+simple/hello/../../", "/")
    first = client.app.get(path)
    assert first.body == wheel.content
    assert fake_upstream.count("/files/") == 1
    assert_inert(first)
    assert first.headers["Content-Type"] == "application/zip"


def test_nosniff_on_pages_errors_and_api(alice):
    for path, status in (("/", 200), ("/+api", 200), ("/alice/dev/+simple/", 200),
                         ("/nobody", 404), ("/alice/dev/+f/nothing", 404)):
        response = alice.app.get(path, status=status, expect_errors=True)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers.getall("X-Content-Type-Options") == ["nosniff"], path
