"""Only browsers get HTML; JSON clients, installers and curl keep core's answers."""

from __future__ import annotations

import pytest

from devpi_core_webui.negotiation import accept_prefers_html

from .conftest import BROWSER, Browser

JSON_TYPES = {
    "/": "list:userconfig", "/alice": "userconfig", "/alice/": "userconfig",
    "/alice/dev": "indexconfig", "/alice/dev/": "indexconfig", "/alice/dev/pkg": "projectconfig",
    "/alice/dev/pkg/1.0": "versiondata", "/+status": "status",
}
PAGES = list(JSON_TYPES)
PIP_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
              "text/html; q=0.01")
UV_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
             "text/html;q=0.01")
PIP_UA = 'pip/24.2 {"ci":null,"installer":{"name":"pip","version":"24.2"}}'
UV_UA = "uv/0.4.18"


def test_browsers_get_html_and_json_clients_the_envelope(browser, shop):
    for path in PAGES:
        response = browser.get(path)
        assert response.content_type == "text/html", path
        assert response.text.startswith("<!DOCTYPE html>")
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "Accept" in response.headers["Vary"]
        assert response.headers["X-DEVPI-API-VERSION"] == "2"  # core's tween still runs
        response = shop.app.get(path, headers={"Accept": "application/json"})
        assert response.content_type == "application/json", path
        assert response.json["type"] == JSON_TYPES[path]


INSTALLERS = [
    (PIP_ACCEPT, PIP_UA, "application/vnd.pypi.simple.v1+json"),
    (UV_ACCEPT, UV_UA, "application/vnd.pypi.simple.v1+json"),
    ("text/html", "pip/9.0.3 CPython/3.6", "text/html"),  # old pip: HTML only, known by its agent
    (BROWSER["Accept"], "uv/0.4.18", "text/html"),
]


def test_installers_get_simple_pages(shop):
    for accept, user_agent, content_type in INSTALLERS:
        headers = {"Accept": accept, "User-Agent": user_agent}
        project = shop.app.get("/alice/dev/pkg", headers=headers)
        assert project.content_type == content_type, user_agent
        assert shop.wheel.filename in project.text
        assert 'class="brand"' not in project.text
        listing = shop.app.get("/alice/dev/", headers=headers)
        assert listing.content_type == content_type
        assert "pkg" in listing.text
        assert 'class="brand"' not in listing.text
        if content_type == "text/html":
            assert "pypi:repository-version" in project.text


def test_pep691_accept_gets_json_simple_pages_without_an_installer_agent(shop):
    headers = {"Accept": PIP_ACCEPT, "User-Agent": "curl/8.5"}
    response = shop.app.get("/alice/dev/pkg", headers=headers)
    assert response.content_type == "application/vnd.pypi.simple.v1+json"
    assert shop.wheel.filename in {f["filename"] for f in response.json["files"]}


def test_curl_and_json_preferring_clients_get_core_answers(shop):
    for accept in (None, "*/*", "application/json, text/html;q=0.5"):
        headers = {"User-Agent": "curl/8.5.0", **({"Accept": accept} if accept else {})}
        assert shop.app.get("/", headers=headers).json["type"] == "list:userconfig"
        assert shop.app.get("/+status", headers=headers).json["type"] == "status"
        assert shop.app.get("/alice/dev", headers=headers).json["type"] == "indexconfig"
    # core answers 415 here without a JSON Accept; the web UI must not change that for curl
    shop.app.get("/alice/dev/pkg", headers={"Accept": "*/*"}, status=415)
    shop.app.get("/alice/dev/pkg", status=415)


def test_with_the_webui_disabled_a_browser_gets_core_answers(webui_app):
    client = webui_app({"plugins": {"disabled": ["webui"]}})
    client.create_and_login("alice")
    client.create_index("alice/dev")
    browser = Browser(client)
    assert browser.get("/").json["type"] == "list:userconfig"
    assert browser.get("/alice/dev").json["type"] == "indexconfig"
    status = browser.get("/+status")
    assert status.content_type == "application/json"
    missing = browser.get("/nobody", status=404)
    assert missing.content_type != "text/html"
    browser.get("/+search?q=x", status=404)


def test_browser_errors_are_html_and_json_errors_stay_json(browser, shop):
    page = browser.get("/alice/nothere", status=404)
    assert page.content_type == "text/html"
    assert "no index alice/nothere" in page.text
    assert "<h1>404 Not found</h1>" in page.text
    assert shop.get("/alice/nothere", status=404).json == {"message": "no index alice/nothere"}
    deep = browser.get("/a/b/c/d/e/f", status=404)  # no route at all
    assert deep.content_type == "text/html"
    assert "There is nothing at /a/b/c/d/e/f." in deep.text
    assert shop.get("/a/b/c/d/e/f", status=404).json["message"].startswith("not found")


def test_non_normalized_names_redirect(browser):
    response = browser.get("/alice/dev/PKG", status=302)
    assert response.headers["Location"] == "http://localhost/alice/dev/pkg"
    response = browser.get("/alice/dev/Other_Thing/0.1", status=302)
    assert response.headers["Location"] == "http://localhost/alice/dev/other-thing/0.1"


def test_bad_project_names_are_400_pages(browser):
    page = browser.get("/alice/dev/caf%C3%A9", status=400)
    assert page.content_type == "text/html"
    assert "invalid project name" in page.text
    page = browser.get("/alice/%ff", status=400)  # refused by core's sanity check, before routing
    assert page.content_type == "text/html"
    assert "not valid UTF-8" in page.text


@pytest.mark.parametrize(("header", "expected"), [
    (BROWSER["Accept"], True),
    ("text/html", True),
    ("application/xhtml+xml", True),
    ("text/html, application/json", True),  # a tie goes to HTML, the first named
    ("", False),
    ("*/*", False),
    ("application/json", False),
    ("application/json, text/html;q=0.9", False),
    (PIP_ACCEPT, False),
    (UV_ACCEPT, False),
    ("text/html;q=0", False),
    ("garbage;;;", False),
])
def test_which_accept_headers_prefer_html(header, expected):
    assert accept_prefers_html(header) is expected
