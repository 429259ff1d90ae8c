"""Documentation pages render, but their script cannot act on the API.

The attack: any self-registered user uploads a documentation zip whose page runs script; a
reader opens it and, since the browser holds HTTP Basic credentials for the whole origin, the
script reads the reader's private index and changes their password. Doc pages are now served
in a CSP sandbox without scripts (an opaque origin), or moved to a separate origin that serves
nothing but documentation (``server.docs_url``).
"""

from __future__ import annotations

import http.client
import io
import struct
import tracemalloc
import zipfile

import pytest
import waitress
from devpi_core_stages import docs
from webob import Request

from devpi_core.errors import NotFound
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.waitress_loop import served

PAGE = "<html><head><link rel='stylesheet' href='style.css'></head><body><h1>Docs</h1>" \
       "<img src='logo.png'><script>fetch('/alice/+api')</script></body></html>"
SVG = "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
DOCS = {
    "index.html": PAGE,
    "style.css": "h1 { color: red }",
    "logo.png": "\x89PNG\r\n\x1a\n",
    "evil.svg": SVG,
    "_static/font.woff2": "wOF2",
}
DOCS_HOST = "docs.example.test"
MAIN_HOST = "localhost:80"


def doczip(pages):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in pages.items():
            zf.writestr(name, text)
    return buffer.getvalue()


def upload_docs(client, content, *, status=200):
    return client.app.post(
        "/alice/dev/",
        params=[(":action", "doc_upload"), ("name", "pkg"), ("version", "1.0")],
        upload_files=[("content", "pkg-1.0.doc.zip", content)],
        headers=client._headers(json_accept=False),
        status=status,
        expect_errors=True,
    )


def setup_alice(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")))
    upload_docs(client, doczip(DOCS))
    return client


@pytest.fixture
def alice(client):
    return setup_alice(client)


def tokens(response):
    policy = response.headers["Content-Security-Policy"]
    directives = {d.strip().split()[0]: d.strip().split()[1:] for d in policy.split(";")}
    return set(directives["sandbox"])


@pytest.mark.parametrize(
    ("member", "content_type"),
    [
        ("index.html", "text/html"),
        ("evil.svg", "image/svg+xml"),
        ("style.css", "text/css"),
        ("logo.png", "image/png"),
    ],
)
def test_doc_files_are_sandboxed_without_scripts(alice, member, content_type):
    response = alice.app.get(f"/alice/dev/pkg/1.0/+doc/{member}")
    assert response.headers["Content-Type"].split(";")[0] == content_type
    assert response.headers.getall("X-Content-Type-Options") == ["nosniff"]
    sandbox = tokens(response)
    assert "allow-scripts" not in sandbox
    assert "allow-same-origin" not in sandbox
    assert "allow-forms" not in sandbox
    # links still work for a reader
    assert "allow-popups" in sandbox
    assert "allow-top-navigation-by-user-activation" in sandbox


def test_doc_page_renders_for_a_reader(alice):
    page = alice.app.get("/alice/dev/pkg/latest/+doc/")
    assert page.text == PAGE
    etag = page.headers["ETag"]
    for response in (
        alice.app.head("/alice/dev/pkg/1.0/+doc/index.html"),
        alice.app.get("/alice/dev/pkg/1.0/+doc/", headers={"If-None-Match": etag}, status=304),
    ):
        assert "allow-scripts" not in tokens(response)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    # a sandboxed page is an opaque origin: its font requests are CORS requests from "null"
    font = alice.app.get("/alice/dev/pkg/1.0/+doc/_static/font.woff2")
    assert font.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in page.headers


@pytest.fixture
def docs_origin(make_app):
    return setup_alice(make_app({"server": {"docs_url": f"https://{DOCS_HOST}/"}}))


def test_docs_url_moves_docs_to_their_own_origin(docs_origin):
    on_main = docs_origin.app.get(
        "/alice/dev/pkg/1.0/+doc/a%20b.html?x=1", headers={"Host": MAIN_HOST}, status=302
    )
    assert on_main.headers["Location"] == f"https://{DOCS_HOST}/alice/dev/pkg/1.0/+doc/a%20b.html?x=1"
    docs_origin.app.head("/alice/dev/pkg/1.0/+doc/", headers={"Host": MAIN_HOST}, status=302)
    on_docs = docs_origin.app.get(
        "/alice/dev/pkg/1.0/+doc/index.html", headers={"Host": DOCS_HOST}
    )
    assert on_docs.text == PAGE
    assert "allow-scripts" not in tokens(on_docs)
    assert on_docs.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/+api"),
        ("GET", "/alice/+api"),
        ("GET", "/alice/dev/+simple/"),
        ("GET", "/alice/dev/+simple/pkg/"),
        ("POST", "/+login"),
        ("PATCH", "/alice"),
        ("GET", "/"),
        ("POST", "/alice/dev/pkg/1.0/+doc/index.html"),
    ],
)
def test_docs_origin_serves_nothing_but_docs(docs_origin, method, path):
    # the simple page is cached first: a cached answer must not bypass the check either
    docs_origin.simple("alice/dev", "pkg", Host=MAIN_HOST)
    response = docs_origin.request(method, path, {}, headers={"Host": DOCS_HOST})
    assert response.status_int == 404
    assert "documentation" in response.json["message"]
    main = docs_origin.request("GET", "/+api", headers={"Host": MAIN_HOST})
    assert main.status_int == 200


