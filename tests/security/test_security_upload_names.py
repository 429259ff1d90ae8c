"""Filenames and metadata are validated as PyPI does.

Filenames with ``%``, ``#``, ``?``, spaces or non-ASCII letters were stored and produced broken
links; a wheel whose METADATA named another project or version was stored (and its METADATA
served to pip); the form's version only had to occur somewhere in the filename.
"""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from devpi_core.testing.dists import Dist, DistSpec, make_sdist, make_wheel

SDIST = make_sdist(DistSpec("pkg", "1.0"))


def wheel_bytes(metadata: bytes | None, distinfo: str = "pkg-1.0.dist-info") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("pkg/__init__.py", b"")
        zf.writestr(f"{distinfo}/WHEEL", b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
        if metadata is not None:
            zf.writestr(f"{distinfo}/METADATA", metadata)
    return buffer.getvalue()


def sdist_with(pkg_info: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        info = tarfile.TarInfo("pkg-1.0/PKG-INFO")
        info.size = len(pkg_info)
        tf.addfile(info, io.BytesIO(pkg_info))
    return buffer.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def alice(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.create_index("alice/prod")
    return client


def upload(client, filename, content, *, name="pkg", version="1.0", status: int | str = "*"):
    dist = Dist(filename, content)
    return client.upload("alice/dev", dist, name=name, version=version, status=status)


def assert_refused(client, response, *phrases: str) -> None:
    assert response.status_int == 400, response.text
    for phrase in phrases:
        assert phrase in response.json["message"]
    assert client.get("/alice/dev/pkg", status=404)


@pytest.mark.parametrize("char", ["%", "%25", "#", "?", " ", "\u00e9", "&", ";", "'", "=", "@"])
def test_filenames_with_characters_that_break_links_are_refused(alice, char):
    filename = f"pkg-1.0{char}x.tar.gz"
    assert_refused(alice, upload(alice, filename, SDIST.content), "invalid filename")


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("pkg-1.0.1.tar.gz", SDIST.content),
        ("pkg-11.0.tar.gz", SDIST.content),
        ("pkg-1.0rc1.tar.gz", SDIST.content),
        ("pkg-extra-1.0.tar.gz", SDIST.content),
        ("pkg-1.0.1-py3-none-any.whl", wheel_bytes(b"Name: pkg\nVersion: 1.0\n")),
        ("pkg-1.0-extra-py3-none-any.whl", wheel_bytes(b"Name: pkg\nVersion: 1.0\n")),
        ("pkg-1.0.1-py3.8.egg", wheel_bytes(b"Name: pkg\nVersion: 1.0\n")),
    ],
)
def test_the_form_version_must_be_the_filenames_not_a_part_of_it(alice, filename, content):
    response = upload(alice, filename, content)
    assert_refused(alice, response, repr(filename))


@pytest.mark.parametrize(
    ("metadata", "phrase"),
    [
        (b"Metadata-Version: 2.1\nName: other\nVersion: 1.0\n", "names project 'other'"),
        (b"Metadata-Version: 2.1\nName: pkg\nVersion: 2.0\n", "names version '2.0'"),
        (None, "a wheel needs exactly one"),
    ],
)
def test_wheel_metadata_must_name_the_uploaded_release(alice, metadata, phrase):
    filename = "pkg-1.0-py3-none-any.whl"
    response = upload(alice, filename, wheel_bytes(metadata))
    assert_refused(alice, response, filename, phrase)


def test_sdist_pkg_info_must_name_the_uploaded_release(alice):
    content = sdist_with(b"Metadata-Version: 2.1\nName: other\nVersion: 1.0\n")
    assert_refused(alice, upload(alice, "pkg-1.0.tar.gz", content), "names project 'other'")
    content = sdist_with(b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.1\n")
    assert_refused(alice, upload(alice, "pkg-1.0.tar.gz", content), "names version '1.1'")


def test_names_and_versions_that_agree_after_normalisation_upload(alice):
    # a compatibility guard for what the checks above must not refuse
    spec = DistSpec("Hello_World", "1.0")
    for dist in (make_wheel(spec), make_sdist(spec)):
        upload(alice, dist.filename, dist.content, name="hello.world", status=200)
    assert len(alice.simple_filenames("alice/dev", "hello-world")) == 2
    local = wheel_bytes(b"Name: pkg\nVersion: 1.0+local\n")
    upload(alice, "pkg-1.0+local-1-py3-none-any.whl", local, version="1.0+local", status=200)
    legacy = {
        "Pkg-1.0.0.zip": zip_of({"Pkg-1.0.0/PKG-INFO": b"Name: Pkg\nVersion: 1.0.0\n"}),
        "pkg-1.0-py3.8.egg": zip_of({"EGG-INFO/PKG-INFO": b"Name: pkg\nVersion: 1.0\n"}),
        "pkg-1.0.win32.exe": b"MZ an installer",
    }
    for filename, content in legacy.items():
        upload(alice, filename, content, status=200)
    assert sorted(alice.simple_filenames("alice/dev", "pkg")) == [
        "Pkg-1.0.0.zip",
        "pkg-1.0+local-1-py3-none-any.whl",
        "pkg-1.0-py3.8.egg",
        "pkg-1.0.win32.exe",
    ]


def test_push_does_not_copy_a_file_named_for_another_version(alice, monkeypatch):
    # a file stored before these checks existed: sneak it past the upload check
    with monkeypatch.context() as patched:
        patched.setattr("devpi_core_stages.upload._check_release_filename", lambda *args: None)
        upload(alice, "pkg-1.0.1.tar.gz", SDIST.content, status=200)
    body = {"name": "pkg", "version": "1.0", "targetindex": "alice/prod"}
    response = alice.request("POST", "/alice/dev", body, status="*")
    assert response.status_int == 400, response.text
    assert "'pkg-1.0.1.tar.gz' does not contain version '1.0'" in response.json["message"]
    assert alice.get("/alice/prod/pkg", status=404)
