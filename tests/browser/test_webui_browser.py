"""The web UI in a real Chromium: from the front page to a download, descriptions in every
format (hostile ones inert), no console errors, no CSP violations, and without JavaScript.

Screenshots go to a temporary directory; with ``DEVPI_CORE_SCREENSHOTS=1`` (``make
screenshots``) to ``docs/_static/screenshots/``, which ``docs/webui.rst`` shows. The pages hold
upload times, so writing them on every run would change committed files each time.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "_static" / "screenshots"
MAX_SHOT = 150 * 1024
INDEX = "alice/dev"  # made by the site fixture (conftest.py)


def _shots(tmp_path: Path) -> Path:
    return DOCS_SHOTS if os.environ.get("DEVPI_CORE_SCREENSHOTS") == "1" else tmp_path


def _link(page, name):
    return page.get_by_role("link", name=name, exact=True).first


def test_front_page_to_a_file_download(site, browser_page):
    page = browser_page.page
    page.goto(f"{site.url}/")
    browser_page.assert_clean()
    _link(page, INDEX).click()
    page.wait_for_url(f"{site.url}/{INDEX}")
    _link(page, "tabular").click()
    page.wait_for_url(f"{site.url}/{INDEX}/tabular")
    browser_page.assert_clean()
    assert page.locator(".readme table").count() == 1  # the latest release's description
    assert page.locator("aside.sidebar a", has_text="Source").get_attribute("href") == \
        "https://src.example/tabular"
    _link(page, "1.0").click()
    page.wait_for_url(f"{site.url}/{INDEX}/tabular/1.0")
    browser_page.assert_clean()
    filename = "tabular-1.0-py3-none-any.whl"
    with page.expect_download() as download:
        _link(page, filename).click()
    got = Path(download.value.path()).read_bytes()
    assert got == site.files[filename]
    browser_page.assert_clean()


CHECKS = (
    ("tabular", "1.0", ".readme table td code"),
    ("tabular", "1.0", ".readme pre span.k"),  # highlighted, coloured by the stylesheet
    ("restructured", "2.0", ".readme em"),
    ("plain-text", "0.1", ".readme br"),
)


def test_descriptions_render_without_errors(site, browser_page):
    page = browser_page.page
    for name, version, check in CHECKS:
        page.goto(f"{site.url}/{INDEX}/{name}/{version}")
        assert page.locator(check).count() >= 1, (name, check)
        browser_page.assert_clean()
    page.goto(f"{site.url}/{INDEX}/tabular/1.0")
    keyword = page.locator(".readme pre span.k").first.evaluate("e => getComputedStyle(e).color")
    assert keyword != page.evaluate("getComputedStyle(document.body).color")


def test_hostile_description_is_inert(site, browser_page):
    page = browser_page.page
    page.goto(f"{site.url}/{INDEX}/hostile/6.6.6")
    readme = page.locator(".readme")
    assert readme.count() == 1
    for text in ("click me", "or me"):
        readme.get_by_text(text).click()  # no href left: clicking runs nothing
    assert page.evaluate("window.__pwned === undefined")
    assert page.locator("script, iframe, [onerror], [onclick], [style]").count() == 0
    assert readme.locator("a[href^='javascript']").count() == 0
    assert page.url == f"{site.url}/{INDEX}/hostile/6.6.6"
    # a <script> that slipped through would be blocked and reported here
    browser_page.assert_clean()


def test_pages_work_without_javascript(site, noscript_page, tmp_path):
    page = noscript_page.page
    shots = _shots(tmp_path)
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(f"{site.url}/")
    _link(page, INDEX).click()
    page.wait_for_url(f"{site.url}/{INDEX}")
    assert page.locator("main li a, main td a").filter(has_text="restructured").count() >= 1
    page.screenshot(path=str(shots / "index.png"))
    page.locator("header input[type=search]").fill("tabular")
    page.locator("header button[type=submit]").click()
    page.wait_for_url("**/+search?q=tabular")
    _link(page, "tabular").click()
    page.wait_for_url(f"{site.url}/{INDEX}/tabular")
    assert page.locator(".readme table").count() == 1
    page.screenshot(path=str(shots / "project.png"))
    page.goto(f"{site.url}/{INDEX}/restructured/2.0")
    page.screenshot(path=str(shots / "version.png"))
    assert noscript_page.errors == []
    for name in ("index.png", "project.png", "version.png"):
        size = (shots / name).stat().st_size
        assert 0 < size < MAX_SHOT, (name, size)


def test_search_by_a_word_of_a_summary(site, browser_page):
    page = browser_page.page
    page.goto(f"{site.url}/")
    page.locator("header input[type=search]").fill("Tables")  # from "renders tables and code"
    page.locator("header button[type=submit]").click()
    page.wait_for_url("**/+search?q=Tables")
    browser_page.assert_clean()
    hits = page.locator("ol.results li")
    assert hits.count() == 1
    assert hits.first.locator("p.summary mark").inner_text() == "tables"
    hits.first.locator("a.name").click()
    page.wait_for_url(f"{site.url}/{INDEX}/tabular")
    browser_page.assert_clean()
