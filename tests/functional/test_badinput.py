"""Bad input gets a clear 4xx JSON error, and nothing stored changes or is left behind.

Every case compares the blob store, the scratch directory and every metadata key before and
after the rejected request.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile

import pytest

from devpi_core import services
from devpi_core.testing.dists import DistSpec, make_wheel

JSON = {"Accept": "application/json"}


def stored_state(client) -> tuple[set[str], dict, list[str]]:
    registry = client.app.app.registry
    blobs = set(services.blob_store(registry).iter_blobs())
    with services.metadata_store(registry).read() as tx:
        metadata = dict(tx.items(""))
    scratch = sorted(os.listdir(services.serverdir(registry).tmpdir))
    return blobs, metadata, scratch


@pytest.fixture
def alice(make_app):
    client = make_app({"server": {"max_upload_size": "64K"}})
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("existing", "1.0")))
    return client


def post_file(client, fields, filename, content, *, status, headers=None):
    hdrs = {**client._headers(json_accept=False), **JSON, **(headers or {})}
    return client.app.post(
        "/alice/dev/",
        params=fields,
        upload_files=[("content", filename, content)],
        headers=hdrs,
        status=status,
        expect_errors=True,
    )


def assert_rejected(client, response, status):
    assert response.status_int == status, response
    assert response.content_type == "application/json"
    assert response.json["message"]


def gzip_not_tar() -> bytes:
    return gzip.compress(b"just some text, no tar header here" * 20)


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


GOOD_WHEEL = make_wheel(DistSpec("pkg", "1.0"))

UPLOADS = {
    "not a wheel": ("pkg", "1.0", "pkg-1.0-py3-none-any.whl", b"this is text, not a zip"),
    "gzip but not tar": ("pkg", "1.0", "pkg-1.0.tar.gz", gzip_not_tar()),
    "zip magic but broken": ("pkg", "1.0", "pkg-1.0.zip", b"PK\x03\x04" + b"\x00" * 50),
    "not an archive name": ("pkg", "1.0", "pkg-1.0.txt", b"hello"),
    "name mismatch": ("pkg", "1.0", "other-1.0.tar.gz", tar_gz({"other-1.0/PKG-INFO": b"x"})),
    "version mismatch": ("pkg", "2.0", GOOD_WHEEL.filename, GOOD_WHEEL.content),
    "dotdot filename": ("pkg", "1.0", "../pkg-1.0.tar.gz", tar_gz({"a": b"x"})),
    "backslash filename": ("pkg", "1.0", "..\\pkg-1.0.tar.gz", tar_gz({"a": b"x"})),
    "absolute filename": ("pkg", "1.0", "/etc/pkg-1.0.tar.gz", tar_gz({"a": b"x"})),
    "hidden filename": ("pkg", "1.0", ".pkg-1.0.tar.gz", tar_gz({"a": b"x"})),
    "bad version": ("pkg", "1.0/../../x", GOOD_WHEEL.filename, GOOD_WHEEL.content),
    "bad project name": ("../pkg", "1.0", GOOD_WHEEL.filename, GOOD_WHEEL.content),
    "non-ascii project": ("pkg\u00e9", "1.0", GOOD_WHEEL.filename, GOOD_WHEEL.content),
    "oversized": ("pkg", "1.0", "pkg-1.0.tar.gz", b"\x1f\x8b" + os.urandom(100 * 1024)),
}


@pytest.mark.parametrize("case", sorted(UPLOADS))
def test_bad_uploads_are_rejected_and_leave_nothing(alice, case):
    name, version, filename, content = UPLOADS[case]
    before = stored_state(alice)
    fields = [(":action", "file_upload"), ("name", name), ("version", version)]
    response = post_file(alice, fields, filename, content, status="*")
    assert_rejected(alice, response, 413 if case == "oversized" else 400)
    assert stored_state(alice) == before


def test_declared_oversized_body_is_413_before_reading(alice):
    before = stored_state(alice)
    response = alice.app.post(
        "/alice/dev/",
        b"x" * 10,
        headers={
            **alice._headers(),
            "Content-Type": "multipart/form-data; boundary=xx",
            "Content-Length": str(10 * 1024 * 1024),
        },
        status="*",
        expect_errors=True,
    )
    assert_rejected(alice, response, 413)
    assert stored_state(alice) == before


def test_content_length_larger_than_body_is_400(alice):
    before = stored_state(alice)
    body = (
        b'--xx\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n'
        b'--xx\r\nContent-Disposition: form-data; name="name"\r\n\r\npkg\r\n'
        b'--xx\r\nContent-Disposition: form-data; name="version"\r\n\r\n1.0\r\n'
        b'--xx\r\nContent-Disposition: form-data; name="content"; filename="pkg-1.0.tar.gz"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n\x1f\x8bpartial"
    )
    response = alice.app.post(
        "/alice/dev/",
        body,
        headers={
            **alice._headers(),
            "Content-Type": "multipart/form-data; boundary=xx",
            "Content-Length": str(len(body) + 5000),
        },
        status="*",
        expect_errors=True,
    )
    assert_rejected(alice, response, 400)
    assert stored_state(alice) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/bob", b"{not json"),
        ("PUT", "/bob", b"[1, 2]"),
        ("PUT", "/alice/other", b"\xff\xfe"),
        ("PATCH", "/alice/dev", b'{"a": '),
        ("PATCH", "/alice/dev", b"42"),
        ("PATCH", "/alice", b""),
        ("POST", "/+login", b"nul\x00"),
        ("POST", "/alice/dev", b"{]"),
    ],
)
def test_malformed_json_is_400(alice, method, path, body):
    before = stored_state(alice)
    response = alice.app.request(
        path,
        method=method,
        body=body,
        headers={**alice._headers(), "Content-Type": "application/json"},
        status="*",
        expect_errors=True,
    )
    assert_rejected(alice, response, 400)
    assert stored_state(alice) == before


@pytest.mark.parametrize(
    "path",
    [
        "/alice/dev/+f/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/alice/dev/+f/..%2f..%2f..%2fetc%2fpasswd",
        "/alice/dev/+f/abc/def/x%00.whl",
        "/alice/dev/+simple/..%2f..%2f/",
        "/alice/%2e%2e/+simple/",
        "/alice/dev/%2e%2e/%2e%2e/+api",
        "/alice/dev/+f//etc/passwd",
        "/alice/dev/+f/" + "%ff" * 3,
    ],
)
def test_traversal_urls_are_4xx(alice, path):
    response = alice.app.get(path, headers=JSON, status="*", expect_errors=True)
    assert 400 <= response.status_int < 500
    assert response.json["message"]
    assert b"root:" not in response.body


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/alice/dev/+simple/p%C3%A9/", 400),
        ("/alice/dev/p%C3%A9", 400),
        ("/alice/dev/existing/1.0%00", 400),
        ("/alice/dev/nothere", 404),
        ("/alice/dev/existing/9.9", 404),
        ("/alice/dev/+f/abc/def/nothere.whl", 404),
    ],
)
def test_bad_names_in_urls(alice, path, status):
    response = alice.app.get(path, headers=JSON, status="*", expect_errors=True)
    assert response.status_int == status
    assert response.json["message"]


def test_unknown_ixconfig_key_changes_nothing(alice):
    before = stored_state(alice)
    response = alice.modify_index("alice/dev", {"bases": [], "sneaky": 1}, status=400)
    assert "sneaky" in response.json["message"]
    assert stored_state(alice) == before


def test_rejected_push_changes_nothing(alice):
    alice.create_index("alice/prod", volatile=False)
    alice.request(
        "POST",
        "/alice/dev",
        {"name": "existing", "version": "1.0", "targetindex": "alice/prod"},
        status=200,
    )
    alice.request("DELETE", "/alice/dev/existing", status=200)
    alice.upload("alice/dev", make_wheel(DistSpec("existing", "1.0"), padding=64))
    before = stored_state(alice)
    response = alice.request(
        "POST",
        "/alice/dev",
        {"name": "existing", "version": "1.0", "targetindex": "alice/prod"},
        status=409,
    )
    assert "already exists" in response.json["message"]
    assert stored_state(alice) == before
