"""Read ACLs: what a visitor may not read is neither listed, searchable nor shown."""

from __future__ import annotations

import pytest

from devpi_core.testing.dists import DistSpec, make_wheel

from .conftest import Browser

ROW = '<tr><td><a href="http://localhost/{0}">{0}</a></td>'


@pytest.fixture
def private(webui_app):
    """alice/secret readable by alice only, with ``hidden-pkg``; alice/open based on it."""
    client = webui_app()
    client.create_user("bob")
    client.create_and_login("alice")
    client.create_index("alice/secret", acl_read=["alice"])
    client.create_index("alice/open", bases="alice/secret")
    client.upload("alice/secret", make_wheel(DistSpec("hidden-pkg", "1.0")))
    client.upload("alice/open", make_wheel(DistSpec("hidden-pkg", "0.5")))
    return client


def test_restricted_index_is_not_listed_for_others(private):
    anonymous = Browser(private)
    for path in ("/", "/alice"):
        page = anonymous.get(path).text
        assert ROW.format("alice/open") in page
        assert ROW.format("alice/secret") not in page
    alice = Browser(private)
    alice.login("alice")
    page = alice.get("/").text
    assert ROW.format("alice/secret") in page
    assert '<span class="who" title="logged in as">alice</span>' in page


def test_restricted_pages_answer_401_for_anonymous_and_403_for_others(private):
    anonymous = Browser(private)
    for path in ("/alice/secret", "/alice/secret/hidden-pkg", "/alice/secret/hidden-pkg/1.0"):
        page = anonymous.get(path, status=401)
        assert page.content_type == "text/html"
        assert page.headers["WWW-Authenticate"].startswith("Basic")
        assert "hidden-pkg 1.0" not in page.text
    bob = Browser(private)
    bob.login("bob")
    page = bob.get("/alice/secret", status=403)
    assert page.content_type == "text/html"
    alice = Browser(private)
    alice.login("alice")
    assert "hidden-pkg" in alice.get("/alice/secret").text
    assert "hidden_pkg-1.0-py3-none-any.whl" in alice.get("/alice/secret/hidden-pkg/1.0").text


def test_unreadable_bases_do_not_contribute(private):
    anonymous = Browser(private)
    page = anonymous.get("/alice/open/hidden-pkg").text
    assert ">0.5</a>" in page
    assert ">1.0</a>" not in page
    anonymous.get("/alice/open/hidden-pkg/1.0", status=404)
    alice = Browser(private)
    alice.login("alice")
    assert ">1.0</a>" in alice.get("/alice/open/hidden-pkg").text


def test_search_respects_read_acls(private):
    anonymous = Browser(private)
    page = anonymous.get("/+search?q=hidden").text
    assert 'href="http://localhost/alice/open/hidden-pkg"' in page
    assert "http://localhost/alice/secret/hidden-pkg" not in page
    alice = Browser(private)
    alice.login("alice")
    assert 'href="http://localhost/alice/secret/hidden-pkg"' in alice.get("/+search?q=hidden").text


def test_wrong_password_is_anonymous(private):
    browser = Browser(private)
    browser.login("alice", "wrong")
    assert ROW.format("alice/secret") not in browser.get("/").text
    browser.get("/alice/secret", status=401)
