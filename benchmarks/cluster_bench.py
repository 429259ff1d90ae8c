"""A cluster through HAProxy: warm simple pages on 1 vs 2 nodes, and the consistency lag.

Usage: ``.venv/bin/python benchmarks/cluster_bench.py [--seconds 10] [--projects 20]
[--lag-samples 200]``. Starts ``contrib/cluster/local-cluster.sh`` with two nodes (PostgreSQL,
moto, HAProxy; see docs/scale-out.rst), uploads one wheel to each of ``--projects`` projects,
warms every simple page on every node, then:

- wrk (c=8, 2 threads) rotating over the simple pages through HAProxy, first with node2
  disabled in HAProxy (runtime API: ``disable server nodes/node2``), then with both nodes;
- the lag: a new index is created on node1 (``PUT``); from its 200, node2 is asked for it
  until it answers 200; p50 and p99 of that time over ``--lag-samples`` writes.

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

import harness

from devpi_core.testing.dists import DistSpec, make_wheel

SCRIPT = harness.ROOT / "contrib" / "cluster" / "local-cluster.sh"
PASSWORD = "bench"
FAST_HASHING = (
    "plugins:\n  passwd:\n    argon2_time_cost: 1\n    argon2_memory_cost: 8\n"
    "    argon2_parallelism: 1\n"
)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--lag-samples", type=int, default=200)
    args = parser.parse_args()
    base = harness.workdir("cluster")
    extra = base / "extra.yml"
    extra.write_text(FAST_HASHING)
    directory = base / "run"
    values = dict(line.split("=", 1) for line in
                  cluster("start", directory, "2", extra=extra).splitlines() if "=" in line)
    try:
        lb, node1, node2 = values["LB_URL"], values["NODE1_URL"], values["NODE2_URL"]
        user, paths = populate(lb, args.projects)
        with requests.Session() as session:  # warm every page on every node
            for url in (node1, node2):
                for path in paths:
                    assert session.get(url + path, timeout=30).status_code == 200
        script = harness.rotate_script(base, paths)
        rows = []
        for label, command in (("1 node", "disable server nodes/node2"),
                               ("2 nodes", "enable server nodes/node2")):
            haproxy(directory, command)
            want = "MAINT" if command.startswith("disable") else "UP"
            deadline = time.monotonic() + 30
            while node_status(directory, "node2") != want:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"HAProxy did not apply {command!r}")
                time.sleep(0.05)
            harness.wrk(lb, seconds=2, connections=8, script=script)  # settle
            result = harness.wrk(lb, seconds=args.seconds, connections=8, script=script)
            rows.append((label, result.requests_per_s, result.p50_ms, result.p99_ms,
                         result.errors + result.non_2xx))
        print(harness.table("warm simple pages through HAProxy (wrk c=8)",
                            ("backend", "req/s", "p50 ms", "p99 ms", "errors"), rows))
        print(f"2 nodes / 1 node: {rows[1][1] / rows[0][1]:.2f}x\n")
        lags = lag(node1, node2, user, args.lag_samples)
        print(harness.table("consistency lag: PUT on node1 acknowledged -> 200 on node2",
                            ("samples", "p50 ms", "p99 ms", "max ms", "mean ms"),
                            [(len(lags), percentile(lags, 0.5), percentile(lags, 0.99),
                              max(lags), statistics.mean(lags))]))
    finally:
        cluster("stop", directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
