"""What each page shows: users, indexes, projects, versions, files, docs, tox results, logs."""

from __future__ import annotations

import re

from devpi_core.testing.dists import DistSpec, make_wheel

from .conftest import Browser, text_of


def test_root_lists_users_and_their_indexes(browser):
    page = browser.get("/").text
    text = text_of(page)
    assert 'href="http://localhost/alice"' in page
    assert 'href="http://localhost/alice/dev"' in page
    assert "alice/dev stage Dev <i>index</i> work in progress" in text.replace("yes ", "")
    # alice/prod: a non-volatile stage with alice/dev as its base
    row = re.search(r"<tr><td><a [^>]*>alice/prod</a></td>(.*?)</tr>", page).group(1)
    assert ">alice/dev</a>" in row
    assert "<td>no</td>" in row
    assert "<td>stage</td>" in row


def test_user_page_and_unknown_users(browser):
    page = browser.get("/alice").text
    assert "alice/dev" in page
    assert "alice/prod" in page
    assert "<h1>alice</h1>" in page
    missing = browser.get("/nobody", status=404)
    assert "no user &#x27;nobody&#x27;" in missing.text


def test_index_page_shows_config_usage_and_projects(browser):
    page = browser.get("/alice/prod").text
    text = text_of(page)
    assert "type stage" in text
    assert 'href="http://localhost/alice/dev">alice/dev</a>' in page  # bases link
    assert "volatile no" in text
    assert "pip install --index-url http://localhost/alice/prod/+simple/" in text
    assert "No projects." in text  # inherited projects live on alice/dev
    dev = browser.get("/alice/dev").text
    assert "2 projects" in text_of(dev)
    assert 'href="http://localhost/alice/dev/pkg">pkg</a>' in dev
    assert 'href="http://localhost/alice/dev/other-thing">other-thing</a>' in dev


def test_index_page_filter(browser):
    page = browser.get("/alice/dev?q=OTHER").text
    assert "1 of 2 projects" in text_of(page)
    assert ">other-thing</a>" in page
    assert ">pkg</a>" not in page
    assert 'value="OTHER"' in page
    assert "No projects." in browser.get("/alice/dev?q=zzz").text


def test_project_page_lists_versions_newest_first_with_files(browser, shop):
    page = browser.get("/alice/dev/pkg").text
    assert page.index(">2.0</a>") < page.index(">1.0</a>")
    assert "yanked: broken build" in page
    assert f">{shop.wheel.filename}</a>" in page
    assert f"sha256 {shop.wheel.sha256}" in page  # the full digest in the tooltip
    assert f"#sha256={shop.wheel.sha256}" in page  # download link with its hash
    assert re.search(r"<td>\d+ B</td>", page)  # size
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[^"]+Z"', page)  # upload time
    assert 'href="http://localhost/alice/dev/+simple/pkg/">simple page</a>' in page
    docs = 'href="http://localhost/alice/dev/pkg/1.0/+doc/index.html">documentation (1.0)</a>'
    assert docs in page
    assert "Requires Python <code>&gt;=3.9</code>" in page  # of the newest non-yanked release


def test_project_page_through_bases(browser):
    page = browser.get("/alice/prod/pkg").text
    assert 'on <a href="http://localhost/alice/dev">alice/dev</a>' in page
    assert 'href="http://localhost/alice/prod/pkg/1.0">1.0</a>' in page
    assert "+simple/pkg/" in page
    browser.get("/alice/prod/nothere", status=404)


def test_version_page_metadata_files_docs_tox_and_log(browser, shop):
    page = browser.get("/alice/dev/pkg/1.0").text
    text = text_of(page)
    assert "Requires-Python >=3.9" in text
    assert "requests>=2" in text
    assert "attrs" in text
    assert 'href="http://localhost/alice/dev/pkg/1.0/+doc/index.html">documentation</a>' in page
    assert "<h1>Docs</h1>" in browser.get("/alice/dev/pkg/1.0/+doc/index.html").text
    # tox results: py311 passed, py312 failed, summarised in the files table too
    assert "1 passed" in text
    assert "1 failed" in text
    assert re.search(r"py311</td><td><span class=\"badge passed\">passed</span> 3\.11\.9", page)
    assert re.search(r"py312</td><td><span class=\"badge failed\">failed</span> 3\.12\.4", page)
    assert "buildhost linux" in text
    # the log: alice uploaded the files, the docs and the tox result
    log = page[page.index("<h2>Log</h2>"):]
    assert f"<td>{shop.wheel.filename}</td><td>upload</td><td>alice</td>" in log
    assert "<td>pkg-1.0.doc.zip</td><td>upload</td><td>alice</td>" in log
    assert ".toxresult-" in log
    assert " UTC</time>" in log
    # the raw tox result behind the summary
    raw = re.search(r'href="http://localhost(/alice/dev/\+f/[^"]+\.toxresult-[^"]+)">JSON</a>',
                    page).group(1)
    assert shop.app.get(raw).json["host"] == "buildhost"


def test_version_page_yanked_and_missing(browser):
    page = browser.get("/alice/dev/pkg/2.0").text
    assert 'class="banner"' in page
    assert "yanked: broken build" in page
    browser.get("/alice/dev/pkg/9.9", status=404)


def test_everything_is_escaped(webui_app):
    client = webui_app()
    client.create_and_login("mallory")
    client.create_index("mallory/x", title="<script>alert('t')</script>",
                        description='"><img src=x onerror=alert(1)>')
    spec = DistSpec("evil", "1.0", summary="<script>alert('s')</script>",
                    requires_dist=["<b>bold</b>"])
    client.upload("mallory/x", make_wheel(spec))
    browser = Browser(client)
    for path in ("/", "/mallory", "/mallory/x", "/mallory/x/evil", "/mallory/x/evil/1.0",
                 "/+search?q=evil", "/+search?q=<script>", "/mallory/x?q=<script>"):
        page = browser.get(path).text
        assert "<script>" not in page, path
        assert "<img" not in page, path
        assert "<b>" not in page, path
    escaped = "&lt;script&gt;alert(&#x27;s&#x27;)&lt;/script&gt;"
    assert escaped in browser.get("/mallory/x/evil").text
    assert "&quot;&gt;&lt;img" in browser.get("/mallory/x").text


def test_unsafe_urls_in_metadata_are_not_links(webui_app):
    client = webui_app()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")), home_page="javascript:alert(1)",
                  project_urls="Source, https://example.invalid/src")
    page = Browser(client).get("/alice/dev/pkg/1.0").text
    assert 'href="javascript:' not in page
    assert "javascript:alert(1)" in page
    assert 'href="https://example.invalid/src"' in page


