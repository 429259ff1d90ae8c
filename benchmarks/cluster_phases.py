"""Phases of ``cluster_bench.py``: CPU accounting of the cluster's processes, PostgreSQL's
transaction count, the cold lock (cluster vs a single default node) and node loss.

Everything runs on 127.0.0.1 against a cluster from ``contrib/cluster/local-cluster.sh``.
"""

from __future__ import annotations

import base64
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mirror_bench

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

CLK = os.sysconf("SC_CLK_TCK")


# -- CPU seconds from /proc -------------------------------------------------------------------
def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True, check=False).stdout
    return [int(v) for v in out.split()]


def process_cpu(pid: int, *, tree: bool = False) -> float:
    """User + system CPU seconds of ``pid``; with ``tree``, plus its live children and the
    children it has reaped (PostgreSQL's backends under the postmaster)."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if tree:
        ticks += int(fields[13]) + int(fields[14])
        for child in _children(pid):
            child_fields = _stat(child)
            if child_fields:
                ticks += int(child_fields[11]) + int(child_fields[12])
    return ticks / CLK


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLK, sum(values) / CLK


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children (wrk, pip)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Cluster:
    """What ``local-cluster.sh start`` printed, and the directory it keeps its PIDs in."""

    directory: Path
    values: dict[str, str]

    @property
    def lb(self) -> str:
        return self.values["LB_URL"]

    def node_url(self, i: int) -> str:
        return self.values[f"NODE{i}_URL"]

    def node_pid(self, i: int) -> int:
        return int((self.directory / f"node{i}.pid").read_text())

    def pid(self, name: str) -> int:
        return int((self.directory / f"{name}.pid").read_text())

    def processes(self, nodes: int) -> dict[str, Callable[[], float]]:
        """CPU-seconds readers of every server-side process, by name."""
        found: dict[str, Callable[[], float]] = {
            f"node{i}": (lambda i=i: process_cpu(self.node_pid(i))) for i in range(1, nodes + 1)
        }
        found["haproxy"] = lambda: process_cpu(self.pid("haproxy"))
        found["postgres"] = lambda: process_cpu(self.pid("postgres"), tree=True)
        found["moto"] = lambda: process_cpu(self.pid("moto"))
        return found


@dataclass
class CpuWindow:
    """CPU seconds of named processes (and the machine) between ``start()`` and ``stop()``."""

    readers: Mapping[str, Callable[[], float]]
    used: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    machine: float = 0.0

    def start(self) -> CpuWindow:
        self._before = {name: read() for name, read in self.readers.items()}
        self._machine = machine_busy()[0]
        self._wall = time.monotonic()
        return self

    def stop(self) -> CpuWindow:
        self.wall = time.monotonic() - self._wall
        self.machine = machine_busy()[0] - self._machine
        self.used = {name: read() - self._before[name] for name, read in self.readers.items()}
        return self


# -- PostgreSQL's own counters ----------------------------------------------------------------
def pg_transactions(dsn: str) -> int:
    """Committed plus rolled-back transactions of the database so far (every statement a
    node runs in autocommit is one); PostgreSQL publishes them within about a second."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


# -- cold lock ---------------------------------------------------------------------------------
def login(url: str, password: str) -> requests.Session:
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    reply = session.post(f"{url}/+login", json={"user": "root", "password": password}, timeout=60)
    assert reply.status_code == 200, reply.text
    token = reply.json()["result"]["password"]
    session.headers["X-Devpi-Auth"] = base64.b64encode(f"root:{token}".encode()).decode()
    return session


def mirror(url: str, password: str, name: str, upstream: str) -> str:
    """A new (cold) mirror index ``root/<name>`` of ``upstream``; its simple URL."""
    reply = login(url, password).put(f"{url}/root/{name}",
                                     json={"type": "mirror", "mirror_url": upstream}, timeout=60)
    assert reply.status_code in (200, 201), reply.text
    return f"{url}/root/{name}/+simple/"


@dataclass
class ColdRun:
    label: str
    seconds: float
    files: int
    client_cpu: float
    server_cpu: dict[str, float]


def forget(url: str, password: str, name: str, gc: list[str]) -> None:
    """Delete the mirror index ``root/<name>`` and collect its blobs at once (``gc`` is the
    ``devpi-core gc`` command of that server), so the next round's files are cold again: a
    new mirror of the same upstream would otherwise find every file's content stored."""
    started = time.monotonic()
    reply = login(url, password).delete(f"{url}/root/{name}", timeout=120)
    assert reply.status_code in (200, 201), reply.text
    print(f"deleted root/{name} in {time.monotonic() - started:.2f} s", file=sys.stderr)
    done = subprocess.run([*gc, "--grace", "0"], capture_output=True, text=True, check=False,
                          env=mirror_bench.clean_env())
    assert done.returncode == 0, done.stdout + done.stderr


