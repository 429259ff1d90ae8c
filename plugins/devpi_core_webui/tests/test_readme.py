"""Rendered descriptions: every content type PyPI accepts, sanitised, rendered once, cached."""

from __future__ import annotations

import pytest

from devpi_core import services
from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel
from devpi_core_webui import readme

from .conftest import Browser, text_of

MARKDOWN = """\
# Usage

| option | meaning |
|--------|---------|
| `-v`   | verbose |

```python
def hello():
    return 1
```
"""
RST = """\
Title
=====

Some *emphasis* and a `link <https://example.org/>`_.

.. code:: python

    import os
"""
HOSTILE_MD = """\
<script>alert('md')</script>
[click](javascript:alert(1))
<a href="javascript:alert(2)" onclick="alert(3)">x</a>
<img src="https://tracker.invalid/x.png" onerror="alert(4)" alt="badge">
<div style="color:red">styled</div>
"""
HOSTILE_RST = """\
Hi

.. raw:: html

    <script>alert('rst')</script>

`bad <javascript:alert(5)>`_
"""


@pytest.fixture
def app(webui_app):
    client = webui_app()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    return client


def _upload(client, name, description, ctype=None, *, sdist=False):
    fields = {"description": description}
    if ctype is not None:
        fields["description_content_type"] = ctype
    spec = DistSpec(name, "1.0")
    client.upload("alice/dev", make_wheel(spec), **fields)
    if sdist:
        client.upload("alice/dev", make_sdist(spec), **fields)
    return Browser(client).get(f"/alice/dev/{name}/1.0").text


def test_gfm_markdown_has_tables_and_highlighted_code(app):
    page = _upload(app, "md", MARKDOWN, "text/markdown; charset=UTF-8; variant=GFM")
    assert '<div class="readme">' in page
    assert "<table>" in page
    assert "<th>option</th>" in page
    assert '<span class="k">def</span>' in page  # Pygments classes, coloured by style.css
    assert 'style="' not in page  # the CSP allows no inline style
    assert "```" not in page


def test_restructuredtext_is_the_default_type(app):
    page = _upload(app, "rst", RST)
    assert "<em>emphasis</em>" in page
    assert 'href="https://example.org/" rel="nofollow"' in page
    assert '<span class="kn">import</span>' in page


def test_commonmark_and_plain_text(app):
    page = _upload(app, "cm", "a *b*", "text/markdown; variant=CommonMark")
    assert "<p>a <em>b</em></p>" in page
    page = _upload(app, "plain", "line <one>\nline *two*", "text/plain")
    assert "line &lt;one&gt;<br>line *two*" in page


@pytest.mark.parametrize(("name", "text", "ctype"), [
    ("hostile-md", HOSTILE_MD, "text/markdown"),
    ("hostile-rst", HOSTILE_RST, "text/x-rst"),
])
def test_hostile_descriptions_come_out_inert(app, name, text, ctype):
    page = _upload(app, name, text, ctype)
    section = page[page.index('<div class="readme">'):]
    for bad in ("<script", '="javascript:', " onclick=", " onerror=", " style=", " src="):
        assert bad not in section, bad


def test_unrenderable_description_is_plain_text_with_a_note(app):
    page = _upload(app, "broken", "Title\n===\n\n`unterminated")
    assert "could not be rendered" in page
    assert "`unterminated" in text_of(page)
    page = _upload(app, "html", "<b>x</b>", "text/html")
    assert "Unsupported description type &#x27;text/html&#x27;" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


def test_rendered_once_at_upload_and_stored_by_content_hash(app):
    registry = app.app.app.registry
    readmes = services.lookup(registry, readme.Readmes)
    before = readmes.rendered
    spec = DistSpec("once", "1.0")
    fields = {"description": MARKDOWN, "description_content_type": "text/markdown"}
    app.upload("alice/dev", make_wheel(spec), **fields)
    app.upload("alice/dev", make_sdist(spec), **fields)
    key = readme.KEY_PREFIX + readme.cache_key(MARKDOWN, "text/markdown")
    with services.metadata_store(registry).read() as tx:
        stored = tx.get(key)
    assert "<table>" in stored["html"]  # rendered at upload, before anyone looked
    Browser(app).get("/alice/dev/once/1.0")
    Browser(app).get("/alice/dev/once")
    assert readmes.rendered == before + 1  # two files, two page views: one rendering


def test_parse_content_type():
    assert readme.parse_content_type(None) == ("text/x-rst", "")
    assert readme.parse_content_type("text/markdown; charset=UTF-8; variant=GFM") == (
        "text/markdown", "GFM")
    assert readme.parse_content_type("Text/Plain") == ("text/plain", "")


def test_unknown_markdown_variant_and_too_long():
    assert "Unknown Markdown variant" in readme.render("x", "text/markdown; variant=foo").note
    long = readme.render("x" * (readme.MAX_CHARS + 1), "text/x-rst")
    assert "too long" in long.note
    assert long.html.startswith("x")
