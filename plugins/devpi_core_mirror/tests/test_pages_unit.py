"""Parsing upstream pages and project lists (pure functions)."""

from __future__ import annotations

import json
import random
from urllib.parse import urljoin

import pytest

from devpi_core.records import UpstreamFile
from devpi_core_mirror import layout
from devpi_core_mirror.pages import (
    MalformedPage,
    RelativeLinks,
    clean_url,
    is_archive_of,
    parse_html,
    parse_json,
    scan_names,
    version_of,
)

BASE = "https://index.example/simple/foo-bar/"
SHA = "a" * 64


def json_page(*files, version="1.1"):
    return json.dumps(
        {"meta": {"api-version": version}, "name": "foo-bar", "files": list(files)}
    ).encode()


def test_json_fields_and_relative_urls():
    body = json_page(
        {
            "filename": "foo_bar-1.0-py3-none-any.whl",
            "url": "../../files/foo_bar-1.0-py3-none-any.whl",
            "hashes": {"sha256": SHA.upper(), "md5": "nothex"},
            "requires-python": ">=3.8",
            "yanked": "bad build",
            "core-metadata": {"sha256": "b" * 64},
            "size": 10,
            "upload-time": "2024-01-01T00:00:00Z",
        }
    )
    (f,) = parse_json(body, BASE, "foo-bar")
    assert f == UpstreamFile(
        "foo_bar-1.0-py3-none-any.whl",
        "https://index.example/files/foo_bar-1.0-py3-none-any.whl",
        {"sha256": SHA},
        ">=3.8",
        "bad build",
        {"sha256": "b" * 64},
        10,
        "2024-01-01T00:00:00Z",
    )


def test_json_lenient_per_entry():
    body = json_page(
        "not a dict",
        {"filename": 3, "url": "x"},
        {
            "filename": "foo-bar-1.0.tar.gz",
            "url": "https://u:p@files.example/foo-bar-1.0.tar.gz",
            "hashes": [],
            "yanked": False,
            "dist-info-metadata": True,
            "size": True,
        },
        {"filename": "other-1.0.tar.gz", "url": "https://files.example/other-1.0.tar.gz"},
    )
    (f,) = parse_json(body, BASE, "foo-bar")
    assert f.url == "https://files.example/foo-bar-1.0.tar.gz"  # credentials stripped
    assert f.hashes == {}
    assert f.core_metadata is None
    assert f.size is None
    assert f.yanked is False


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"files": {}}', json_page(version="2.0"), b"\xff"])
def test_json_malformed(body):
    with pytest.raises(MalformedPage):
        parse_json(body, BASE, "foo-bar")


def test_json_prefers_the_link_with_a_hash():
    entry = {"filename": "foo-bar-1.0.tar.gz", "url": "https://f.example/foo-bar-1.0.tar.gz"}
    (f,) = parse_json(json_page(entry, {**entry, "hashes": {"sha256": SHA}}), BASE, "foo-bar")
    assert f.hashes == {"sha256": SHA}


def test_html_attributes_base_and_fragments():
    body = f"""<html><head><base href="https://cdn.example/pkgs/"></head><body>
    <a href="foo_bar-1.0-py3-none-any.whl#sha256={SHA}" data-requires-python="&gt;=3.8"
       data-yanked="" data-dist-info-metadata="sha256={"c" * 64}">foo_bar-1.0-py3-none-any.whl</a>
    <a href="/elsewhere/foo-bar-0.9.tar.gz" data-yanked="old">foo-bar-0.9.tar.gz</a>
    <a href="https://cdn.example/x/other-1.0.tar.gz">other</a>
    <a href="javascript:alert(1)">js</a><a>no href</a>
    <a href="https://cdn.example/x/..%2Ffoo-bar-2.0.tar.gz">escape</a>
    </body></html>""".encode()
    wheel, sdist = parse_html(body, BASE, "foo-bar")
    assert wheel.url == "https://cdn.example/pkgs/foo_bar-1.0-py3-none-any.whl"
    assert wheel.hashes == {"sha256": SHA}
    assert wheel.requires_python == ">=3.8"
    assert wheel.yanked is True
    assert wheel.core_metadata == {"sha256": "c" * 64}
    assert sdist.url == "https://cdn.example/elsewhere/foo-bar-0.9.tar.gz"
    assert sdist.yanked == "old"
    assert sdist.hashes == {}


