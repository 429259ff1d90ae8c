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


def _reference_entry(link, url):
    """One file as the per-link renderer wrote it (before the entries became structs)."""
    entry = {"filename": link.filename, "url": url, "hashes": dict(link.hashes)}
    if link.requires_python:
        entry["requires-python"] = link.requires_python
    if link.yanked is not False:
        entry["yanked"] = link.yanked
    if link.core_metadata:
        entry["core-metadata"] = entry["dist-info-metadata"] = dict(link.core_metadata)
    if link.size is not None:
        entry["size"] = link.size
    if link.upload_time:
        entry["upload-time"] = link.upload_time
    return entry


def test_project_json_entries_leave_out_what_is_empty_in_their_order():
    own = "alice/dev/+f/abc/0123456789abc/"
    links = [
        Link("p-1.0.tar.gz", own + "p-1.0.tar.gz", {"sha256": SHA}, version="1.0"),
        Link("p-1.1.tar.gz", own + "p-1.1.tar.gz", {"sha256": SHA}, requires_python="",
             yanked="", core_metadata={}, size=0, upload_time="", version="1.1"),
        Link("p-1.2.tar.gz", own + "p-1.2.tar.gz", {}, requires_python=">=3", yanked=True,
             core_metadata={"sha256": SHA}, size=7, upload_time="2024-01-01T00:00:00Z"),
        Link("p-2.0.zip", "root/pypi/+f/abc/0123456789abc/p-2.0.zip", {"md5": "0" * 32},
             yanked=False, version="2.0"),
        Link("p-2.1.zip", "root/pypi/+e/https_host_dir/p-2.1.zip", version="2.1"),
    ]
    # the page is /alice/dev/+simple/p/: its own files from the index, others from the root
    body = project_json("p", links, "../../../../", "alice/dev")
    page = json.loads(body)
    urls = [
        "../../_f/abc/0123456789abc/p-1.0.tar.gz",
        "../../_f/abc/0123456789abc/p-1.1.tar.gz",
        "../../_f/abc/0123456789abc/p-1.2.tar.gz",
        "../../../../root/pypi/_f/abc/0123456789abc/p-2.0.zip",
        "../../../../root/pypi/_e/https_host_dir/p-2.1.zip",
    ]
    expected = [_reference_entry(link, url) for link, url in zip(links, urls, strict=True)]
    assert page["files"] == expected
    assert [list(entry) for entry in page["files"]][2] == [
        "filename", "url", "hashes", "requires-python", "yanked", "core-metadata",
        "dist-info-metadata", "size", "upload-time",
    ]
    assert page["versions"] == ["1.0", "1.1", "2.0", "2.1"]
    assert json.loads(project_json("p", [], "../../", "alice/dev"))["files"] == []
