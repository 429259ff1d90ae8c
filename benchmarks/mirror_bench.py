"""The PyPI cache (root/pypi) beside devpi-server in one run (PEERS.md sections 1-3, 6-8).

1. ``pip download --no-deps --no-cache-dir --only-binary=:all: -r lock`` directly from the
   upstream, through a cold cache and through a warm one (direct and warm runs interleaved).
2. Cached simple pages rotating over the 30 top projects, HTML and PEP 691 JSON, concurrency 8.
3. The cached numpy wheel (17 MB) at concurrency 8.
4. Resident memory after all of that; start-up to the first answer with the populated cache.
5. Restarted with the upstream unreachable: does the whole lock still download?

The real run needs the internet (the upstream is the installed pip's default index; the lock is
``mirror_lock.txt``, 91 wheels, 230 MB). ``--quick`` uses a fake upstream in this process with
generated wheels instead (one of 17 MB, one project page of about 3 MB).

Run: ``.venv/bin/python benchmarks/mirror_bench.py [--quick] [--seconds 10] [--rounds 2]
[--skip-devpi]``. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from devpi_core_mirror.settings import default_upstream_url  # noqa: E402
from harness import (  # noqa: E402 - after the path set-up
    Server,
    clean_env,
    free_port,
    rotate_script,
    start_devpi_core,
    start_devpi_server,
    table,
    workdir,
    wrk,
)

from devpi_core.testing.dists import Dist  # noqa: E402
from devpi_core.testing.upstream import FakeUpstream  # noqa: E402

PEP691 = "application/vnd.pypi.simple.v1+json"
OUTSIDE_URL = False
UNREACHABLE = {
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
}


@dataclass
class Workload:
    """What is downloaded and which pages and file are hammered."""

    upstream_url: str
    lock: Path
    count: int
    top: list[str]
    big_project: str
    big_prefix: str
    fake: FakeUpstream | None = None


@dataclass
class Target:
    """One server under test and what was measured on it."""

    name: str
    server: Server
    index: str
    numbers: dict[str, object] = field(default_factory=dict)

    @property
    def simple(self) -> str:
        return f"{self.server.url}/{self.index}/+simple/"


# -- workloads ------------------------------------------------------------------------------
def random_wheel(name: str, version: str, size: int) -> Dist:
    """A valid wheel holding ``size`` incompressible bytes (stored, not deflated)."""
    module = name.replace("-", "_")
    distinfo = f"{module}-{version}.dist-info"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{module}/__init__.py", "")
        zf.writestr(f"{module}/data.bin", os.urandom(size))
        zf.writestr(
            f"{distinfo}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        zf.writestr(
            f"{distinfo}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr(f"{distinfo}/RECORD", "")
    return Dist(f"{module}-{version}-py3-none-any.whl", buffer.getvalue())


def quick_workload(work: Path) -> Workload:
    """30 projects (one 17 MB wheel, a few MB-sized), one with a page of about 3 MB."""
    fake = FakeUpstream().start()
    names = [f"quick-{i:02d}" for i in range(30)]
    sizes = [17_000_000, 4_000_000, 2_000_000, 1_000_000] + [200_000] * 26
    for name, size in zip(names, sizes, strict=True):
        fake.add(name, random_wheel(name, "1.0", size))
    for i in range(9000):  # old versions: a big page, like aiohttp's
        fake.add(names[1], Dist(f"quick_01-0.{i}-py3-none-any.whl", os.urandom(32)))
    lock = work / "quick-lock.txt"
    lock.write_text("".join(f"{name}==1.0\n" for name in names))
    return Workload(fake.url, lock, len(names), names, names[0], "quick_00-1.0", fake)


def real_workload() -> Workload:
    """PEERS.md's lock (91 wheels) and the 30 top-level projects, from the real index."""
    top = [
        line.strip()
        for line in (HERE / "mirror_top30.txt").read_text().splitlines()
        if line.strip()
    ]
    lock = HERE / "mirror_lock.txt"
    count = sum(1 for line in lock.read_text().splitlines() if line.strip())
    return Workload(default_upstream_url(), lock, count, top, "numpy", "numpy-2.4.6-cp311")


# -- servers --------------------------------------------------------------------------------
def login(url: str) -> requests.Session:
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    reply = session.post(f"{url}/+login", json={"user": "root", "password": ""}, timeout=60)
    token = reply.json()["result"]["password"]
    session.headers["X-Devpi-Auth"] = base64.b64encode(f"root:{token}".encode()).decode()
    return session


def mirror_index(server: Server, load: Workload) -> str:
    """root/pypi for the real upstream; root/fake (created here) for the fake one."""
    if load.fake is None:
        return "root/pypi"
    reply = login(server.url).put(
        f"{server.url}/root/fake", json={"type": "mirror", "mirror_url": load.upstream_url}
    )
    assert reply.status_code in (200, 201), reply.text
    return "root/fake"


