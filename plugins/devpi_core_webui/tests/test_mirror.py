"""Mirror indexes: no upstream name list on the page, projects looked up by name."""

from __future__ import annotations

import re

import pytest

from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel

from .conftest import Browser, text_of


@pytest.fixture
def mirror(webui_app, fake_upstream):
    """root/fake mirroring a fake upstream with ``hello`` 1.0 and 1.1 (1.1 yanked)."""
    fake_upstream.add("hello", make_wheel(DistSpec("hello", "1.0")),
                      upload_time="2024-01-02T03:04:05Z")
    fake_upstream.add("hello", make_sdist(DistSpec("hello", "1.1")), yanked="bad")
    fake_upstream.add("unvisited", make_wheel(DistSpec("unvisited", "1.0")))
    client = webui_app()
    client.login("root", "")
    client.create_index("root/fake", type="mirror", mirror_url=fake_upstream.url,
                        mirror_web_url_fmt="https://example.invalid/project/{name}/")
    return client


def test_mirror_index_page_links_the_simple_page_instead_of_listing(mirror, fake_upstream):
    browser = Browser(mirror)
    page = browser.get("/root/fake").text
    assert 'href="http://localhost/root/fake/+simple/">simple page</a>' in page
    assert fake_upstream.url in page
    assert "unvisited" not in page
    assert fake_upstream.count("/simple/") == 0  # showing the index asks the upstream nothing


def test_mirror_project_lookup(mirror, fake_upstream):
    browser = Browser(mirror)
    page = text_of(browser.get("/root/fake?q=Hello").text)
    assert "hello (not cached yet; the page asks the upstream)" in page
    assert fake_upstream.count("/simple/") == 0
    browser.get("/root/fake/hello")  # fetches and caches the page
    assert "hello (cached here)" in text_of(browser.get("/root/fake?q=hello").text)
    assert "is not a valid project name" in browser.get("/root/fake?q=a%20b!").text


def test_mirror_project_and_version_pages(mirror, fake_upstream):
    browser = Browser(mirror)
    page = browser.get("/root/fake/hello").text
    assert page.index(">1.1</a>") < page.index(">1.0</a>")
    assert "yanked: bad" in page
    assert "hello-1.0-py3-none-any.whl" in page
    assert "2024-01-02 03:04" in page
    assert 'href="https://example.invalid/project/hello/"' in page
    version = browser.get("/root/fake/hello/1.0").text
    assert "hello-1.0-py3-none-any.whl" in version
    assert "From " in text_of(version)
    browser.get("/root/fake/nothing-here", status=404)


def test_search_finds_mirror_projects_from_the_upstream_list(mirror):
    browser = Browser(mirror)
    # no stored list yet: search never waits for the upstream (it fetches in the background)
    assert "No project matches" in browser.get("/+search?q=hello").text
    mirror.get("/root/fake/+simple/", status=200)  # the list is stored (waits for the fetch)
    page = browser.get("/+search?q=hello").text  # never visited, but on the upstream list
    assert re.search(r'href="http://localhost/root/fake/hello" class="name"><mark>hello</mark>',
                     page)
    assert "Exact name: " in page
    prefix = browser.get("/+search?q=hell").text  # by prefix and substring too
    assert 'href="http://localhost/root/fake/hello"' in prefix
    assert "Exact name: " not in prefix
    assert 'href="http://localhost/root/fake/hello"' in browser.get("/+search?q=ell").text
    assert "No project matches" in browser.get("/+search?q=hellos").text


def test_project_status_banners(mirror, fake_upstream):
    browser = Browser(mirror)
    fake_upstream.set_status("hello", "archived", "moved to hello2")
    page = text_of(browser.get("/root/fake/hello").text)
    assert "archived hello is archived: it takes no new uploads. Reason: moved to hello2" in page
    assert "hello-1.0-py3-none-any.whl" in page
    assert "is archived" in text_of(browser.get("/root/fake/hello/1.0").text)
    fake_upstream.set_status("hello", "quarantined", "malware")
    mirror.app.post("/root/fake/+simple/hello/refresh")
    page = text_of(browser.get("/root/fake/hello").text)
    assert "none of its files is offered for download. Reason: malware" in page
    assert "hello-1.0" not in page