def test_docs_allow_scripts_only_on_the_docs_origin(make_app):
    client = setup_alice(
        make_app({"server": {"docs_url": f"https://{DOCS_HOST}", "docs_allow_scripts": True}})
    )
    on_docs = client.app.get("/alice/dev/pkg/1.0/+doc/index.html", headers={"Host": DOCS_HOST})
    assert {"allow-scripts", "allow-same-origin"} <= tokens(on_docs)
    # without a docs origin the setting changes nothing: the API's origin never runs doc script
    plain = setup_alice(make_app({"server": {"docs_allow_scripts": True}}))
    response = plain.app.get("/alice/dev/pkg/1.0/+doc/index.html")
    assert "allow-scripts" not in tokens(response)


def test_webui_links_docs_on_the_docs_origin(docs_origin):
    page = docs_origin.app.get(
        "/alice/dev/pkg/1.0", headers={"Accept": "text/html", "Host": MAIN_HOST}
    ).text
    assert f'href="https://{DOCS_HOST}/alice/dev/pkg/1.0/+doc/index.html"' in page


# -- zip bombs ------------------------------------------------------------------------------
MiB = 1024 * 1024


def zeros_zip(real_size, declared_size=None):
    """A docs zip whose ``index.html`` is ``real_size`` zero bytes (deflated to ~1/1000).

    With ``declared_size`` the local header and the central directory claim that size instead
    (the CRC still belongs to the real content).
    """
    buffer = io.BytesIO()
    block = b"\0" * MiB
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("index.html", "w") as f:
        for _ in range(real_size // MiB):
            f.write(block)
    data = bytearray(buffer.getvalue())
    if declared_size is not None:
        struct.pack_into("<I", data, data.find(b"PK\x03\x04") + 22, declared_size)
        struct.pack_into("<I", data, data.find(b"PK\x01\x02") + 24, declared_size)
    return bytes(data)


def wsgi_get(client, path):
    """GET ``path`` through the WSGI app, counting the body without keeping it.

    Returns ``(status, headers, body length, peak bytes allocated while answering)``.
    """
    tracemalloc.start()
    try:
        status, headers, app_iter = Request.blank(path).call_application(client.app.app)
        received = 0
        try:
            for chunk in app_iter:
                received += len(chunk)
        finally:
            if hasattr(app_iter, "close"):
                app_iter.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return int(status.split()[0]), dict(headers), received, peak


@pytest.fixture
def bomb_alice(client, monkeypatch):
    # the upload check's ratio limit is not what these tests are about: let the zips in
    monkeypatch.setattr(docs, "MAX_RATIO", 10**9)
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")))
    return client


def test_central_directory_understating_a_size_is_a_clean_404_in_bounded_memory(client):
    # the attack needs no ratio allowance: 1000 bytes declared, 64 MiB inside
    setup_alice(client)
    upload_docs(client, zeros_zip(64 * MiB, declared_size=1000))
    status, _headers, _received, peak = wsgi_get(client, "/alice/dev/pkg/1.0/+doc/")
    assert status == 404
    assert peak < 4 * MiB
    response = client.app.get("/alice/dev/pkg/1.0/+doc/index.html", status=404)
    assert "corrupt" in response.json["message"]


def test_honest_big_member_streams_in_bounded_memory(bomb_alice):
    upload_docs(bomb_alice, zeros_zip(48 * MiB))
    status, headers, received, peak = wsgi_get(bomb_alice, "/alice/dev/pkg/1.0/+doc/")
    assert status == 200
    assert int(headers["Content-Length"]) == received == 48 * MiB
    # one decompressed chunk, the compressed input behind it, the reader's buffer
    assert peak < 6 * MiB
    head = bomb_alice.app.head("/alice/dev/pkg/1.0/+doc/index.html")
    assert head.headers["Content-Length"] == str(48 * MiB)


def test_member_over_the_cap_is_refused_before_decompressing(bomb_alice, monkeypatch):
    monkeypatch.setattr(docs, "MAX_MEMBER", 2 * MiB)
    upload_docs(bomb_alice, zeros_zip(3 * MiB))
    status, _headers, _received, peak = wsgi_get(bomb_alice, "/alice/dev/pkg/1.0/+doc/")
    assert status == 404
    assert peak < MiB
    response = bomb_alice.app.get("/alice/dev/pkg/1.0/+doc/", status=404)
    assert "too large" in response.json["message"]


@pytest.fixture
def waitress_url(bomb_alice):
    """``bomb_alice``'s app served by waitress on 127.0.0.1 (aborting is waitress's part)."""
    server = waitress.create_server(bomb_alice.app.app, host="127.0.0.1", port=0, threads=2)
    with served(server):
        yield f"127.0.0.1:{server.effective_port}"


@pytest.mark.parametrize(
    ("real", "declared"),
    [(8 * MiB, 4 * MiB), (2 * MiB, 4 * MiB)],
    ids=["understated", "overstated"],
)
def test_lie_found_while_streaming_aborts_the_connection(
    bomb_alice, waitress_url, real, declared
):
    upload_docs(bomb_alice, zeros_zip(real, declared_size=declared))
    connection = http.client.HTTPConnection(waitress_url, timeout=30)
    try:
        connection.request("GET", "/alice/dev/pkg/1.0/+doc/index.html")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == str(declared)
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
        assert len(cut.value.partial) < declared
    finally:
        connection.close()


def test_bzip2_doc_zips_are_refused_at_upload(alice):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("index.html", "<h1>bz</h1>")
    response = upload_docs(alice, buffer.getvalue(), status=400)
    assert "only stored and deflated" in response.json["message"]


def test_corrupt_zip_is_a_404_when_served():
    with pytest.raises(NotFound, match="corrupt"):
        docs.open_member(io.BytesIO(b"PK\x05\x06 but not a zip"), "index.html")

