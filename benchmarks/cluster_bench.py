"""A cluster through HAProxy: scaling of warm pages, consistency lag, node loss, cold lock.

Usage: ``.venv/bin/python benchmarks/cluster_bench.py [--seconds 10] [--projects 20]
[--lag-samples 200] [--cold-rounds 2] [--cold-upstream fake|real] [--phases scaling,lag,loss,cold]
[--wrk t2,t1,t1-pinned]``.
Starts ``contrib/cluster/local-cluster.sh`` with two nodes (PostgreSQL, moto, HAProxy; see
docs/scale-out.rst), uploads one wheel to each of ``--projects`` projects, warms every simple
page on every node, then:

- scaling: wrk (c=8) rotating over the simple pages through HAProxy, first with node2 disabled
  in HAProxy (runtime API: ``disable server nodes/node2``), then with both nodes, for each wrk
  variant (``-t2``, ``-t1``, ``-t1`` pinned to CPU 1 with ``taskset``); the CPU seconds of wrk,
  HAProxy, each node, PostgreSQL (postmaster and backends) and moto over each run, read from
  ``/proc``, the machine's busy CPU seconds (``/proc/stat``: other work included), and
  PostgreSQL's transactions per request (``pg_stat_database``: every statement a node runs
  in autocommit is one);
- lag: a new index is created on node1 (``PUT``); from its 200, node2 is asked for it until it
  answers 200; p50 and p99 of that time over ``--lag-samples`` writes;
- loss: four keep-alive clients GET the pages through HAProxy; node2 is SIGKILLed; failed
  requests (non-2xx, connection errors) are counted until HAProxy marks node2 DOWN and after,
  with the detection time; node2 is restarted afterwards;
- cold: ``pip download --no-deps`` of mirror_bench's quick lock (30 wheels from a local fake
  upstream; ``--cold-upstream real``: PEERS.md's 91-wheel lock from the real index) from a
  fresh mirror index, through HAProxy and through a single default node (SQLite and files),
  alternately for ``--cold-rounds``: wall time, pip's and the servers' CPU.

Prints tables; the cluster is stopped at the end.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cluster_phases
import harness

from devpi_core.testing.dists import DistSpec, make_wheel

SCRIPT = harness.ROOT / "contrib" / "cluster" / "local-cluster.sh"
PASSWORD = "bench"
FAST_HASHING = (
    "plugins:\n  passwd:\n    argon2_time_cost: 1\n    argon2_memory_cost: 8\n"
    "    argon2_parallelism: 1\n"
)
# the cold-lock phase mirrors a fake upstream on loopback, which mirrors may not reach by default
CLUSTER_EXTRA = "server:\n  outbound_allow: ['127.0.0.1']\n"


def cluster(command: str, directory: Path, *args: str, extra: Path | None = None) -> str:
    env = harness.clean_env(DEVPI_CORE_VENV=sys.prefix)
    if extra is not None:
        env["DEVPI_CORE_CLUSTER_CONFIG"] = str(extra)
    done = subprocess.run(["bash", str(SCRIPT), command, str(directory), *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"local-cluster.sh {command}: {done.stdout}{done.stderr}")
    return done.stdout


def haproxy(directory: Path, command: str) -> str:
    """One command on HAProxy's runtime API (the admin socket in the cluster directory)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(directory / "haproxy.sock"))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def node_status(directory: Path, name: str) -> str:
    """HAProxy's status of one server of backend ``nodes`` (UP, DOWN, MAINT, ...)."""
    rows = csv.DictReader(io.StringIO(haproxy(directory, "show stat").lstrip("# ")))
    return next(r["status"] for r in rows if r["pxname"] == "nodes" and r["svname"] == name)


