"""A real server under conditions WebTest cannot create: dropped connections, concurrent
uploads, the PUSH method, push to a second server, HTTP Range and HEAD."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import requests

from devpi_core.testing.dists import Dist, DistSpec, make_wheel
from devpi_core.testing.plugin import ServerProcess, bin_path, server_config, write_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e
JSON = {"Accept": "application/json"}
AUTH = ("alice", "123")


def start(base: Path, config=None) -> ServerProcess:
    base.mkdir(parents=True, exist_ok=True)
    handle = ServerProcess(
        base / "serverdir", write_config(base / "config.yml", server_config(config))
    )
    handle.start()
    assert (
        requests.put(f"{handle.url}/alice", json={"password": "123"}, timeout=10).status_code == 201
    )
    for name, config in (("dev", {}), ("prod", {"volatile": False})):
        response = requests.put(
            f"{handle.url}/alice/{name}", json=config, auth=AUTH, headers=JSON, timeout=10
        )
        assert response.status_code == 200
    return handle


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    handle = start(tmp_path_factory.mktemp("server-a"), {"server": {"max_upload_size": "256K"}})
    yield handle
    handle.stop()


def upload(url: str, index: str, dist, **fields) -> requests.Response:
    name, version = dist.filename.split("-")[:2]
    data = {":action": "file_upload", "name": name, "version": version, **fields}
    return requests.post(
        f"{url}/{index}/",
        data=data,
        files={"content": (dist.filename, dist.content)},
        auth=AUTH,
        timeout=60,
    )


def blobs_and_scratch(server: ServerProcess) -> tuple[set[str], list[str]]:
    blobs = {p.name for p in (server.serverdir / "+blobs").rglob("*") if p.is_file()}
    scratch = [p.name for p in (server.serverdir / "+tmp").rglob("*") if p.is_file()]
    return blobs, scratch


def simple_files(url: str, index: str, project: str) -> list[dict]:
    response = requests.get(
        f"{url}/{index}/+simple/{project}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=10,
    )
    return response.json()["files"] if response.status_code == 200 else []


def test_connection_dropped_mid_upload_stores_nothing(server):
    before = blobs_and_scratch(server)
    wheel = make_wheel(DistSpec("dropped", "1.0"), padding=50_000)
    boundary = "xyzzy"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\ndropped\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="version"\r\n\r\n1.0\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{wheel.filename}"\r\n\r\n'
    ).encode()
    body = head + wheel.content + f"\r\n--{boundary}--\r\n".encode()
    parts = urlsplit(server.url)
    request = (
        f"POST /alice/dev/ HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Basic YWxpY2U6MTIz\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request + body[: len(body) // 2])
    # the server stays healthy and the same upload, complete, works afterwards
    assert simple_files(server.url, "alice/dev", "dropped") == []
    assert blobs_and_scratch(server) == before
    assert upload(server.url, "alice/dev", wheel).status_code == 200
    assert [f["filename"] for f in simple_files(server.url, "alice/dev", "dropped")] == [
        wheel.filename
    ]


def test_oversized_upload_is_413_and_stores_nothing(server):
    before = blobs_and_scratch(server)
    huge = Dist("huge-1.0.tar.gz", b"\x1f\x8b" + os.urandom(2_000_000))
    response = upload(server.url, "alice/dev", huge)
    assert response.status_code == 413
    assert blobs_and_scratch(server) == before
    assert simple_files(server.url, "alice/dev", "huge") == []


def _concurrently(count: int, work) -> list:
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_concurrent_uploads_of_the_same_file(server):
    wheel = make_wheel(DistSpec("samefile", "1.0"))
    results = _concurrently(6, lambda i: upload(server.url, "alice/dev", wheel).status_code)
    assert results == [200] * 6
    files = simple_files(server.url, "alice/dev", "samefile")
    assert [f["filename"] for f in files] == [wheel.filename]
    assert files[0]["hashes"]["sha256"] == wheel.sha256
    assert wheel.sha256 in blobs_and_scratch(server)[0]


def test_concurrent_different_uploads_to_non_volatile_index(server):
    before_blobs, _ = blobs_and_scratch(server)
    wheels = [make_wheel(DistSpec("racing", "1.0"), padding=100 * (i + 1)) for i in range(6)]
    results = _concurrently(6, lambda i: upload(server.url, "alice/prod", wheels[i]).status_code)
    assert sorted(results) == [200] + [409] * 5
    winner = wheels[results.index(200)]
    files = simple_files(server.url, "alice/prod", "racing")
    assert [f["hashes"]["sha256"] for f in files] == [winner.sha256]
    # the losers' contents wait for garbage collection (storage.blob_gc_grace); collect now
    collected = subprocess.run(
        [bin_path("devpi-core"), "gc", "--serverdir", str(server.serverdir),
         "--config", str(server.config), "--grace", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert collected.returncode == 0, collected.stdout + collected.stderr
    blobs, scratch = blobs_and_scratch(server)
    new = blobs - before_blobs
    assert winner.sha256 in new
    assert not any(w.sha256 in new for w in wheels if w is not winner)
    assert len(new) == 2  # the wheel and its METADATA
    assert scratch == []


def test_file_range_and_head_parity(server):
    wheel = make_wheel(DistSpec("ranged", "1.0"), padding=5000)
    assert upload(server.url, "alice/dev", wheel).status_code == 200
    [entry] = simple_files(server.url, "alice/dev", "ranged")
    url = requests.compat.urljoin(f"{server.url}/alice/dev/+simple/ranged/", entry["url"])
    full = requests.get(url, timeout=10)
    head = requests.head(url, timeout=10)
    assert full.content == wheel.content
    for name in ("Content-Length", "ETag", "Accept-Ranges", "Content-Type", "Cache-Control"):
        assert head.headers[name] == full.headers[name], name
    assert full.headers["Accept-Ranges"] == "bytes"
    part = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206
    assert part.content == wheel.content[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(wheel.content)}"
    tail = requests.get(url, headers={"Range": "bytes=-7"}, timeout=10)
    assert tail.content == wheel.content[-7:]
    bad = requests.get(url, headers={"Range": f"bytes={len(wheel.content) + 5}-"}, timeout=10)
    assert bad.status_code == 416
    again = requests.get(url, headers={"If-None-Match": full.headers["ETag"]}, timeout=10)
    assert again.status_code == 304
    assert again.content == b""


def test_push_method_internal(server):
    wheel = make_wheel(DistSpec("pushme", "1.0"))
    assert upload(server.url, "alice/dev", wheel).status_code == 200
    response = requests.request(
        "PUSH",
        f"{server.url}/alice/dev",
        json={"name": "pushme", "version": "1.0", "targetindex": "alice/prod"},
        auth=AUTH,
        headers=JSON,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "actionlog"
    assert response.json()["result"][0] == [200, "register", "pushme", "1.0", "->", "alice/prod"]
    [entry] = simple_files(server.url, "alice/prod", "pushme")
    assert entry["hashes"]["sha256"] == wheel.sha256


def test_external_push_to_another_server(server, tmp_path):
    other = start(tmp_path / "server-b")
    try:
        wheel = make_wheel(DistSpec("travels", "1.0", summary="crossing servers"))
        assert upload(server.url, "alice/dev", wheel).status_code == 200
        body = {
            "name": "travels",
            "version": "1.0",
            "posturl": f"{other.url}/alice/dev/",
            "username": "alice",
            "password": "123",
            "register_project": True,
        }
        response = requests.request(
            "PUSH", f"{server.url}/alice/dev", json=body, auth=AUTH, headers=JSON, timeout=60
        )
        assert response.status_code == 200, response.text
        rows = response.json()["result"]
        assert [row[0] for row in rows] == [200, 200]
        assert rows[0][1] == "register"
        assert rows[1][1] == "upload"
        [entry] = simple_files(other.url, "alice/dev", "travels")
        assert entry["hashes"]["sha256"] == wheel.sha256
        meta = requests.get(f"{other.url}/alice/dev/travels/1.0", headers=JSON, timeout=10).json()
        assert meta["result"]["summary"] == "crossing servers"
        body["password"] = "wrong"
        denied = requests.request(
            "PUSH", f"{server.url}/alice/dev", json=body, auth=AUTH, headers=JSON, timeout=60
        )
        assert denied.status_code == 502
        assert denied.json()["result"][0][0] == 401
    finally:
        other.stop()
