"""The typed one-pass read of plain PEP 691 pages gives exactly the files the general path
gives, and anything unusual goes the general way."""

from __future__ import annotations

import json
import random

import pytest

from devpi_core_mirror import pages
from devpi_core_mirror.pages import RelativeLinks, _Belongs, parse_json
from devpi_core_mirror.typed_page import _DECODER, _read_columns, read_plain_page

BASE = "https://index.example/simple/foo-bar/"
SHA = "0123456789abcdef" * 4


def page(*files, version="1.1"):
    return json.dumps(
        {"meta": {"api-version": version}, "name": "foo-bar", "files": list(files),
         "versions": ["1.0"], "project-status": {"status": "active"}}
    ).encode()


def typed(body):
    return read_plain_page(body, _Belongs("foo-bar"), RelativeLinks(BASE))


def general(body, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setattr(pages, "read_plain_page", lambda *args: None)
        return parse_json(body, BASE, "foo-bar")


def entry(filename="foo_bar-1.0-py3-none-any.whl", **fields):
    made = {"filename": filename, "url": f"https://files.example/p/{filename}",
            "hashes": {"sha256": SHA}}
    made.update(fields)
    return made


PLAIN = [
    entry(),
    entry("foo-bar-1.0.tar.gz", **{"requires-python": ">=3.8", "size": 0}),
    entry("foo_bar-1.1-py3-none-any.whl", **{"core-metadata": {"sha256": SHA}}),
    entry("foo_bar-1.2-py3-none-any.whl", **{"core-metadata": True, "yanked": ""}),
    entry("foo_bar-1.3-py3-none-any.whl", **{"dist-info-metadata": {"sha256": SHA}}),
    entry("foo_bar-1.4-py3-none-any.whl",
          **{"core-metadata": None, "dist-info-metadata": {"sha256": SHA}}),
    entry("foo_bar-1.5-py3-none-any.whl", **{"core-metadata": False, "yanked": True}),
    entry("foo-bar-1.6.zip", **{"requires-python": "", "yanked": "broken",
                                "upload-time": "2024-01-01T00:00:00Z", "size": 12}),
    entry("foo-bar-1.7.win32.exe", provenance="https://files.example/p/x.provenance"),
    entry("foo-bar-1.0.tar.gz", url="https://files.example/second/foo-bar-1.0.tar.gz"),
    entry("foo-barbaz-1.0.tar.gz"),  # another project's file
    entry("foo_bar-1.8-py3-none-any.whl", url="../../files/foo_bar-1.8-py3-none-any.whl"),
    entry("FOO.BAR-1.9.tar.gz", url="http://files.example:8080/FOO.BAR-1.9.tar.gz"),
]


def test_a_plain_page_is_read_in_one_pass_with_the_general_files(monkeypatch):
    body = page(*PLAIN)
    files = typed(body)
    assert files is not None
    assert files == general(body, monkeypatch)
    names = [f.filename for f in files]
    assert "foo-barbaz-1.0.tar.gz" not in names
    assert names.count("foo-bar-1.0.tar.gz") == 1  # the first of two links wins
    assert files[names.index("foo_bar-1.3-py3-none-any.whl")].core_metadata == {"sha256": SHA}
    assert files[names.index("foo_bar-1.4-py3-none-any.whl")].core_metadata is None
    assert files[names.index("foo-bar-1.6.zip")].requires_python is None
    joined = files[names.index("foo_bar-1.8-py3-none-any.whl")].url
    assert joined == "https://index.example/files/foo_bar-1.8-py3-none-any.whl"


# one origin, unique names: the column-wise read (the others above need the per-entry one)
ONE_ORIGIN = [
    e for e in PLAIN
    if e["url"].startswith("https://files.example/p/") and e["filename"] != "foo-bar-1.0.tar.gz"
]


def test_a_page_of_one_origin_and_unique_names_is_read_by_columns(monkeypatch):
    body = page(*ONE_ORIGIN)
    by_columns = _read_columns(_DECODER.decode(body).files, _Belongs("foo-bar"))
    assert by_columns is not None
    assert by_columns == typed(body) == general(body, monkeypatch)
    assert len(by_columns) == len(ONE_ORIGIN) - 1  # foo-barbaz is another project's
    # the per-entry read is left for pages the columns do not fit
    assert _read_columns(_DECODER.decode(page(*PLAIN)).files, _Belongs("foo-bar")) is None


ODD = [
    entry(hashes={"md5": "0" * 32}),
    entry(hashes={"sha256": SHA, "md5": "0" * 32}),
    entry(hashes={"sha256": SHA.upper()}),
    entry(hashes={}),
    entry(url="https://user:secret@files.example/p/foo_bar-1.0-py3-none-any.whl"),
    entry(url="https://files.example/p/foo_bar-1.0-py3-none-any.whl#sha256=" + SHA),
    entry(url="https://files.example/p/foo bar-1.0-py3-none-any.whl"),
    entry(url="https://files.example/p/föo_bar-1.0-py3-none-any.whl"),
    entry(url="ftp://files.example/p/foo_bar-1.0-py3-none-any.whl"),
    entry(url="//files.example/p/foo_bar-1.0-py3-none-any.whl"),
    entry(size=-1),
    entry(size=True),
    entry(yanked=1),
    entry(**{"requires-python": 3}),
    entry(**{"upload-time": 17}),
    entry(**{"core-metadata": {"sha256": "xyz"}}),
    entry(**{"core-metadata": {"md5": "0" * 32}}),
    "not an object",
    {"url": "https://files.example/p/x.whl", "hashes": {"sha256": SHA}},
]


@pytest.mark.parametrize("others", [PLAIN, ONE_ORIGIN], ids=["entries", "columns"])
@pytest.mark.parametrize("odd", ODD, ids=range(len(ODD)))
def test_an_odd_entry_sends_the_page_the_general_way(odd, others, monkeypatch):
    body = page(*others, odd)
    assert typed(body) is None
    assert parse_json(body, BASE, "foo-bar") == general(body, monkeypatch)


def test_another_api_version_goes_the_general_way():
    assert typed(page(*PLAIN, version="2.0")) is None
    with pytest.raises(pages.MalformedPage):
        parse_json(page(*PLAIN, version="2.0"), BASE, "foo-bar")


def test_random_pages_read_the_same_both_ways(monkeypatch):
    rng = random.Random(691)
    for _round in range(200):
        pool = rng.choice([PLAIN, ONE_ORIGIN])
        chosen = rng.sample(pool, rng.randint(0, len(pool)))
        if rng.random() < 0.3:
            chosen.insert(rng.randint(0, len(chosen)), rng.choice(ODD))
        body = page(*chosen)
        expected = general(body, monkeypatch)
        assert parse_json(body, BASE, "foo-bar") == expected
        fast = typed(body)
        assert fast is None or fast == expected
