"""Single-flight and cache fills against a real server: many clients asking for one uncached page
or file make exactly one upstream request, and a client that goes away does not stop a fill.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from devpi_core.testing.dists import DistSpec, make_wheel

pytestmark = pytest.mark.e2e
CLIENTS = 8
JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def server(devpi_server, fake_upstream):
    config = {
        "plugins": {"mirror": {"init_root_pypi": False, "verify_before_send": 1024}},
        "server": {"threads": 16},
    }
    handle = devpi_server(config)
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    token = session.post(f"{handle.url}/+login", json={"user": "root", "password": ""}).json()
    session.auth = ("root", token["result"]["password"])
    response = session.put(
        f"{handle.url}/root/fake", json={"type": "mirror", "mirror_url": fake_upstream.url}
    )
    assert response.status_code == 200, response.text
    return handle


def metric(server, name: str) -> float:
    metrics = requests.get(
        f"{server.url}/+status", headers={"Accept": "application/json"}, timeout=10
    ).json()["result"]["metrics"]
    return next(value for key, _kind, value in metrics if key == f"devpi_mirror_{name}")


def poll(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def concurrently(
    server, upstream, path: str, url: str, headers: dict[str, str], *, waiting: int
) -> list[requests.Response]:
    upstream.faults.hold = threading.Event()
    upstream.faults.only = path
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [
            pool.submit(requests.get, url, headers=headers, timeout=60) for _ in range(CLIENTS)
        ]
        # everyone is in: one request upstream, the clients waiting for it inside the server
        poll(lambda: upstream.count(path) == 1 and metric(server, "waiting") == waiting)
        upstream.faults.hold.set()
        return [future.result() for future in futures]


def test_concurrent_page_requests_make_one_upstream_request(server, fake_upstream):
    fake_upstream.add("hello", make_wheel(DistSpec("hello", "1.0")))
    responses = concurrently(
        server,
        fake_upstream,
        "/simple/hello/",
        f"{server.url}/root/fake/+simple/hello/",
        {"Accept": JSON},
        waiting=CLIENTS - 1,
    )  # one of them fetches
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert fake_upstream.count("/simple/hello/") == 1


def file_url(server, project: str) -> str:
    page_url = f"{server.url}/root/fake/+simple/{project}/"
    page = requests.get(page_url, headers={"Accept": JSON}, timeout=10).json()
    return urljoin(page_url, page["files"][0]["url"])


def test_concurrent_first_downloads_make_one_upstream_request(server, fake_upstream):
    big = make_wheel(DistSpec("big", "1.0"), padding=3 << 20)
    fake_upstream.add("big", big)
    url = file_url(server, "big")
    # a fill runs in its own thread: all clients wait for it
    responses = concurrently(server, fake_upstream, "/files/", url, {}, waiting=CLIENTS)
    outcomes = [(r.status_code, len(r.content) if r.ok else r.text) for r in responses]
    assert outcomes == [(200, len(big.content))] * CLIENTS
    assert all(r.content == big.content for r in responses)
    assert fake_upstream.count("/files/") == 1
    fake_upstream.clear()
    assert requests.get(url, timeout=10).content == big.content
    assert fake_upstream.count() == 0


def test_client_that_disconnects_does_not_abort_the_fill(server, fake_upstream):
    big = make_wheel(DistSpec("big", "1.0"), padding=2 << 20)
    fake_upstream.add("big", big)
    url = file_url(server, "big")
    fake_upstream.faults.slow_body = 0.02  # about a second for the whole file
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    poll(lambda: metric(server, "files_cached") == 1)
    fake_upstream.faults.slow_body = 0
    fake_upstream.clear()
    assert requests.get(url, timeout=10).content == big.content
    assert fake_upstream.count() == 0