def test_html_garbage_is_no_links():
    assert parse_html(b'<html><body><a href="x"><<<</', BASE, "foo-bar") == ()


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("foo_bar-1.0-py3-none-any.whl", True),
        ("Foo.Bar-1.0.tar.gz", True),
        ("foo-bar-baz-1.0.tar.gz", False),
        ("foo-1.0.tar.gz", False),
        ("foo_bar-1.0.txt", False),
        (".foo-bar-1.0.tar.gz", False),
        ("foo-bar-1.0\n.tar.gz", False),
        ("a/foo-bar-1.0.tar.gz", False),
    ],
)
def test_is_archive_of(filename, expected):
    assert is_archive_of(filename, "foo-bar") is expected


@pytest.mark.parametrize(
    ("filename", "version"),
    [
        ("foo_bar-1.0-py3-none-any.whl", "1.0"),
        ("foo-bar-2.0rc1.tar.gz", "2.0rc1"),
        ("foo_bar-1.0.zip", "1.0"),
        ("foo-bar.txt", None),
    ],
)
def test_version_of(filename, version):
    assert version_of(filename, "foo-bar") == version


@pytest.mark.parametrize(
    ("url", "cleaned"),
    [
        ("https://h.example/a/b.whl", "https://h.example/a/b.whl"),
        ("https://u:p@h.example:8443/a#frag", "https://h.example:8443/a"),
        ("ftp://h.example/a", None),
        ("https:///nohost", None),
        ("http://[::1]:80/x", "http://[::1]:80/x"),
    ],
)
def test_clean_url(url, cleaned):
    assert clean_url(url) == cleaned


def chunked(data: bytes, size: int):
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_scan_names_across_chunk_boundaries(size):
    listing = (
        b'{"meta": {"api-version": "1.1"}, "projects": [{"name": "Foo.Bar", "_last-serial": 1}, '
        b'{"name": "q\\u00e9\\"x"}, {"name": "zope_interface"}]}'
    )
    assert list(scan_names(chunked(listing, size), is_json=True)) == [
        "foo-bar",
        "q-x",
        "zope-interface",
    ]
    html = (
        b'<html><body><a href="/simple/foo-bar/">Foo.Bar</a>\n'
        b'<A HREF="/simple/x/">a&amp;b</a ></body>'
    )
    assert list(scan_names(chunked(html, size), is_json=False)) == ["foo-bar", "a-b"]


def test_relpaths_as_devpi_builds_them():
    hashed = UpstreamFile("p-1.0.tar.gz", "https://h.example/x/y/p-1.0.tar.gz", {"sha256": SHA})
    assert layout.relpath("root/pypi", hashed) == f"root/pypi/+f/aaa/{'a' * 13}/p-1.0.tar.gz"
    bare = UpstreamFile("p-1.0.tar.gz", "https://h.example:81/x y/p-1.0.tar.gz")
    assert layout.relpath("root/pypi", bare) == "root/pypi/+e/https_h.example_81_x_y/p-1.0.tar.gz"


def test_stored_form_round_trips():
    f = UpstreamFile(
        "p-1.0.tar.gz",
        "https://h.example/p-1.0.tar.gz",
        {"sha256": SHA},
        ">=3",
        "why",
        {"sha256": SHA},
        3,
        "2024-01-01T00:00:00Z",
    )
    stored = json.loads(json.dumps(layout.page_record([f])))
    assert layout.page_files(stored) == [f]
    assert layout.page_files(None) == []


def test_a_plain_text_answer_is_not_an_empty_project_page():
    with pytest.raises(MalformedPage):
        parse_html(b"Service temporarily unavailable, please retry", BASE, "foo-bar")
    with pytest.raises(MalformedPage):
        parse_html(bytes(range(1, 60)), BASE, "foo-bar")
    # an empty page that is HTML stays an empty page (all files deleted upstream)
    assert parse_html(b"<!DOCTYPE html><html><body></body></html>", BASE, "foo-bar") == ()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"  \r\n",
        b"<!DOCTYPE html><title>Links for foo-bar</title><h1>Links for foo-bar</h1>",
        b"<h1>no files</h1>",
    ],
)
def test_an_empty_page_or_one_without_links_is_a_project_without_releases(body):
    """devpi-server lists no releases for these (it used to be a 502 here)."""
    assert parse_html(body, BASE, "foo-bar") == ()


