"""A real cluster through HAProxy: contrib/cluster/local-cluster.sh with three nodes on PostgreSQL
and moto's S3 server, driven by twine, pip, uv and plain HTTP.

One cluster per module (its start is most of the module's time). Tests use their own users and
indexes; the node-kill test restarts the node it killed, so no test depends on another's order.
"""

from __future__ import annotations

import base64
import http.client
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from cluster_run import (
    DEADLINE,
    PASSWORD,
    Cluster,
    gone,
    listed,
    new_index,
    require_components,
    run_tool,
    running_cluster,
    upload,
)

from devpi_core.testing.devpiclient import DevpiCLI, setup_user, unique
from devpi_core.testing.dists import Dist, DistSpec, make_wheel
from devpi_core.testing.plugin import FAST_HASHING, bin_path, clean_env, write_config
from devpi_core.testing.upstream import FakeUpstream

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_components()
    base = tmp_path_factory.mktemp("cluster")
    extra = write_config(base / "extra.yml", {"plugins": {"passwd": dict(FAST_HASHING)},
                                              "server": {"outbound_allow": ["127.0.0.1"]}})
    env = clean_env(DEVPI_CORE_VENV=sys.prefix, DEVPI_CORE_CLUSTER_CONFIG=str(extra))
    with running_cluster(base / "run", env, 3) as made:
        yield made


def test_twine_upload_on_one_node_installs_at_once_through_the_lb_and_another(
    cluster: Cluster, tmp_path: Path
) -> None:
    user, index = new_index(cluster.lb)
    wheel = make_wheel(DistSpec("clusterapp", "1.0", module_code="VALUE = 'cluster'\n"))
    path = wheel.write(tmp_path)
    run_tool([bin_path("twine"), "upload", "--non-interactive", "--disable-progress-bar",
              "--repository-url", f"{cluster.node(1)}/{index}/", "-u", user, "-p", PASSWORD,
              path], tmp_path)

    # acknowledged: every node and the LB list it on the first read, while installers run
    def pip() -> Path:
        target = tmp_path / "pip-target"
        run_tool([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps",
                  "--index-url", f"{cluster.lb}/{index}/+simple/", "--target", target,
                  "clusterapp==1.0"], tmp_path)
        return target

    def uv() -> Path:
        target = tmp_path / "uv-target"
        run_tool([bin_path("uv"), "pip", "install", "--no-cache", "--python", sys.executable,
                  "--index-url", f"{cluster.node(2)}/{index}/+simple/", "--target", target,
                  "clusterapp==1.0"], tmp_path)
        return target

    with ThreadPoolExecutor(6) as pool:
        installs = [pool.submit(pip), pool.submit(uv)]
        pages = [pool.submit(listed, url, index, "clusterapp")
                 for url in (cluster.node(2), cluster.node(3), cluster.lb, cluster.lb)]
        for page in pages:
            status, text = page.result()
            assert status == 200, text
            assert wheel.filename in text
        for install in installs:
            assert (install.result() / "clusterapp" / "__init__.py").read_text() == (
                "VALUE = 'cluster'\n"
            )


def test_devpi_client_through_the_lb_uploads_pushes_and_lists_on_every_node(
    cluster: Cluster, tmp_path: Path
) -> None:
    devpi = DevpiCLI.create(tmp_path / "devpi")
    user = setup_user(devpi, cluster.lb)
    made = user.api().request("PUT", f"{user.name}/prod", json={"bases": []})
    assert made.status_code == 200, made.text
    wheel = make_wheel(DistSpec("viaclient", "1.0"))
    devpi("upload", str(wheel.write(tmp_path)))
    devpi("push", "viaclient==1.0", f"{user.name}/prod")
    # what the LB acknowledged, every node shows at once: devpi-client asking each node, and
    # the pushed file's bytes from another node
    for i in range(1, cluster.nodes + 1):
        listed_here = devpi("list", "--index", f"{cluster.node(i)}/{user.name}/prod",
                            "viaclient").out
        assert wheel.filename in listed_here, (i, listed_here)
    page_url = f"{cluster.node(3)}/{user.name}/prod/+simple/viaclient/"
    page = requests.get(page_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"},
                        timeout=30)
    assert page.status_code == 200, page.text
    (entry,) = page.json()["files"]
    assert entry["filename"] == wheel.filename
    got = requests.get(urljoin(page_url, entry["url"]), timeout=30)
    assert got.status_code == 200
    assert got.content == wheel.content


def test_a_login_token_from_one_node_works_on_another(cluster: Cluster) -> None:
    user, _index = new_index(cluster.lb)
    login = requests.post(f"{cluster.node(1)}/+login",
                          json={"user": user, "password": PASSWORD}, timeout=30)
    assert login.status_code == 200, login.text
    token = login.json()["result"]["password"]

    def header(secret: str) -> dict[str, str]:
        return {"X-Devpi-Auth": base64.b64encode(f"{user}:{secret}".encode()).decode()}

    made = requests.put(f"{cluster.node(2)}/{user}/fromtoken", json={}, headers=header(token),
                        timeout=30)
    assert made.status_code == 200, made.text
    assert requests.get(f"{cluster.node(3)}/{user}/fromtoken", timeout=30).status_code == 200
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    refused = requests.put(f"{cluster.node(2)}/{user}/forged", json={}, headers=header(forged),
                           timeout=30)
    assert refused.status_code in (401, 403), refused.text