def start(name: str, work: Path, load: Workload, **kwargs: object) -> Server:
    work.mkdir(parents=True, exist_ok=True)
    if name == "devpi-core":
        config = "logging: {access_log: false}\n"
        server = []
        if load.fake is not None:
            # the fake upstream runs on loopback, which mirrors may not reach by default
            server.append("outbound_allow: ['127.0.0.1']")
        if OUTSIDE_URL:
            kwargs["port"] = kwargs.get("port") or free_port()
            server.append(f"outside_url: 'http://127.0.0.1:{kwargs['port']}'")
        if server:
            config += f"server: {{{', '.join(server)}}}\n"
        return start_devpi_core(work, config=config, **kwargs)  # type: ignore[arg-type]
    return start_devpi_server(work, root_pypi=True, **kwargs)  # type: ignore[arg-type]


# -- measurements ---------------------------------------------------------------------------
def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pip_download(index_url: str, load: Workload, dest: Path) -> tuple[float, int, float]:
    """Seconds for the lock's download, how many files arrived, and pip's CPU seconds."""
    shutil.rmtree(dest, ignore_errors=True)
    args = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-cache-dir",
        "--progress-bar",
        "off",
        "--index-url",
        index_url,
        "-d",
        str(dest),
        "-r",
        str(load.lock),
    ]
    started, cpu = time.monotonic(), _children_cpu()
    result = subprocess.run(
        args,
        env=clean_env(HOME=str(dest.parent)),
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-2000:] + result.stderr[-2000:])
    count = len(list(dest.iterdir())) if dest.exists() else 0
    return seconds, count, _children_cpu() - cpu


def big_file_url(target: Target, load: Workload) -> str:
    page_url = f"{target.simple}{load.big_project}/"
    page = requests.get(page_url, headers={"Accept": PEP691}, timeout=60).json()
    chosen = [
        f
        for f in page["files"]
        if f["filename"].startswith(load.big_prefix)
        and f["filename"].endswith(("manylinux_2_28_x86_64.whl", "py3-none-any.whl"))
    ]
    return urljoin(page_url, chosen[0]["url"]).removeprefix(target.server.url)


def load_phases(targets: list[Target], load: Workload, work: Path, seconds: int) -> None:
    for target in targets:
        paths = [f"/{target.index}/+simple/{name}/" for name in load.top]
        script = rotate_script(work, paths)
        for form, accept in (("html", "text/html"), ("json", PEP691)):
            for path in paths:  # "cached pages": each rendered once before measuring
                requests.get(target.server.url + path, headers={"Accept": accept}, timeout=300)
            result = wrk(
                target.server.url,
                seconds=seconds,
                connections=8,
                threads=2,
                headers=[f"Accept: {accept}"],
                script=script,
            )
            target.numbers[f"pages_{form}"] = result
        url = target.server.url + big_file_url(target, load)
        requests.get(url, timeout=300).raise_for_status()
        target.numbers["file"] = wrk(url, seconds=seconds, connections=8, threads=2)
        target.numbers["rss_mib"] = target.server.rss_kib() / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fake upstream in this process")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="warm rounds (direct/core/devpi)")
    parser.add_argument("--skip-devpi", action="store_true", help="measure devpi-core only")
    parser.add_argument("--outside-url", action="store_true",
                        help="tell devpi-core its URL (server.outside_url, as nginx's X-Outside-Url"
                        " does): simple pages link absolutely, which pip reads faster")
    args = parser.parse_args()
    global OUTSIDE_URL  # noqa: PLW0603 - one setting for every start of devpi-core
    OUTSIDE_URL = args.outside_url
    work = workdir("mirror")
    load = quick_workload(work) if args.quick else real_workload()
    names = ["devpi-core"] + ([] if args.skip_devpi else ["devpi-server"])
    try:
        report = run(names, load, work, args)
    finally:
        if load.fake is not None:
            load.fake.stop()
    sys.stdout.write(report)
    return 0