def test_link_hashes_as_devpi_keeps_them():
    body = (
        b'<a href="/f/foo-bar-1%212017.4%2Bdevpi.zip#sha256=1234">x</a>'
        b'<a href="/f/foo_bar-1.0.tar.gz#md5=' + b"c" * 32 + b'">x</a>'
        b'<a href="/f/foo_bar-2.0.tar.gz#sha256=12%0a">x</a>'
        b'<a href="/f/foo_bar-3.0.tar.gz#sha256=' + b"d" * 65 + b'">x</a>'
        b'<a href="/f/foo_bar-4.0.tar.gz#nohash=abc">x</a>'
    )
    short, md5, bad_char, too_long, unknown = parse_html(body, BASE, "foo-bar")
    assert short.filename == "foo-bar-1!2017.4+devpi.zip"
    assert short.hashes == {"sha256": "1234"}
    assert layout.relpath("u/m", short) == "u/m/+f/123/4/foo-bar-1!2017.4+devpi.zip"
    assert md5.hashes == {"md5": "c" * 32}
    assert layout.relpath("u/m", md5) == f"u/m/+f/ccc/{'c' * 13}/foo_bar-1.0.tar.gz"
    for f in (bad_char, too_long, unknown):
        assert f.hashes == {}
        assert "/+e/" in layout.relpath("u/m", f)


def test_one_file_is_found_in_the_stored_form_without_the_rest():
    def row(name, **fields):
        return UpstreamFile(name, f"https://h.example/{name}", {"sha256": SHA}, **fields)

    files = [
        row("p-1.0.tar.gz", yanked='tricky ["p-2.0.tar.gz", reason'),
        row('p-2.0"x.tar.gz'),
        row("p-2.0.tar.gz", requires_python=">=3"),
        row("p-2.0-py3-none-any.whl", core_metadata={"sha256": SHA}),
    ]
    stored = json.loads(json.dumps(layout.page_record(files)))
    for f in files:
        assert layout.find_file(stored, f.filename) == f
    assert layout.find_file(stored, "p-3.0.tar.gz") is None
    assert layout.find_file(stored, "p-2.0") is None
    assert layout.find_file(None, "p-1.0.tar.gz") is None


@pytest.mark.parametrize(
    "base",
    [
        BASE,
        "http://127.0.0.1:8000/root/pypi/+simple/foo/",
        "https://h.example/a/b",
        "https://h.example/",
        "https://u:p@h.example:81/a//b/",
        "https://h.example/a/./b/",
        "https://h.example/a/b/?q=1",
        "https://h.example/a;p/b/",
    ],
)
def test_relative_links_resolve_as_urljoin_does(base):
    """The fast join gives urljoin's answer, or None (then urljoin is used)."""
    rng = random.Random(base)
    parts = ["..", ".", "", "a", "b.whl", "x?y", "#f", ";p", "c:d", "%2e", " s", "\\", "é", "..x"]
    links = ["../../files/ab/cd/foo-1.0.tar.gz", "./foo.whl", "foo.whl", "../+f/x/foo.whl", "/abs"]
    links += ["/".join(rng.choices(parts, k=rng.randint(1, 5))) for _ in range(3000)]
    join = RelativeLinks(base)
    fast = 0
    for link in links:
        got = join(link)
        if got is not None:
            fast += 1
            assert got == urljoin(base, link), link
    if base in (BASE, "https://h.example/a/b", "https://h.example/"):
        assert join("./foo-1.0.tar.gz") is not None  # the usual link takes the fast path
        assert fast > 100


def test_a_page_of_relative_links_is_read_without_urljoin_per_link(monkeypatch):
    """A mirror of a mirror (relative links) spent three quarters of a big page's parse in
    urljoin; the usual relative link is now joined with a few string operations."""
    from devpi_core_mirror import pages  # noqa: PLC0415

    calls: list[tuple[str, str]] = []

    def counted(base: str, url: str) -> str:
        calls.append((base, url))
        return urljoin(base, url)

    monkeypatch.setattr(pages, "urljoin", counted)
    entries = [
        {
            "filename": f"foo_bar-0.{i}-py3-none-any.whl",
            "url": f"../../files/{i:016x}/foo_bar-0.{i}-py3-none-any.whl",
            "hashes": {"sha256": SHA},
            "size": 32,
        }
        for i in range(500)
    ]
    relative = json_page(*entries)
    absolute = relative.replace(b'"../../files/', b'"https://index.example/files/')
    files = parse_json(relative, BASE, "foo-bar")
    assert len(files) == 500
    assert files == parse_json(absolute, BASE, "foo-bar")
    assert calls == []