def populate(lb: str, projects: int) -> tuple[str, list[str]]:
    user = f"bench{os.getpid()}"
    assert requests.put(f"{lb}/{user}", json={"password": PASSWORD}, timeout=30).status_code == 201
    auth = (user, PASSWORD)
    assert requests.put(f"{lb}/{user}/dev", json={}, auth=auth, timeout=30).status_code == 200
    paths = []
    for n in range(projects):
        dist = make_wheel(DistSpec(f"cbench{n}", "1.0"))
        response = requests.post(
            f"{lb}/{user}/dev/",
            data={":action": "file_upload", "name": f"cbench{n}", "version": "1.0"},
            files={"content": (dist.filename, io.BytesIO(dist.content))},
            auth=auth, timeout=60,
        )
        assert response.status_code == 200, response.text
        paths.append(f"/{user}/dev/+simple/cbench{n}/")
    return user, paths


def lag(node1: str, node2: str, user: str, samples: int) -> list[float]:
    """Milliseconds from a 200 on node1 to the first 200 for the same thing on node2."""
    auth = (user, PASSWORD)
    writer, reader = requests.Session(), requests.Session()
    found = []
    for n in range(samples):
        made = writer.put(f"{node1}/{user}/lag{n}", json={}, auth=auth, timeout=30)
        assert made.status_code == 200, made.text
        acked = time.perf_counter()
        deadline = acked + 10
        while reader.get(f"{node2}/{user}/lag{n}", timeout=30).status_code != 200:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{user}/lag{n} not on node2 after 10 s")
        found.append((time.perf_counter() - acked) * 1000)
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def scaling(cluster: cluster_phases.Cluster, base: Path, paths: list[str], seconds: int,
            variants: list[tuple[str, int, list[str]]]) -> None:
    """Warm pages through HAProxy on 1 and 2 nodes, with the CPU seconds of every process (wrk,
    haproxy, each node, postgres) and PostgreSQL's transactions per request."""
    directory, dsn = cluster.directory, cluster.values["PG_DSN"]
    script = harness.rotate_script(base, paths)
    rows, cpu_rows = [], []
    for label, command in (("1 node", "disable server nodes/node2"),
                           ("2 nodes", "enable server nodes/node2")):
        haproxy(directory, command)
        want = "MAINT" if command.startswith("disable") else "UP"
        deadline = time.monotonic() + 30
        while node_status(directory, "node2") != want:
            if time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy did not apply {command!r}")
            time.sleep(0.05)
        harness.wrk(cluster.lb, seconds=2, connections=8, script=script)  # settle
        for variant, threads, prefix in variants:
            readers = dict(cluster.processes(2))
            readers["wrk"] = cluster_phases.children_cpu
            xacts = cluster_phases.pg_transactions(dsn)
            window = cluster_phases.CpuWindow(readers).start()
            result = harness.wrk(cluster.lb, seconds=seconds, connections=8, threads=threads,
                                 script=script, prefix=prefix)
            window.stop()
            time.sleep(1.5)  # PostgreSQL publishes its counters within a second (not a sync)
            statements = cluster_phases.pg_transactions(dsn) - xacts - 1
            total = result.requests_per_s * window.wall
            used = window.used
            rows.append((f"{label}, {variant}", result.requests_per_s, result.p50_ms,
                         result.p99_ms, result.errors + result.non_2xx, statements / total))
            cpu_rows.append((f"{label}, {variant}", *(used[k] for k in CPU_COLUMNS),
                             sum(used.values()), window.machine, window.wall,
                             sum(used.values()) / total * 1e6))
            print(f"{label}, {variant}: {result.requests_per_s:,.0f} req/s, CPU "
                  + ", ".join(f"{k} {v:.1f}" for k, v in used.items()), file=sys.stderr)
    print(harness.table("warm simple pages through HAProxy (wrk c=8)",
                        ("backend, wrk", "req/s", "p50 ms", "p99 ms", "errors",
                         "pg xacts/req"), rows))
    print(harness.table("CPU seconds over each run (from /proc)",
                        ("backend, wrk", *CPU_COLUMNS, "sum", "machine", "wall s",
                         "us CPU/req"), cpu_rows))
    half = len(rows) // 2
    for n in range(half):
        print(f"2 nodes / 1 node ({variants[n][0]}): {rows[half + n][1] / rows[n][1]:.2f}x")
    print()


