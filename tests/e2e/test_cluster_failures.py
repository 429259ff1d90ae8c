"""Failures in a real cluster (contrib/cluster/local-cluster.sh: three nodes on PostgreSQL and
moto's S3 server behind HAProxy): a node SIGKILLed while it fills a mirror file or runs a push,
PostgreSQL stopped under load, a bounded chaos loop killing and restarting nodes, and the script
run by a normal user.

After each: every acknowledged write is there, ``devpi-core fsck`` is clean, no request for
acknowledged data got a 404 and no download got wrong bytes. Clients may retry connection
errors, 502 and 503 (what a load balancer in front of a dying node gives them). Each test
restarts what it killed, so none depends on another's order.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import random
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from cluster_run import (
    PASSWORD,
    Cluster,
    new_index,
    require_components,
    running_cluster,
    upload,
    wait_for,
)

from devpi_core.testing.dists import Dist, DistSpec, make_wheel
from devpi_core.testing.plugin import (
    FAST_HASHING,
    OUTBOUND_ALLOW_LOOPBACK,
    clean_env,
    missing_component,
    tool_path,
    write_config,
)
from devpi_core.testing.upstream import FakeUpstream

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)
JSON = "application/vnd.pypi.simple.v1+json"
RETRY = 30.0  # how long a client keeps retrying connection errors, 502 and 503
CHAOS_SECONDS = 10.0
# Readers check files acknowledged at least this long ago. Nodes see other nodes' commits
# within the serial bound (0.1 s; the lag itself is measured by the store contract tests and
# benchmarks/cluster_bench.py), which a loaded 2-core machine can stretch: what is checked
# here is that acknowledged data never goes missing, not how fast it shows.
VISIBLE_WITHIN = 2.0
CHAOS_SEED = int(os.environ.get("DEVPI_CORE_CHAOS_SEED", "20261207"))
TEST_USER = "devpi-pgtest"  # the system user local-cluster.sh itself creates when root


class Retryable(Exception):
    """A failure a client may retry: connection error, broken transfer, 502 or 503."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_components()
    base = tmp_path_factory.mktemp("cluster-failures")
    extra = write_config(base / "extra.yml", {
        "server": {"outbound_allow": list(OUTBOUND_ALLOW_LOOPBACK)},
        "plugins": {
            "passwd": dict(FAST_HASHING),
            # files stream while they are fetched (a small file is otherwise checked whole first)
            "mirror": {"init_root_pypi": False, "verify_before_send": "64K"},
        },
    })
    env = clean_env(DEVPI_CORE_VENV=sys.prefix, DEVPI_CORE_CLUSTER_CONFIG=str(extra))
    with running_cluster(base / "run", env, 3) as made:
        yield made


