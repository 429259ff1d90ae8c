"""PEP 691 JSON through the compiled encoder and decoder (msgspec): the same documents as the
standard library's, text as UTF-8, read-only mappings encoded, bad bodies refused."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest
from devpi_core_mirror.pages import MalformedPage, parse_json

from devpi_core.records import Link
from devpi_core.simple_render import list_json, project_json

SHA = "ab" * 32


def test_project_json_is_utf8_and_encodes_read_only_hashes():
    links = [
        Link("héllo-1.0.tar.gz", "alice/dev/+f/abc/héllo-1.0.tar.gz",
             MappingProxyType({"sha256": SHA}), requires_python=">=3.8", yanked="brøken",
             core_metadata=MappingProxyType({"sha256": SHA}), size=3, version="1.0"),
    ]
    body = project_json("héllo", links, "../../", "alice/dev")
    assert "héllo".encode() in body  # UTF-8 as is
    assert b"\\u" not in body  # no escapes
    page = json.loads(body)
    (entry,) = page["files"]
    assert entry["hashes"] == entry["core-metadata"] == {"sha256": SHA}
    assert (entry["yanked"], entry["requires-python"], entry["size"]) == ("brøken", ">=3.8", 3)
    assert page["versions"] == ["1.0"]
    assert page["meta"] == {"api-version": "1.4"}  # PEP 792's project-status
    assert page["project-status"] == {"status": "active"}


def test_list_json_is_one_document_across_chunks():
    names = [f"p{i}" for i in range(4500)] + ['quo"te']
    assert json.loads(b"".join(list_json(names)))["projects"][-1] == {"name": 'quo"te'}


@pytest.mark.parametrize("body", [b"{", b'{"files": [}', b"\xff\xfe", b"NaN"])
def test_parse_json_refuses_bad_bodies(body):
    with pytest.raises(MalformedPage):
        parse_json(body, "http://up.invalid/simple/x/", "x")


def test_parse_json_reads_what_the_stdlib_reads():
    page = {"meta": {"api-version": "1.1"}, "name": "x", "files": [
        {"filename": "x-1.0.tar.gz", "url": "http://up.invalid/x-1.0.tar.gz",
         "hashes": {"sha256": SHA}, "size": 2**40, "yanked": "é"}]}
    (found,) = parse_json(json.dumps(page).encode(), "http://up.invalid/simple/x/", "x")
    assert (found.filename, found.size, found.yanked) == ("x-1.0.tar.gz", 2**40, "é")
