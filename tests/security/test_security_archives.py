"""Metadata extraction bombs: reading an upload's PKG-INFO is limited in bytes and time.

A 4 MB ``.tar.gz`` whose first member unpacked to 4 GiB kept an upload busy for seconds before
its PKG-INFO was found. The bombs here are small; the limits are lowered to match.
"""

from __future__ import annotations

import bz2
import io
import lzma
import tarfile
import time
import zlib

import pytest

from devpi_core.testing.dists import Dist, DistSpec, make_sdist

PKG_INFO = b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\nSummary: from pkg-info\n"
COMPRESS = {
    ".tar.gz": lambda data: zlib.compress(data, 9, wbits=31),
    ".tar.bz2": lambda data: bz2.compress(data, 9),
    ".tar.xz": lambda data: lzma.compress(data, preset=0),
}
SMALL = {"plugins": {"stages": {"metadata_max_unpacked": "1M"}}}


def tar_bytes(members: list[tuple[str, bytes]], *, pax: dict[str, str] | None = None) -> bytes:
    """An uncompressed tar of ``members``, in that order."""
    buffer = io.BytesIO()
    fmt = tarfile.PAX_FORMAT if pax else tarfile.USTAR_FORMAT
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tf:
        for n, (name, data) in enumerate(members):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if pax and n == 0:
                info.pax_headers = pax
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def bomb(suffix: str, members: list[tuple[str, bytes]], **kwargs) -> bytes:
    return COMPRESS[suffix](tar_bytes(members, **kwargs))


@pytest.fixture
def uploader(make_app):
    def factory(config=SMALL):
        client = make_app(config)
        client.create_and_login("alice")
        client.create_index("alice/dev")
        return client

    return factory


def upload(client, filename, content, *, name="pkg", version="1.0", status: int | str = "*"):
    dist = Dist(filename, content)
    return client.upload("alice/dev", dist, name=name, version=version, status=status)


def assert_refused(client, response, filename: str) -> None:
    assert response.status_int == 400, response.text
    message = response.json["message"]
    assert message.startswith(f"could not read metadata from {filename}: archive too large")
    assert "metadata_max_unpacked" in message
    assert client.get("/alice/dev/pkg", status=404)


@pytest.mark.parametrize("suffix", sorted(COMPRESS))
def test_a_member_declaring_more_than_the_limit_is_refused_before_unpacking(uploader, suffix):
    client = uploader()
    # 4 MiB of zeros before PKG-INFO: a few KB compressed, 4x the lowered limit
    content = bomb(suffix, [("pkg-1.0/big", bytes(4 << 20)), ("pkg-1.0/PKG-INFO", PKG_INFO)])
    assert len(content) < 64 * 1024
    start = time.monotonic()
    response = upload(client, f"pkg-1.0{suffix}", content)
    assert_refused(client, response, f"pkg-1.0{suffix}")
    # refused from the declared size, without inflating the 4 MiB
    assert time.monotonic() - start < 5


def test_what_is_unpacked_counts_not_what_members_declare(uploader):
    client = uploader()
    # 24 members of 64 KiB, each small, together 1.5 MiB before PKG-INFO
    members = [(f"pkg-1.0/f{n}", bytes(64 << 10)) for n in range(24)]
    content = bomb(".tar.gz", [*members, ("pkg-1.0/PKG-INFO", PKG_INFO)])
    assert_refused(client, upload(client, "pkg-1.0.tar.gz", content), "pkg-1.0.tar.gz")
    # PKG-INFO after less than the limit, or first, is found
    for found in ([*members[:12], ("pkg-1.0/PKG-INFO", PKG_INFO)],
                  [("pkg-1.0/PKG-INFO", PKG_INFO), *members]):
        upload(client, "pkg-1.0.tar.gz", bomb(".tar.gz", found), status=200)
        assert client.get_json("/alice/dev/pkg/1.0")["result"]["summary"] == "from pkg-info"


def test_a_huge_pax_header_is_not_buffered(uploader):
    client = uploader({"plugins": {"stages": {"metadata_max_unpacked": "64M"}}})
    # tarfile reads a PAX header in one piece: 12 MiB of it would sit in memory at once
    pax = {"comment": "x" * (12 << 20)}
    content = bomb(".tar.gz", [("pkg-1.0/PKG-INFO", PKG_INFO)], pax=pax)
    assert_refused(client, upload(client, "pkg-1.0.tar.gz", content), "pkg-1.0.tar.gz")


def test_unpacking_is_limited_in_time(uploader):
    client = uploader({"plugins": {"stages": {"metadata_timeout": 1e-6}}})
    sdist = make_sdist(DistSpec("pkg", "1.0"))
    response = upload(client, sdist.filename, sdist.content)
    assert_refused(client, response, sdist.filename)
    assert "longer than" in response.json["message"]
