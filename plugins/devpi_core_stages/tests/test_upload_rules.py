"""Upload form rules: metadata from forms and archives, digests, filenames (no server)."""

from __future__ import annotations

import hashlib
import io
from types import SimpleNamespace

import pytest
from webob.multidict import MultiDict

from devpi_core.blobs import BlobIngest
from devpi_core.errors import BadRequest
from devpi_core.testing.memstore import MemoryBlobStore
from devpi_core_stages import upload


def form(*pairs: tuple[str, object]) -> MultiDict:
    return MultiDict(list(pairs))


def test_form_metadata_defaults_lists_and_unknown():
    data = upload.form_metadata(
        form(
            ("name", "x"),
            ("version", "1"),
            ("summary", "UNKNOWN"),
            ("classifiers", "A"),
            ("classifiers", "UNKNOWN"),
            ("classifiers", "B"),
            ("pyversion", "py3"),
        )
    )
    assert data["summary"] == ""
    assert data["classifiers"] == ["A", "B"]
    assert data["requires_dist"] == []
    assert data["license"] == ""
    assert "pyversion" not in data
    assert set(data) == set(upload.METADATA_KEYS)


def test_form_metadata_only_given():
    data = upload.form_metadata(form(("name", "x"), ("summary", "s")), only_given=True)
    assert data == {"name": "x", "summary": "s"}


def test_fill_from_archive_keeps_what_the_form_says():
    metadata = upload.form_metadata(form(("name", "x"), ("version", "1"), ("summary", "from form")))
    raw = b"Name: other\nVersion: 9\nSummary: from archive\nLicense: MIT\nClassifier: C\n"
    filled = upload.fill_from_archive(metadata, raw)
    assert filled["summary"] == "from form"
    assert filled["license"] == "MIT"
    assert filled["classifiers"] == ["C"]
    assert filled["name"] == "x"
    assert filled["version"] == "1"
    assert upload.fill_from_archive({"a": 1}, None) == {"a": 1}


@pytest.mark.parametrize(
    ("filename", "name", "version"),
    [
        ("pkg-1.0.tar.gz", "pkg", "1.0"),
        ("Foo_Bar-1.0-py3-none-any.whl", "foo-bar", "1.0"),
        ("foo.bar-2.0rc1.zip", "Foo.Bar", "2.0rc1"),
        ("pkg-1.0_1-py3-none-any.whl", "pkg", "1.0-1"),
        ("pkg-1.0-1-py3-none-any.whl", "pkg", "1.0"),
    ],
)
def test_release_filenames_that_match(filename, name, version):
    upload._check_release_filename(filename, name, version)


@pytest.mark.parametrize(
    ("filename", "name", "version", "message"),
    [
        ("other-1.0.tar.gz", "pkg", "1.0", "does not match project name"),
        ("pkg-2.0.tar.gz", "pkg", "1.0", "does not contain version"),
        ("pkg-1.0.txt", "pkg", "1.0", "not a valid archive name"),
        (".pkg-1.0.tar.gz", "pkg", "1.0", "invalid filename"),
        ("pkg-1.0.tar.gz\x00.whl", "pkg", "1.0", "invalid filename"),
        ("pkg-1.0\n.tar.gz", "pkg", "1.0", "invalid filename"),
    ],
)
def test_release_filenames_that_do_not(filename, name, version, message):
    with pytest.raises(BadRequest, match=message):
        upload._check_release_filename(filename, name, version)


@pytest.mark.parametrize(
    "filename", ["../x-1.0.tar.gz", "a/x-1.0.tar.gz", "C:\\x-1.0.tar.gz", "..", ""]
)
def test_content_field_refuses_paths(filename):
    field = SimpleNamespace(filename=filename, file=io.BytesIO(b""))
    with pytest.raises(BadRequest):
        upload.content_field(form(("content", field)))


def test_content_field_must_be_a_file():
    with pytest.raises(BadRequest, match="content"):
        upload.content_field(form(("content", "just text")))


@pytest.fixture
def blob(tmp_path):
    with BlobIngest(MemoryBlobStore(), str(tmp_path)) as ingest:
        ingest.write(b"payload")
        yield ingest


DATA = b"payload"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sha256_digest", hashlib.sha256(DATA).hexdigest()),
        ("sha256_digest", hashlib.sha256(DATA).hexdigest().upper()),
        ("md5_digest", hashlib.md5(DATA).hexdigest()),
        ("blake2_256_digest", hashlib.blake2b(DATA, digest_size=32).hexdigest()),
        ("blake2_256_digest", hashlib.blake2b(DATA).hexdigest()),  # what distutils sends
        ("sha256_digest", ""),
    ],
)
def test_matching_digests_pass(blob, field, value):
    upload.check_form_digests(form((field, value)), blob, "x.whl")


@pytest.mark.parametrize("field", ["sha256_digest", "md5_digest", "blake2_256_digest"])
def test_wrong_digests_are_400(blob, field):
    with pytest.raises(BadRequest, match=field):
        upload.check_form_digests(form((field, "00" * 32)), blob, "x.whl")


def test_utc_iso():
    assert upload.utc_iso(0.25) == "1970-01-01T00:00:00.250000Z"