class _Killer:
    """A streamed multipart upload straight to one node, which is SIGKILLed half-way."""

    def __init__(self, url: str, path: str, pid: int, *, size: int, kill_after: int) -> None:
        self.url, self.path, self.pid = url, path, pid
        self.size, self.kill_after = size, kill_after
        self.sent = 0
        self.error: BaseException | None = None
        self.status: int | None = None

    def run(self, user: str, filename: str) -> None:
        boundary = "clusterkill"
        fields = {":action": "file_upload", "name": "bigfile", "version": "1.0",
                  "protocol_version": "1"}
        head = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in fields.items()
        )
        head += (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
                 f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n')
        tail = f"\r\n--{boundary}--\r\n".encode()
        split = urlsplit(self.url)
        conn = http.client.HTTPConnection(split.hostname, split.port, timeout=60)
        auth = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        try:
            conn.putrequest("POST", self.path)
            conn.putheader("Authorization", f"Basic {auth}")
            conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
            conn.putheader("Content-Length", str(len(head) + self.size + len(tail)))
            conn.endheaders(head.encode())
            chunk = os.urandom(1 << 20)
            while self.sent < self.size:
                if self.sent >= self.kill_after and self.pid:
                    os.kill(self.pid, signal.SIGKILL)
                    self.pid = 0
                conn.send(chunk)
                self.sent += len(chunk)
            conn.send(tail)
            self.status = conn.getresponse().status
        except OSError as exc:
            self.error = exc
        finally:
            conn.close()


def test_sigkill_mid_upload_loses_no_acknowledged_write(
    cluster: Cluster, tmp_path: Path
) -> None:
    user, index = new_index(cluster.lb)
    victim = 3
    acknowledged: list[str] = []
    failed: list[str] = []
    lock = threading.Lock()

    def writer(count: int, tag: str) -> None:
        for n in range(count):
            dist = make_wheel(DistSpec("ackd", f"{tag}.{n}"))
            response = upload(cluster.lb, user, index, dist)
            with lock:
                (acknowledged if response.status_code == 200 else failed).append(dist.filename)

    killer = _Killer(cluster.node(victim), f"/{index}/", cluster.pid(victim),
                     size=48 << 20, kill_after=16 << 20)
    big = threading.Thread(target=killer.run, args=(user, "bigfile-1.0-py3-none-any.whl"))
    writers = threading.Thread(target=writer, args=(8, "1"))
    big.start()
    writers.start()
    big.join(120)
    writers.join(120)
    assert killer.pid == 0, "the node was not killed"
    assert killer.status is None, f"the killed node answered {killer.status}"
    assert killer.error is not None, "the upload to the killed node did not break"
    assert killer.sent < killer.size, "the node was killed after the whole body was sent"
    assert acknowledged, failed

    deadline = time.monotonic() + DEADLINE
    while not gone(cluster.pid(victim)):
        assert time.monotonic() < deadline, "the killed node is still running"
        time.sleep(0.05)
    cluster.wait_state(f"node{victim}", "DOWN")

    # with the node out, every new request through the LB succeeds, and nothing is missing
    writer(3, "2")
    assert not [name for name in failed if name.startswith("ackd-2.")], failed
    for _ in range(6):
        status, text = listed(cluster.lb, index, "ackd")
        assert status == 200
        assert all(name in text for name in acknowledged), (acknowledged, text)
    assert listed(cluster.lb, index, "bigfile")[0] == 404

    cluster.assert_fsck_clean()

    cluster.restart(victim)
    cluster.wait_state(f"node{victim}", "UP")
    status, text = listed(cluster.node(victim), index, "ackd")
    assert status == 200
    assert all(name in text for name in acknowledged)


# -- mirror fills across nodes (fill lease) ---------------------------------------------------


def test_a_cold_mirror_file_asked_on_every_node_at_once_is_fetched_once(
    cluster: Cluster,
) -> None:
    dist = Dist("coldfile-1.0-py3-none-any.whl", os.urandom(1 << 20))
    with FakeUpstream() as upstream:
        upstream.add("coldfile", dist)
        upstream.faults.slow_body, upstream.faults.only = 0.03, "/files/"  # about 0.5 s
        user = unique("m")
        created = requests.put(f"{cluster.lb}/{user}", json={"password": PASSWORD}, timeout=30)
        assert created.status_code == 201, created.text
        created = requests.put(f"{cluster.lb}/{user}/up", auth=(user, PASSWORD), timeout=30,
                               json={"type": "mirror", "mirror_url": upstream.url})
        assert created.status_code == 200, created.text
        page = requests.get(f"{cluster.node(1)}/{user}/up/+simple/coldfile/", timeout=30,
                            headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        assert page.status_code == 200, page.text
        href = page.json()["files"][0]["url"]
        urls = [requests.compat.urljoin(f"{cluster.node(1 + n % 3)}/{user}/up/+simple/coldfile/",
                                        href.replace(cluster.node(1), cluster.node(1 + n % 3)))
                for n in range(30)]
        start = threading.Barrier(30)

        def fetch(url: str) -> tuple[int, bytes]:
            start.wait(30)
            response = requests.get(url, timeout=60)
            return response.status_code, response.content

        with ThreadPoolExecutor(30) as pool:
            answers = list(pool.map(fetch, urls))
        assert [status for status, _ in answers] == [200] * 30
        assert all(body == dist.content for _, body in answers), "a client got wrong bytes"
        assert upstream.count("/files/") == 1, "one upstream GET for the whole cluster"