def run(names: list[str], load: Workload, work: Path, args: argparse.Namespace) -> str:
    directs = [pip_download(load.upstream_url, load, work / "dl-direct")]
    targets = []
    for name in names:
        server = start(name, work / name, load)
        target = Target(name, server, mirror_index(server, load))
        cpu = server.cpu_seconds()
        target.numbers["cold"] = pip_download(target.simple, load, work / f"dl-{name}")
        target.numbers["cold_cpu"] = server.cpu_seconds() - cpu
        targets.append(target)
    for _ in range(args.rounds):
        directs.append(pip_download(load.upstream_url, load, work / "dl-direct"))
        for target in targets:
            cpu = target.server.cpu_seconds()
            target.numbers.setdefault("warm", []).append(  # type: ignore[union-attr]
                pip_download(target.simple, load, work / f"dl-{target.name}")
            )
            target.numbers["warm_cpu"] = target.server.cpu_seconds() - cpu
    load_phases(targets, load, work, args.seconds)
    for target in targets:
        target.server.stop()
        again = start(target.name, work / target.name, load, serverdir=target.server.serverdir)
        target.numbers["startup"] = again.started_in
        again.stop()
    if load.fake is not None:
        load.fake.stop()
    for target in targets:
        again = start(
            target.name,
            work / target.name,
            load,
            serverdir=target.server.serverdir,
            env=UNREACHABLE,
        )
        target.numbers["offline"] = pip_download(
            target.simple.replace(target.server.url, again.url),
            load,
            work / f"dl-off-{target.name}",
        )
        again.stop()
    return render(targets, load, directs, args)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def render(
    targets: list[Target],
    load: Workload,
    directs: list[tuple[float, int]],
    args: argparse.Namespace,
) -> str:
    direct_cold = directs[0][0]
    direct_warm = _median([d[0] for d in directs[1:]]) if len(directs) > 1 else direct_cold
    mode = "quick (fake upstream)" if args.quick else "real upstream"
    rows: list[list[object]] = [
        [
            "direct download (cold phase), s",
            f"{direct_cold:.1f}",
            "",
            "",
            f"{directs[0][1]}/{load.count} files",
        ],
        ["direct download (warm phase, median), s", f"{direct_warm:.1f}", "", "", ""],
    ]
    core = targets[0].numbers
    peer = targets[1].numbers if len(targets) > 1 else {}

    def pair(key: str, fmt: str, pick) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        return (fmt.format(pick(core[key])), fmt.format(pick(peer[key])) if key in peer else "-")

    cold = pair("cold", "{:.1f}", lambda v: v[0])
    rows.append(
        [
            "cold cache download, s",
            *cold,
            f"core {core['cold'][0] / direct_cold:.2f}x direct"
            + (f", devpi {peer['cold'][0] / direct_cold:.2f}x" if peer else ""),
            f"files: core {core['cold'][1]}/{load.count}"
            + (f", devpi {peer['cold'][1]}" if peer else ""),
        ]
    )
    warm_core = _median([w[0] for w in core["warm"]])
    warm_peer = _median([w[0] for w in peer["warm"]]) if peer else None
    rows.append(
        [
            "warm cache download (median), s",
            f"{warm_core:.1f}",
            f"{warm_peer:.1f}" if warm_peer else "-",
            f"core {warm_core / direct_warm:.2f}x direct"
            + (f", devpi {warm_peer / direct_warm:.2f}x" if warm_peer else ""),
            "",
        ]
    )
    rows.append(
        [
            "server CPU: cold download / last warm one, s",
            f"{core['cold_cpu']:.1f} / {core['warm_cpu']:.1f}",
            f"{peer['cold_cpu']:.1f} / {peer['warm_cpu']:.1f}" if peer else "-",
            "",
            "CPU seconds do not depend on the machine's load",
        ]
    )
    rows.append(
        [
            "pip CPU: direct cold / through the server cold, warm, s",
            f"{directs[0][2]:.1f} / {core['cold'][2]:.1f}, {core['warm'][-1][2]:.1f}",
            f"{peer['cold'][2]:.1f}, {peer['warm'][-1][2]:.1f}" if peer else "-",
            "",
            "",
        ]
    )
    for form in ("html", "json"):
        c, p = core[f"pages_{form}"], peer.get(f"pages_{form}")
        rows.append(
            [
                f"cached pages {form.upper()} c=8, req/s (p50/p99 ms)",
                f"{c.requests_per_s:.0f} ({c.p50_ms:.0f}/{c.p99_ms:.0f})",
                f"{p.requests_per_s:.1f} ({p.p50_ms:.0f}/{p.p99_ms:.0f})" if p else "-",
                f"{c.requests_per_s / p.requests_per_s:.0f}x devpi" if p else "",
                f"errors {c.errors + c.non_2xx}",
            ]
        )
    c, p = core["file"], peer.get("file")
    rows.append(
        [
            "cached 17 MB wheel c=8, MB/s",
            f"{c.mb_per_s:.0f}",
            f"{p.mb_per_s:.0f}" if p else "-",
            f"{c.mb_per_s / p.mb_per_s:.2f}x devpi" if p else "",
            f"p99 {c.p99_ms:.0f} ms",
        ]
    )
    rows.append(
        ["resident memory after the above, MiB", *pair("rss_mib", "{:.0f}", lambda v: v), "", ""]
    )
    rows.append(
        ["start-up to first answer (populated), s", *pair("startup", "{:.2f}", lambda v: v), "", ""]
    )
    off = pair("offline", "{}", lambda v: f"{v[1]}/{load.count} files, {v[0]:.1f} s")
    rows.append(["restarted, upstream unreachable", *off, "", ""])
    header = ["measure", "devpi-core", "devpi-server", "ratio", "note"]
    return table(
        f"root/pypi benchmark, {mode}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        header,
        rows,
    )


if __name__ == "__main__":
    sys.exit(main())