def retrying(call: Callable[[], requests.Response], timeout: float = RETRY) -> requests.Response:
    """``call()`` until it answers something other than 502/503 or a broken connection."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = call()
            if response.status_code not in (502, 503):
                return response
            last: object = response.status_code
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.Timeout) as exc:
            last = exc
        assert time.monotonic() < deadline, f"still failing after {timeout} s: {last}"
        time.sleep(0.1)


def page_files(url: str, index: str, project: str) -> dict[str, str] | None:
    """filename -> absolute file URL on the JSON simple page (None: the page is a 404)."""
    page_url = f"{url}/{index}/+simple/{project}/"
    response = retrying(lambda: requests.get(page_url, headers={"Accept": JSON}, timeout=10))
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return {f["filename"]: urljoin(page_url, f["url"]) for f in response.json()["files"]}


def fetch(url: str) -> bytes:
    """A whole file through ``url`` (retrying what may be retried); fails on anything but 200."""
    response = retrying(lambda: requests.get(url, timeout=30))
    assert response.status_code == 200, (url, response.status_code, response.text[:200])
    return response.content


def on(base: str, url: str) -> str:
    """``url`` (of one node) with the host and port of ``base`` (another node or the LB)."""
    parts = urlsplit(url)
    return base + parts.path


def make_mirror(cluster: Cluster, user: str, upstream: FakeUpstream) -> str:
    made = requests.put(f"{cluster.lb}/{user}/mirror", json={
        "type": "mirror", "mirror_url": upstream.url,
    }, auth=(user, PASSWORD), timeout=30)
    assert made.status_code == 200, made.text
    return f"{user}/mirror"


def big_dist(filename: str, size: int) -> Dist:
    return Dist(filename, random.Random(filename).randbytes(size))


def restart_all(cluster: Cluster) -> None:
    """Start every killed node again and wait until HAProxy has them all UP."""
    for i in range(1, cluster.nodes + 1):
        if not Path(f"/proc/{cluster.pid(i)}").exists() or _zombie(cluster.pid(i)):
            cluster.restart(i)
    for i in range(1, cluster.nodes + 1):
        cluster.wait_state(f"node{i}", "UP")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


def test_sigkill_mid_fill_breaks_the_transfer_and_a_retry_gets_the_whole_file(
    cluster: Cluster,
) -> None:
    user, _index = new_index(cluster.lb)
    big = big_dist("slowfill-1.0-py3-none-any.whl", 2 << 20)
    victim = 2
    with FakeUpstream() as upstream:
        upstream.add("slowfill", big)
        upstream.faults.only, upstream.faults.slow_body = "/files/", 0.03  # 32 chunks: ~1 s
        mirror = make_mirror(cluster, user, upstream)
        url = page_files(cluster.node(victim), mirror, "slowfill")
        assert url is not None
        file_url = url[big.filename]
        got = bytearray()
        broken: BaseException | None = None
        killed = False
        try:
            with requests.get(file_url, stream=True, timeout=30) as response:
                assert response.status_code == 200, response.text
                for chunk in response.iter_content(16 << 10):
                    got += chunk
                    if not killed and len(got) >= len(big.content) // 2:
                        cluster.kill(victim)
                        killed = True
        except requests.RequestException as exc:
            broken = exc
        assert killed, f"the transfer ended at {len(got)} bytes before the kill"
        # a broken transfer, never a complete-looking file; what arrived are the right bytes
        assert broken is not None, f"no error after {len(got)} of {len(big.content)} bytes"
        assert len(got) < len(big.content)
        assert bytes(got) == big.content[: len(got)]

        with ThreadPoolExecutor(1) as pool:  # the node starts again meanwhile (takes seconds)
            restarted = pool.submit(cluster.restart, victim)
            upstream.faults.slow_body = 0
            content = fetch(on(cluster.lb, file_url))
            assert hashlib.sha256(content).hexdigest() == big.sha256
            cluster.assert_fsck_clean()
            restarted.result()
    restart_all(cluster)
    # the restarted node serves the filled file
    assert hashlib.sha256(fetch(file_url)).hexdigest() == big.sha256


def test_sigkill_mid_push_leaves_all_or_nothing_and_a_retry_pushes(cluster: Cluster) -> None:
    user, target = new_index(cluster.lb)
    wheel = make_wheel(DistSpec("slowpush", "1.0"))
    sdist = big_dist("slowpush-1.0.tar.gz", 1 << 20)
    victim = 1
    with FakeUpstream() as upstream:
        upstream.add("slowpush", wheel)
        upstream.add("slowpush", sdist)
        # the push fetches both files from the mirror's upstream before it stores anything
        upstream.faults.only, upstream.faults.slow_body = sdist.filename, 0.05
        mirror = make_mirror(cluster, user, upstream)
        body = {"name": "slowpush", "version": "1.0", "targetindex": target}
        outcome: list[object] = []

        def push(base: str) -> requests.Response:
            return requests.post(f"{base}/{mirror}", json=body, auth=(user, PASSWORD),
                                 timeout=60)

        def killed_push() -> None:
            try:
                outcome.append(push(cluster.node(victim)))
            except requests.RequestException as exc:
                outcome.append(exc)

        pusher = threading.Thread(target=killed_push)
        pusher.start()
        wait_for(lambda: upstream.count(sdist.filename) > 0 or outcome,
                 "the push never fetched the sdist")
        assert not outcome, [getattr(o, "text", o) for o in outcome]
        cluster.kill(victim)
        pusher.join(60)
        assert len(outcome) == 1
        assert isinstance(outcome[0], requests.RequestException), outcome  # no answer

        with ThreadPoolExecutor(1) as pool:  # the node starts again meanwhile (takes seconds)
            restarted = pool.submit(cluster.restart, victim)
            # all or nothing: no half release on the target index, on any node
            for base in (cluster.lb, *(cluster.node(i) for i in (2, 3))):
                files = page_files(base, target, "slowpush") or {}
                assert set(files) in (set(), {wheel.filename, sdist.filename}), files
            cluster.assert_fsck_clean()

            upstream.faults.slow_body = 0
            pushed = retrying(lambda: push(cluster.lb))
            assert pushed.status_code == 200, pushed.text
            files = page_files(cluster.lb, target, "slowpush")
            assert files is not None
            assert set(files) == {wheel.filename, sdist.filename}
            for dist in (wheel, sdist):
                assert hashlib.sha256(fetch(files[dist.filename])).hexdigest() == dist.sha256
            restarted.result()
    cluster.assert_fsck_clean()
    restart_all(cluster)


class Traffic:
    """Writers uploading through the LB and readers checking acknowledged data, in threads.

    ``acknowledged`` maps every file a 200 acknowledged to its sha256; ``failures`` collects
    what must never happen (a 404 or a missing file for acknowledged data, wrong bytes, a status
    other than 200/502/503); ``statuses`` counts every status seen.
    """

    def __init__(self, cluster: Cluster, user: str, index: str, project: str) -> None:
        self.cluster, self.user, self.index, self.project = cluster, user, index, project
        self.acknowledged: dict[str, str] = {}
        self.acked_at: dict[str, float] = {}
        self.failures: list[str] = []
        self.statuses: dict[int, int] = {}
        self.downloads = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def _count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def _fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)

    def _call(self, call: Callable[[], requests.Response]) -> requests.Response:
        """One attempt: a response with a final status, or :class:`Retryable`."""
        try:
            response = call()
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.Timeout) as exc:
            raise Retryable(str(exc)) from None
        self._count(response.status_code)
        if response.status_code in (502, 503):
            raise Retryable(str(response.status_code))
        if response.status_code >= 500:
            self._fail(f"{response.status_code} for {response.url}: {response.text[:200]}")
            raise Retryable(str(response.status_code))
        return response

    def writer(self, tag: str) -> None:
        n = 0
        while not self.stop.is_set():
            dist = make_wheel(DistSpec(self.project, f"{tag}.{n}"))
            n += 1
            deadline = time.monotonic() + RETRY
            while time.monotonic() < deadline:
                try:
                    response = self._call(lambda d=dist: upload(  # type: ignore[misc]
                        self.cluster.lb, self.user, self.index, d, timeout=15))
                except Retryable:
                    if self.stop.wait(0.1):
                        break
                    continue
                if response.status_code == 200:
                    with self.lock:
                        self.acknowledged[dist.filename] = dist.sha256
                        self.acked_at[dist.filename] = time.monotonic()
                elif response.status_code != 409:  # 409: an earlier, unanswered try stored it
                    self._fail(f"upload {dist.filename}: {response.status_code} {response.text}")
                break

    def reader(self, bases: list[str], seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            settled = time.monotonic() - VISIBLE_WITHIN
            with self.lock:
                known = {name: sha256 for name, sha256 in self.acknowledged.items()
                         if self.acked_at.get(name, 0.0) <= settled}
            if not known:
                self.stop.wait(0.05)
                continue
            base = rng.choice(bases)
            page_url = f"{base}/{self.index}/+simple/{self.project}/"
            try:
                page = self._call(lambda u=page_url: requests.get(  # type: ignore[misc]
                    u, headers={"Accept": JSON}, timeout=10))
            except Retryable:
                self.stop.wait(0.1)
                continue
            if page.status_code != 200:
                self._fail(f"{page.status_code} for the page of acknowledged files on {base}")
                continue
            links = {f["filename"]: urljoin(page_url, f["url"]) for f in page.json()["files"]}
            missing = sorted(set(known) - set(links))
            if missing:
                self._fail(f"acknowledged {missing} not on the page from {base}")
                continue
            name = rng.choice(sorted(known))
            try:
                got = self._call(lambda u=links[name]: requests.get(  # type: ignore[misc]
                    u, timeout=10))
            except Retryable:
                continue
            if got.status_code != 200:
                self._fail(f"{got.status_code} for acknowledged {name} on {base}")
            elif hashlib.sha256(got.content).hexdigest() != known[name]:
                self._fail(f"wrong bytes for {name} from {base} ({len(got.content)} bytes)")
            else:
                with self.lock:
                    self.downloads += 1

    def start(self, writers: int, readers: list[list[str]]) -> None:
        for w in range(writers):
            self.threads.append(threading.Thread(target=self.writer, args=(f"{w + 1}",)))
        for r, bases in enumerate(readers):
            self.threads.append(threading.Thread(target=self.reader, args=(bases, r)))
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(RETRY + 30)
            assert not thread.is_alive()

    def acknowledged_count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def check_everywhere(self) -> None:
        """Every acknowledged file is listed on every node and has its bytes."""
        assert not self.failures, self.failures
        for i in range(1, self.cluster.nodes + 1):
            wait_for(lambda i=i: set(self.acknowledged) <= set(  # type: ignore[misc]
                page_files(self.cluster.node(i), self.index, self.project) or ()),
                f"acknowledged files missing on node {i}", timeout=VISIBLE_WITHIN)
        files = page_files(self.cluster.lb, self.index, self.project) or {}
        for name, sha256 in self.acknowledged.items():
            assert hashlib.sha256(fetch(files[name])).hexdigest() == sha256, name


def _ready(url: str) -> int | None:
    try:
        return requests.get(f"{url}/+ready", timeout=5).status_code
    except requests.RequestException:
        return None


def test_postgresql_restart_is_a_503_and_the_nodes_recover_by_themselves(
    cluster: Cluster,
) -> None:
    user, index = new_index(cluster.lb)
    first = make_wheel(DistSpec("pgrestart", "0.1"))
    assert upload(cluster.lb, user, index, first).status_code == 200
    nodes = [cluster.node(i) for i in range(1, cluster.nodes + 1)]

    def serves_first(url: str) -> bool:
        try:
            files = page_files(url, index, "pgrestart")
        except AssertionError:
            return False
        return files is not None and first.filename in files

    # idle: PostgreSQL restarts; every node serves again without being touched
    cluster.postgres("restart")
    for url in nodes:
        wait_for(lambda u=url: _ready(u) == 200, f"{url} not ready after the restart")
        assert serves_first(url)

    # under load: writers through the LB, readers on each node directly while it is down
    traffic = Traffic(cluster, user, index, "pgrestart")
    traffic.acknowledged[first.filename] = first.sha256
    traffic.start(2, [nodes, [cluster.lb]])
    try:
        before = traffic.acknowledged_count()
        wait_for(lambda: traffic.acknowledged_count() >= before + 3, "no writes acknowledged")
        cluster.postgres("stop")
        outage = time.monotonic()
        wait_for(lambda: all(_ready(url) == 503 for url in nodes),
                 "the nodes do not answer 503 while PostgreSQL is down")
        wait_for(lambda: traffic.statuses.get(503, 0) > 0, "no request got a 503 in the outage")
        during = traffic.acknowledged_count()
        cluster.postgres("start")
        started = time.monotonic()
        for url in nodes:
            wait_for(lambda u=url: _ready(u) == 200, f"{url} did not recover", timeout=15)
        wait_for(lambda: traffic.acknowledged_count() >= during + 3,
                 "writes are not acknowledged again after PostgreSQL is back", timeout=15)
        recovered = time.monotonic() - started
    finally:
        traffic.finish()
    log.info("outage %.1f s; writes acknowledged again %.1f s after the start; statuses %s",
             started - outage, recovered, traffic.statuses)
    assert 500 not in traffic.statuses, traffic.statuses
    traffic.check_everywhere()
    cluster.assert_fsck_clean()


def test_chaos_loop_kills_and_restarts_nodes_without_losing_or_corrupting(
    cluster: Cluster,
) -> None:
    user, index = new_index(cluster.lb)
    rng = random.Random(CHAOS_SEED)
    traffic = Traffic(cluster, user, index, "chaos")
    nodes = list(range(1, cluster.nodes + 1))
    kills: list[int] = []
    down: set[int] = set()
    killer_error: list[BaseException] = []
    restarts: list[threading.Thread] = []

    def restart(i: int) -> None:
        try:
            cluster.restart(i)
        except (AssertionError, OSError, subprocess.SubprocessError) as exc:  # to the test
            killer_error.append(exc)
        finally:
            with traffic.lock:
                down.discard(i)

    def killer() -> None:
        # a random node that is up, every 0.3-1.2 s, restarted in the background (a start takes
        # seconds); never all at once: at least one node stays up
        while not traffic.stop.wait(rng.uniform(0.3, 1.2)):
            with traffic.lock:
                up = [i for i in nodes if i not in down]
                if len(up) < 2:
                    continue
                victim = rng.choice(up)
                down.add(victim)
            try:
                cluster.kill(victim)
            except AssertionError as exc:
                killer_error.append(exc)
                return
            kills.append(victim)
            restarts.append(threading.Thread(target=restart, args=(victim,)))
            restarts[-1].start()

    traffic.start(2, [[cluster.lb], [cluster.lb]])
    chaos = threading.Thread(target=killer)
    began = time.monotonic()
    chaos.start()
    try:
        traffic.stop.wait(CHAOS_SECONDS)
    finally:
        traffic.stop.set()
        chaos.join(60)
        for thread in restarts:
            thread.join(120)
        traffic.finish()
    log.info("seed %d: %d kills in %.1f s %s; %d writes acknowledged, %d downloads checked; "
             "statuses %s", CHAOS_SEED, len(kills), time.monotonic() - began, kills,
             len(traffic.acknowledged), traffic.downloads, traffic.statuses)
    assert not killer_error, killer_error
    assert len(kills) >= 2, kills
    assert traffic.acknowledged, traffic.statuses
    assert traffic.downloads > 0
    restart_all(cluster)
    traffic.check_everywhere()
    cluster.assert_fsck_clean()


# -- the script as a normal user ----------------------------------------------------------------
def _system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run([tool_path("useradd"), "--system", "--no-create-home", "--shell",
                        "/bin/sh", TEST_USER], check=True, capture_output=True)
        return pwd.getpwnam(TEST_USER)


def _venv_for(directory: Path) -> Path:
    """A venv another user can run: this Python's version from a system-wide interpreter, seeing
    the test venv's packages through a ``.pth`` file, with the two scripts the cluster needs.

    The test venv itself may not do: its interpreter can live where only root reads (pyenv under
    /root). Nothing is installed; the packages are the ones under test."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    python = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if python is None or Path(python).resolve().is_relative_to("/root"):
        missing_component(f"no system-wide {version} for a venv another user can run")
    subprocess.run([python, "-m", "venv", "--without-pip", str(directory)], check=True,
                   capture_output=True)
    site = directory / "lib" / version / "site-packages"
    packages = sysconfig.get_paths()["purelib"]
    (site / "devpi-test-venv.pth").write_text(f"import site; site.addsitedir({packages!r})\n")
    for name in ("devpi-core", "moto_server"):
        source = (Path(sys.prefix) / "bin" / name).read_text().split("\n", 1)[1]
        script = directory / "bin" / name
        script.write_text(f"#!{directory}/bin/python\n{source}")
        script.chmod(0o755)
    return directory