def test_status_page(browser):
    page = browser.get("/+status").text
    text = text_of(page)
    assert re.search(r"Serial \d+", text)
    assert "webui" in text
    assert "devpi_core_webui" in text
    assert "Plugins" in text
    assert "Metrics" in text


def test_stylesheet(browser):
    page = browser.get("/").text
    href = re.search(r'<link rel="stylesheet" href="http://localhost(/\+webui/[^"]+)"',
                     page).group(1)
    css = browser.get(href)
    assert css.content_type == "text/css"
    assert "immutable" in css.headers["Cache-Control"]
    assert "font" in css.text
    etag = css.headers["ETag"]
    assert browser.get(href, status=304, **{"If-None-Match": etag}).body == b""
    stale = browser.get("/+webui/0000/style.css")
    assert stale.headers["Cache-Control"] == "no-cache"
    browser.get("/+webui/0000/other.css", status=404)


def test_a_version_on_two_indexes_merges_files_like_the_simple_page(browser, shop):
    wheel = make_wheel(DistSpec("pkg", "1.0", summary="rebuilt for prod"))
    shop.upload("alice/prod", wheel)
    page = browser.get("/alice/prod/pkg/1.0").text
    text = text_of(page)
    assert "From alice/prod (also on alice/dev)" in text
    assert "rebuilt for prod" in text
    assert f"sha256 {wheel.sha256}" in page  # prod's wheel shadows dev's of the same name
    assert f"sha256 {shop.wheel.sha256}" not in page
    assert "pkg-1.0.tar.gz" in page  # dev's sdist is served too
    simple = shop.simple_filenames("alice/prod", "pkg")
    shown = re.findall(r'">(pkg-[^<]+)</a> ', page)
    assert sorted(simple) == sorted([*shown, "pkg-2.0-py3-none-any.whl"])


def test_outside_url_is_used_for_links(browser):
    page = browser.get("/alice/dev/pkg", **{"X-Outside-Url": "https://pkgs.example/devpi"}).text
    assert 'href="https://pkgs.example/devpi/alice/dev/+simple/pkg/"' in page
    assert 'href="https://pkgs.example/devpi/+webui/' in page
    assert "http://localhost" not in page


def test_a_tox_result_of_another_format_is_reported(browser, shop):
    links = shop.get_json("/alice/dev/pkg/1.0")["result"]["+links"]
    href = next(link["href"] for link in links if link["href"].endswith(".tar.gz"))
    shop.request("POST", href.replace("http://localhost", ""), {"something": "else"}, status=200)
    page = browser.get("/alice/dev/pkg/1.0").text
    assert "<td>pkg-1.0.tar.gz</td><td></td><td>not a tox result</td>" in page
