"""``/+search``: names and words of summaries, keywords and descriptions, ranked and paged."""

from __future__ import annotations

import re

import pytest

from devpi_core.testing.dists import DistSpec, make_wheel

from .conftest import Browser


def names_found(page: str) -> list[str]:
    """The project links of a result page, in order (marks removed)."""
    return re.findall(r'<a href="http://localhost/[^/"]+/[^/"]+/([^/"]+)" class="name">', page)


@pytest.fixture
def catalog(webui_app):
    """alice/dev with projects whose names and texts tell the tiers apart, as alice."""
    client = webui_app()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    for name, summary, fields in (
        ("pkg", "the package", {}),
        ("pkg-extra", "more of it", {}),
        ("xpkg", "an unrelated name", {}),
        ("turtle", "draws pkg diagrams with turtles", {"keywords": "graphics,logo"}),
        ("lettuce", "leaves", {"description": "A salad bowl.\n\nWorks with turtles and snails."}),
    ):
        # twine sends the metadata as form fields too
        client.upload("alice/dev", make_wheel(DistSpec(name, "1.0", summary=summary)),
                      summary=summary, **fields)
    return client


def test_word_from_a_summary_finds_the_project_highlighted(catalog):
    page = Browser(catalog).get("/+search?q=diagrams").text
    assert names_found(page) == ["turtle"]
    assert "draws pkg <mark>diagrams</mark> with turtles" in page
    assert '<span class="version">1.0</span>' in page
    assert 'href="http://localhost/alice/dev" class="index">alice/dev</a>' in page


def test_keywords_and_description_words_are_searched(catalog):
    browser = Browser(catalog)
    assert names_found(browser.get("/+search?q=graphics").text) == ["turtle"]
    page = browser.get("/+search?q=snails").text
    assert names_found(page) == ["lettuce"]
    snippet = "A salad bowl. Works with turtles and <mark>snails</mark>."
    assert f'<p class="snippet">{snippet}</p>' in page
    # every word must match, each as the start of a word
    assert names_found(browser.get("/+search?q=turt").text) == ["turtle", "lettuce"]
    assert names_found(browser.get("/+search?q=turtles+salad").text) == ["lettuce"]


def test_names_rank_first_exact_prefix_substring_then_words(catalog):
    page = Browser(catalog).get("/+search?q=pkg").text
    assert names_found(page) == ["pkg", "pkg-extra", "xpkg", "turtle"]
    assert re.search(r'<p class="exact">Exact name: <a href="http://localhost/alice/dev/pkg">'
                     r"pkg on alice/dev</a></p>", page)
    assert "4 projects found" in page
    # names are compared PEP 503-normalised
    assert names_found(Browser(catalog).get("/+search?q=PKG_Extra").text)[0] == "pkg-extra"


def test_search_follows_every_write(catalog):
    browser = Browser(catalog)
    catalog.upload("alice/dev", make_wheel(DistSpec("pkg", "2.0", summary="now with rockets")))
    assert names_found(browser.get("/+search?q=rockets").text) == ["pkg"]
    catalog.request("PATCH", "/alice/dev/pkg/2.0", {"yanked": "oops"}, status=200)
    assert names_found(browser.get("/+search?q=rockets").text) == []  # 1.0 is newest again
    catalog.request("DELETE", "/alice/dev/turtle", status=200)
    assert names_found(browser.get("/+search?q=diagrams").text) == []
    catalog.request("DELETE", "/alice/dev", status=201)
    assert "No project matches" in browser.get("/+search?q=snails").text


def test_paging(webui_app):
    client = webui_app()
    client.create_and_login("alice")
    client.create_index("alice/many")
    for n in range(45):
        client.upload("alice/many", make_wheel(DistSpec(f"many{n:02d}", "1.0")))
    browser = Browser(client)
    first = browser.get("/+search?q=many").text
    assert names_found(first) == [f"many{n:02d}" for n in range(20)]
    assert "45 projects found" in first
    assert "page 1 of 3" in first
    assert 'href="http://localhost/+search?q=many&amp;page=2" rel="next"' in first
    last = browser.get("/+search?q=many&page=3").text
    assert names_found(last) == [f"many{n:02d}" for n in range(40, 45)]
    assert 'rel="prev"' in last
    assert 'rel="next"' not in last
    assert names_found(browser.get("/+search?q=many&page=x").text)[0] == "many00"


def test_hostile_metadata_stays_text(webui_app):
    client = webui_app()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    summary = "evil <script>alert(1)</script> \x02<img src=x>\x03 payload"
    client.upload("alice/dev", make_wheel(DistSpec("evil", "1.0", summary=summary)))
    page = Browser(client).get("/+search?q=payload").text
    assert "<script>alert" not in page
    assert "<img src=x>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<mark>") == 1  # only the matched word: the markers in the data are gone
    assert "<mark>payload</mark>" in page


def test_empty_and_unmatched_queries(catalog):
    browser = Browser(catalog)
    assert "Type a project name or words" in browser.get("/+search").text
    assert "No project matches" in browser.get("/+search?q=nothing-like-it").text
    assert 'value="pkg"' in browser.get("/+search?q=pkg").text  # the query stays in the box
    browser.get("/+search?q=" + "%22" * 300)  # query syntax is never interpreted: no error


@pytest.mark.parametrize("plugins_needed", [("webui", "stages", "mirror", "fsstore", "passwd",
                                             "policy")])
def test_hits_never_name_a_held_or_quarantined_version(webui_app):
    client = webui_app()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    for version in ("1.0", "2.0"):
        client.upload("alice/dev", make_wheel(DistSpec("pkg", version, summary="the package")))
    browser = Browser(client)

    def version_shown() -> list[str]:
        page = browser.get("/+search?q=pkg").text
        assert names_found(page) == ["pkg"]  # listed in every case, as counted
        return re.findall(r'<span class="version">([^<]*)</span>', page)

    assert version_shown() == ["2.0"]
    client.modify_index("alice/dev", ["deny+=pkg==2.0"])
    assert version_shown() == ["1.0"]  # the newest served, not the stored document's
    client.modify_index("alice/dev", ["deny+=pkg"])
    assert version_shown() == []
    client.modify_index("alice/dev", {"deny": []})
    assert version_shown() == ["2.0"]
    client.request("PATCH", "/alice/dev/pkg", {"project-status": "quarantined"}, status=200)
    assert version_shown() == []