def node_loss(nodes: cluster_phases.Cluster, paths: list[str]) -> None:
    """SIGKILL node2 under load; print what failed; start node2 again."""
    directory = nodes.directory
    loss = cluster_phases.node_loss(nodes, paths, lambda name: node_status(directory, name))
    print(harness.table(
        "node loss: SIGKILL node2 under steady GETs through HAProxy (4 clients)",
        ("requests", "req/s", "failed before", "failed kill->DOWN",
         "failed after DOWN", "detection s"),
        [(loss.requests, loss.rate, loss.before, loss.failed_until_down,
          loss.failed_after_down, loss.detection_s)]))
    if loss.failures:
        print(f"failures: {loss.failures}\n")
    cluster("restart-node", directory, "2")


def cold_lock(nodes: cluster_phases.Cluster, base: Path, rounds: int, *, real: bool) -> None:
    """The cold lock through the cluster and through a single default node."""
    runs = cluster_phases.cold_lock(nodes, base / "cold", rounds, real=real)
    upstream = "the real index" if real else "local fake upstream"
    best: dict[str, cluster_phases.ColdRun] = {}
    for run in runs:
        if run.label not in best or run.seconds < best[run.label].seconds:
            best[run.label] = run
    print(harness.table(
        f"cold lock: pip download --no-deps from a fresh mirror index ({upstream})",
        ("server", "wall s", "files", "pip CPU s", "server CPU s", "by process"),
        [(r.label, r.seconds, r.files, r.client_cpu, sum(r.server_cpu.values()),
          " ".join(f"{k}={v:.1f}" for k, v in r.server_cpu.items())) for r in runs]))
    if len(best) == 2:
        ratio = best["cluster (2 nodes)"].seconds / best["single node"].seconds
        print(f"cluster / single node (best of {rounds}): {ratio:.2f}x\n")


CPU_COLUMNS = ("wrk", "haproxy", "node1", "node2", "postgres", "moto")
VARIANTS = {
    "t2": ("wrk -t2", 2, []),
    "t1": ("wrk -t1", 1, []),
    "t1-pinned": ("wrk -t1 on cpu1", 1, ["taskset", "-c", "1"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--lag-samples", type=int, default=200)
    parser.add_argument("--cold-rounds", type=int, default=2)
    parser.add_argument("--cold-upstream", choices=("fake", "real"), default="fake",
                        help="the cold phase's upstream: the quick lock from a local fake, or "
                             "PEERS.md's 91-wheel lock from the real index (needs the network)")
    parser.add_argument("--phases", default="scaling,lag,loss,cold",
                        help="comma-separated: scaling, lag, loss, cold")
    parser.add_argument("--wrk", default="t2,t1,t1-pinned",
                        help=f"wrk variants of the scaling phase: {', '.join(VARIANTS)}")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    base = harness.workdir("cluster")
    extra = base / "extra.yml"
    extra.write_text(FAST_HASHING + CLUSTER_EXTRA)
    directory = base / "run"
    values = dict(line.split("=", 1) for line in
                  cluster("start", directory, "2", extra=extra).splitlines() if "=" in line)
    nodes = cluster_phases.Cluster(directory, values)
    try:
        lb, node1, node2 = values["LB_URL"], values["NODE1_URL"], values["NODE2_URL"]
        user, paths = populate(lb, args.projects)
        with requests.Session() as session:  # warm every page on every node
            for url in (node1, node2):
                for path in paths:
                    assert session.get(url + path, timeout=30).status_code == 200
        if "scaling" in phases:
            scaling(nodes, base, paths, args.seconds,
                    [VARIANTS[name] for name in args.wrk.split(",")])
        if "lag" in phases:
            lags = lag(node1, node2, user, args.lag_samples)
            print(harness.table("consistency lag: PUT on node1 acknowledged -> 200 on node2",
                                ("samples", "p50 ms", "p99 ms", "max ms", "mean ms"),
                                [(len(lags), percentile(lags, 0.5), percentile(lags, 0.99),
                                  max(lags), statistics.mean(lags))]))
        if "loss" in phases:
            node_loss(nodes, paths)
        if "cold" in phases:
            cold_lock(nodes, base, args.cold_rounds, real=args.cold_upstream == "real")
    finally:
        cluster("stop", directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
