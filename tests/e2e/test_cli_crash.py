"""A server killed (SIGKILL) or stopped (SIGTERM) mid-write restarts without any repair."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import sqlite3
import threading
from urllib.parse import urljoin

import pytest
import requests
from cli_run import login, upload

from devpi_core.testing.dists import DistSpec, make_wheel

pytestmark = pytest.mark.e2e
PEP691 = {"Accept": "application/vnd.pypi.simple.v1+json"}


class Writers:
    """Threads that upload and create indexes until the server goes away; they keep what was
    acknowledged (a 200 answer was received), which must survive the crash."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.auth = ("root", token)
        self.header = {"X-Devpi-Auth": base64.b64encode(f"root:{token}".encode()).decode()}
        self.lock = threading.Lock()
        self.files: dict[str, str] = {}  # acknowledged filename -> sha256
        self.indexes: list[str] = []
        self.serials: list[int] = []
        self.unexpected: list[str] = []
        self.progress = threading.Event()
        self.threads = [threading.Thread(target=self.upload_loop, args=(n,)) for n in range(2)]
        self.threads.append(threading.Thread(target=self.index_loop))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)

    def _acked(self, response: requests.Response, expected: int) -> bool:
        if response.status_code != expected:
            with self.lock:
                self.unexpected.append(f"{response.status_code} {response.text[:200]}")
            return False
        with self.lock:
            self.serials.append(int(response.headers["X-DEVPI-SERIAL"]))
            if len(self.files) >= 10 and len(self.indexes) >= 3:
                self.progress.set()
        return True

    def upload_loop(self, worker: int) -> None:
        for i in range(10_000):
            wheel = make_wheel(DistSpec(f"crash-{worker}", f"1.{i}"), padding=300_000)
            try:
                response = upload(self.url, "root/dev", self.auth, wheel)
            except requests.RequestException:
                # a killed server can cut a response anywhere: before the headers
                # (ConnectionError) or between headers and body (ChunkedEncodingError)
                return
            if self._acked(response, 200):
                with self.lock:
                    self.files[wheel.filename] = wheel.sha256

    def index_loop(self) -> None:
        for i in range(10_000):
            try:
                response = requests.put(
                    f"{self.url}/root/ix{i}",
                    json={"bases": ["root/dev"]},
                    headers=self.header,
                    timeout=30,
                )
            except requests.RequestException:  # see upload_loop
                return
            if self._acked(response, 200):
                with self.lock:
                    self.indexes.append(f"root/ix{i}")


def listed_files(url: str, index: str) -> dict[str, tuple[str, str]]:
    """``{filename: (absolute url, sha256)}`` of every file on the index's simple pages."""
    found = {}
    projects = requests.get(f"{url}/{index}/+simple/", headers=PEP691, timeout=30).json()[
        "projects"
    ]
    for project in projects:
        page_url = f"{url}/{index}/+simple/{project['name']}/"
        for entry in requests.get(page_url, headers=PEP691, timeout=30).json()["files"]:
            found[entry["filename"]] = (urljoin(page_url, entry["url"]), entry["hashes"]["sha256"])
    return found


def leftovers(serverdir) -> list[str]:
    """Temp files anywhere in the server directory, and scratch space of dead processes."""
    found = []
    for dirpath, _dirs, files in os.walk(serverdir):
        found += [
            os.path.join(dirpath, name)
            for name in files
            if ".tmp-" in name or name.startswith("blob-")
        ]
    return found


@pytest.mark.parametrize(
    ("sig", "status"), [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 0)]
)
def test_stopped_during_writes_leaves_a_serverdir_that_just_works(devpi_server, sig, status):
    server = devpi_server()
    token = login(server.url, "root", "")
    writers = Writers(server.url, token)
    assert (
        requests.put(
            f"{server.url}/root/dev", json={}, headers=writers.header, timeout=10
        ).status_code
        == 200
    )
    writers.start()
    try:
        assert writers.progress.wait(timeout=120), f"no progress: {writers.unexpected}"
    finally:
        assert server.stop(sig) == status
        writers.join()
    assert writers.unexpected == []
    dead_scratch = list((server.serverdir / "+tmp").iterdir())

    server.start()
    status = requests.get(f"{server.url}/+status", timeout=10)
    serial = status.json()["result"]["serial"]
    assert serial == int(status.headers["X-DEVPI-SERIAL"])
    assert serial >= max(writers.serials)  # every acknowledged write is there
    assert not any(path.exists() for path in dead_scratch)  # the killed process's scratch space

    listed = listed_files(server.url, "root/dev")
    assert set(writers.files) <= set(listed)
    for filename, (url, sha256) in listed.items():
        content = requests.get(url, timeout=30).content
        assert hashlib.sha256(content).hexdigest() == sha256, filename
        if filename in writers.files:
            assert sha256 == writers.files[filename]
    projects = requests.get(
        f"{server.url}/root", headers={"Accept": "application/json"}, timeout=10
    )
    assert set(writers.indexes) <= {f"root/{name}" for name in projects.json()["result"]["indexes"]}
    assert leftovers(server.serverdir) == []

    # and it takes writes again, with a serial that moves on
    after = upload(
        server.url, "root/dev", ("root", token), make_wheel(DistSpec("after-crash", "1.0"))
    )
    assert after.status_code == 200
    assert int(after.headers["X-DEVPI-SERIAL"]) == serial + 1
    conn = sqlite3.connect(f"file:{server.serverdir / 'metadata.sqlite'}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