def _owner(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_the_cluster_script_runs_as_a_normal_user(tmp_path_factory: pytest.TempPathFactory) -> None:
    require_components()
    runner: list[str] = []
    if os.getuid() == 0:  # as root: a system user with a venv it can run, in a directory it owns
        account = _system_user()
        base = Path(tempfile.mkdtemp(prefix="devpi-cluster-user.", dir="/tmp"))
        os.chown(base, account.pw_uid, account.pw_gid)
        venv = str(_venv_for(base / "venv"))
        runner = [tool_path("runuser"), "-u", TEST_USER, "--"]
        uid = account.pw_uid
    else:
        base = tmp_path_factory.mktemp("cluster-user")
        venv, uid = sys.prefix, os.getuid()
    try:
        extra = write_config(base / "extra.yml", {"plugins": {"passwd": dict(FAST_HASHING)}})
        env = clean_env(base, DEVPI_CORE_VENV=venv, DEVPI_CORE_CLUSTER_CONFIG=str(extra))
        with running_cluster(base / "run", env, 1, runner) as cluster:
            postgres = int((cluster.directory / "postgres.pid").read_text())
            moto = int((cluster.directory / "moto.pid").read_text())
            haproxy = int((cluster.directory / "haproxy.pid").read_text())
            pids = [cluster.pid(1), postgres, moto, haproxy]
            assert [_owner(pid) for pid in pids] == [uid] * 4
            user, index = new_index(cluster.lb)
            dist = make_wheel(DistSpec("asuser", "1.0"))
            assert upload(cluster.lb, user, index, dist).status_code == 200
            files = page_files(cluster.lb, index, "asuser")
            assert files is not None
            assert hashlib.sha256(fetch(files[dist.filename])).hexdigest() == dist.sha256
        for pid in pids:
            wait_for(lambda p=pid: not Path(f"/proc/{p}").exists() or _zombie(p),
                     f"process {pid} survived stop")
    finally:
        if runner:
            shutil.rmtree(base, ignore_errors=True)

