"""Project and version pages answer the usual questions: where is the source, what does it
need, how do I install it from here, which releases are yanked and why, which hash to pin."""

from __future__ import annotations

import re

import pytest

from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core_webui import project_info

from .conftest import TOXRESULT, Browser, text_of

SPEC = DistSpec(
    "rich-pkg", "3.0", summary="a well described project", requires_python=">=3.10",
    requires_dist=["requests>=2.31", 'tomli>=1; python_version < "3.11"',
                   "rich[jupyter]>=13; extra == 'cli'"],
    extra_metadata=(
        "Home-page: https://home.example/",
        "Project-URL: Repository, https://git.example/rich-pkg",
        "Project-URL: Bug Tracker, https://git.example/rich-pkg/issues",
        "Project-URL: Changelog, https://git.example/rich-pkg/CHANGES",
        "Project-URL: Funding, https://fund.example/rich-pkg",
        "Project-URL: Chat, javascript:alert(1)",
        "License-Expression: MIT",
        "Classifier: Programming Language :: Python :: 3",
        "Classifier: Development Status :: 5 - Production/Stable",
        "Provides-Extra: cli",
    ),
)


@pytest.fixture
def page(webui_app):
    client = webui_app()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    wheel = make_wheel(SPEC)
    client.upload("alice/dev", wheel, description="# Rich\n\nhello",
                  description_content_type="text/markdown")
    client.upload("alice/dev", make_wheel(DistSpec("rich-pkg", "3.1", summary="bad")))
    client.request("PATCH", "/alice/dev/rich-pkg/3.1", {"yanked": "wrong wheel"}, status=200)
    links = client.get_json("/alice/dev/rich-pkg/3.0")["result"]["+links"]
    client.request("POST", links[0]["href"].replace("http://localhost", ""), TOXRESULT,
                   status=200)
    client.wheel = wheel
    return client


def test_project_urls_normalised_as_pep_753_says():
    found = project_info.project_urls({
        "home_page": "https://h.example",
        "project_urls": ["Source Code, https://s.example", "Bug-Tracker, https://i.example",
                         "What's New, https://c.example", "Sponsor, https://f.example",
                         "homepage, https://other.example", "Chat, https://chat.example"],
        "download_url": "https://d.example/x.tgz",
    })
    assert [(label, known) for label, known, _url in found] == [
        ("Homepage", "Homepage"), ("Source", "Source"), ("Issues", "Issues"),
        ("Changelog", "Changelog"), ("Funding", "Funding"), ("Download", "Download"),
        ("Chat", ""),
    ]
    assert found[0][2] == "https://h.example"  # the first of two homepages wins
    assert project_info.normalize_label("Bug - Tracker!") == "bugtracker"


def test_requirements_grouped_by_extra_with_markers():
    groups = project_info.requirement_groups({"requires_dist": SPEC.requires_dist})
    assert groups[""] == [("requests", ">=2.31", ""),
                          ("tomli", ">=1", 'python_version < "3.11"')]
    assert groups["cli"] == [("rich[jupyter]", ">=13", 'extra == "cli"')]


def test_project_page_sidebar_install_history_and_hashes(page):
    html = Browser(page).get("/alice/dev/rich-pkg").text
    text = text_of(html)
    aside = html[html.index('<aside class="sidebar"'):]
    for label, url in (("Homepage", "https://home.example/"),
                       ("Source", "https://git.example/rich-pkg"),
                       ("Issues", "https://git.example/rich-pkg/issues"),
                       ("Changelog", "https://git.example/rich-pkg/CHANGES"),
                       ("Funding", "https://fund.example/rich-pkg")):
        assert f'<a href="{url}" rel="nofollow noopener noreferrer">{label}</a>' in aside
    assert 'href="javascript:' not in html
    assert "License MIT" in text_of(aside)
    assert "<strong>Development Status</strong>" in aside
    assert "extra [cli]" in aside
    assert "<code>rich[jupyter]</code> <code>&gt;=13</code>" in aside
    assert "Python <code>&gt;=3.10</code>" in aside
    # install commands point at this index's simple URL; the latest non-yanked release
    assert "pip install --index-url http://localhost/alice/dev/+simple/ rich-pkg" in text
    assert "uv pip install --index-url http://localhost/alice/dev/+simple/ rich-pkg" in text
    assert 'class="badge version" title="latest release">3.0<' in html
    # release history with the yank reason, the latest release's rendered description
    assert "Release history (2)" in text
    assert "yanked: wrong wheel" in text
    assert '<h1 id="user-content-rich">Rich' in html
    # the whole digest, ready to copy, and the latest files' tox results
    digest = page.wheel.sha256
    assert f'<code title="sha256 {digest}" class="hash copy">sha256:{digest}</code>' in html
    assert re.search(r'<span class="badge passed">1 passed</span>', html)


def test_version_page_has_the_same_answers_for_its_version(page):
    html = Browser(page).get("/alice/dev/rich-pkg/3.1").text
    assert "pip install --index-url http://localhost/alice/dev/+simple/ rich-pkg==3.1" in \
        text_of(html)
    assert 'class="banner"' in html
    assert "yanked: wrong wheel" in html
    html = Browser(page).get("/alice/dev/rich-pkg/3.0").text
    assert '<aside class="sidebar"' in html
    assert "https://git.example/rich-pkg/issues" in html