def cold_lock(cluster: Cluster, work: Path, rounds: int, *, real: bool = False) -> list[ColdRun]:
    """``pip download --no-deps`` of the quick lock (local fake upstream) or, with ``real``,
    PEERS.md's 91-wheel lock (the real upstream) from a cold mirror index, alternately through
    the cluster's HAProxy and through a single default (SQLite + files) node."""
    work.mkdir(parents=True, exist_ok=True)
    load = mirror_bench.real_workload() if real else mirror_bench.quick_workload(work)
    single = mirror_bench.start("devpi-core", work / "single", load)
    core = str(mirror_bench.CORE_BIN / "devpi-core")
    single_gc = [core, "gc", "--serverdir", str(work / "single" / "core-serverdir"),
                 "--config", str(work / "single" / "core-config.yml")]
    cluster_gc = [core, "gc", "--serverdir", str(cluster.directory / "node1"),
                  "--config", cluster.values["CONFIG"]]
    runs = []
    try:
        password = cluster.values["ROOT_PASSWORD"]
        for n in range(rounds):
            targets: Sequence[
                tuple[str, str, str, Mapping[str, Callable[[], float]], list[str]]
            ] = (
                ("single node", single.url, "", {"node": single.cpu_seconds}, single_gc),
                ("cluster (2 nodes)", cluster.lb, password, cluster.processes(2), cluster_gc),
            )
            for label, url, root_password, readers, gc in targets:
                index = mirror(url, root_password, f"cold{n}", load.upstream_url)
                window = CpuWindow(readers).start()
                seconds, files, cpu = mirror_bench.pip_download(index, load, work / "dl")
                window.stop()
                runs.append(ColdRun(label, seconds, files, cpu, window.used))
                print(f"cold lock {label} round {n}: {seconds:.2f} s, {files} files, server "
                      f"CPU {sum(window.used.values()):.2f} s", file=sys.stderr)
                forget(url, root_password, f"cold{n}", gc)
    finally:
        single.stop()
        if load.fake is not None:
            load.fake.stop()
    return runs


# -- node loss ---------------------------------------------------------------------------------
@dataclass
class Outcome:
    at: float
    ok: bool
    what: str


def _load(url: str, paths: Sequence[str], stop: threading.Event, out: list[Outcome]) -> None:
    with requests.Session() as session:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                status = session.get(url + paths[i % len(paths)], timeout=10).status_code
                out.append(Outcome(time.monotonic(), 200 <= status < 300, str(status)))
            except requests.RequestException as exc:
                out.append(Outcome(time.monotonic(), False, type(exc).__name__))


@dataclass
class LossResult:
    requests: int
    before: int
    failed_until_down: int
    failed_after_down: int
    detection_s: float
    failures: dict[str, int]
    rate: float


def node_loss(cluster: Cluster, paths: Sequence[str], status: Callable[[str], str], *,
              threads: int = 4, settle: float = 2.0, after: float = 3.0) -> LossResult:
    """Steady GETs through HAProxy from ``threads`` keep-alive clients; SIGKILL node2; count
    failed requests (non-2xx, connection errors) until HAProxy marks node2 DOWN and after."""
    stop, outcomes = threading.Event(), []
    lists: list[list[Outcome]] = [[] for _ in range(threads)]
    workers = [threading.Thread(target=_load, args=(cluster.lb, paths, stop, lst), daemon=True)
               for lst in lists]
    begun = time.monotonic()
    for worker in workers:
        worker.start()
    time.sleep(settle)  # steady load before the kill (a duration to measure, not a wait)
    killed = time.monotonic()
    os.kill(cluster.node_pid(2), signal.SIGKILL)
    deadline = killed + 30
    while not status("node2").startswith("DOWN"):
        if time.monotonic() > deadline:
            raise RuntimeError("HAProxy did not mark node2 DOWN within 30 s")
        time.sleep(0.01)
    down = time.monotonic()
    time.sleep(after)
    stop.set()
    for worker in workers:
        worker.join()
    for lst in lists:
        outcomes.extend(lst)
    failures: dict[str, int] = {}
    for o in outcomes:
        if not o.ok:
            failures[o.what] = failures.get(o.what, 0) + 1
    return LossResult(
        requests=len(outcomes),
        before=sum(1 for o in outcomes if not o.ok and o.at < killed),
        failed_until_down=sum(1 for o in outcomes if not o.ok and killed <= o.at < down),
        failed_after_down=sum(1 for o in outcomes if not o.ok and o.at >= down),
        detection_s=down - killed,
        failures=failures,
        rate=len(outcomes) / (time.monotonic() - begun),
    )
