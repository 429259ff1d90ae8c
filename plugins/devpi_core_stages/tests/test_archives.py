"""Archive checks and metadata extraction (no server involved)."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import pytest

from devpi_core.errors import BadRequest
from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel
from devpi_core_stages import archives

SPEC = DistSpec(
    "demo-pkg", "1.2", requires_python=">=3.9", requires_dist=["a", "b>1; extra == 'x'"]
)


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(files: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("x-1.0-py3-none-any.whl", make_wheel(SPEC).content),
        ("x-1.0.tar.gz", make_sdist(SPEC).content),
        ("x-1.0.tgz", make_sdist(SPEC).content),
        ("x-1.0.tar.bz2", tar_bytes({"x-1.0/PKG-INFO": b"Name: x\n"}, "w:bz2")),
        ("x-1.0.tar.xz", tar_bytes({"x-1.0/PKG-INFO": b"Name: x\n"}, "w:xz")),
        ("x-1.0.zip", zip_bytes({"x-1.0/PKG-INFO": b"Name: x\n"})),
        ("x-1.0.egg", zip_bytes({"EGG-INFO/PKG-INFO": b"Name: x\n"})),
        ("x-1.0.exe", b"MZ anything goes for installers"),
    ],
)
def test_valid_archives_pass(filename, content):
    f = io.BytesIO(content)
    archives.check_archive(filename, f)
    assert f.tell() == 0


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("x-1.0-py3-none-any.whl", b"plain text"),
        ("x-1.0.tar.gz", b"plain text"),
        ("x-1.0.tar.gz", gzip.compress(b"gzip but not a tar archive" * 30, mtime=0)),
        ("x-1.0.tar.bz2", b"BZh9 truncated"),
        ("x-1.0.zip", b"PK\x03\x04 truncated"),
        ("x-1.0.tar.xz", b"\x1f\x8b wrong magic"),
    ],
)
def test_invalid_archives_are_400(filename, content):
    with pytest.raises(BadRequest):
        archives.check_archive(filename, io.BytesIO(content))


def test_wheel_metadata_is_the_dist_info_metadata():
    wheel = make_wheel(SPEC)
    assert archives.wheel_metadata(wheel.filename, io.BytesIO(wheel.content)) == wheel.metadata


@pytest.mark.parametrize(
    "files",
    [
        {"pkg/__init__.py": b""},
        {"a-1.dist-info/METADATA": b"Name: a\n", "b-1.dist-info/METADATA": b"Name: b\n"},
        {"deep/a-1.dist-info/METADATA": b"Name: a\n"},
    ],
)
def test_wheels_without_a_single_metadata_give_none(files):
    assert archives.wheel_metadata("a-1-py3-none-any.whl", io.BytesIO(zip_bytes(files))) is None


def test_oversized_metadata_is_ignored(monkeypatch):
    monkeypatch.setattr(archives, "MAX_METADATA", 10)
    wheel = make_wheel(SPEC)
    assert archives.wheel_metadata(wheel.filename, io.BytesIO(wheel.content)) is None


def test_sdist_pkg_info():
    sdist = make_sdist(SPEC)
    assert archives.sdist_metadata(sdist.filename, io.BytesIO(sdist.content)) == sdist.metadata
    zipped = zip_bytes(
        {"demo-pkg-1.2/PKG-INFO": b"Name: demo-pkg\n", "demo-pkg-1.2/x/PKG-INFO": b"no"}
    )
    assert archives.sdist_metadata("demo-pkg-1.2.zip", io.BytesIO(zipped)) == b"Name: demo-pkg\n"
    nested = tar_bytes({"demo-pkg-1.2/sub/PKG-INFO": b"Name: nested\n"})
    assert archives.sdist_metadata("demo-pkg-1.2.tar.gz", io.BytesIO(nested)) is None
    assert archives.sdist_metadata("demo-pkg-1.2.tar.gz", io.BytesIO(b"broken")) is None


def test_archive_metadata_picks_the_right_file():
    wheel, sdist = make_wheel(SPEC), make_sdist(SPEC)
    assert archives.archive_metadata(wheel.filename, io.BytesIO(wheel.content)) == wheel.metadata
    assert archives.archive_metadata(sdist.filename, io.BytesIO(sdist.content)) == sdist.metadata
    assert archives.archive_metadata("x-1.0.exe", io.BytesIO(b"MZ")) is None


def test_metadata_fields_use_devpi_keys():
    raw = (
        b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nSummary: s\nHome-page: http://h\n"
        b"Author-email: a@b\nClassifier: A\nClassifier: B\nProject-URL: Docs, http://d\n"
        b"Requires-Dist: x\nRequires-Dist: y\nProvides-Extra: fast\nRequires-Python: >=3.8\n"
        b"Platform: any\n\nThe long description\nover two lines\n"
    )
    fields = archives.metadata_fields(raw)
    assert fields["name"] == "demo"
    assert fields["home_page"] == "http://h"
    assert fields["author_email"] == "a@b"
    assert fields["classifiers"] == ["A", "B"]
    assert fields["project_urls"] == ["Docs, http://d"]
    assert fields["requires_dist"] == ["x", "y"]
    assert fields["provides_extras"] == ["fast"]
    assert fields["platform"] == ["any"]
    assert fields["requires_python"] == ">=3.8"
    assert fields["description"] == "The long description\nover two lines\n"
