"""The PyPI cache (root/pypi) beside devpi-server and proxpi in one run (PEERS.md 1-3, 6-9).

1. ``pip download --no-deps --no-cache-dir --only-binary=:all: -r lock`` directly from the
   upstream and through a cold cache (fresh servers).
2. ``uv pip install --no-deps --target`` of the lock with a fresh uv cache, directly and through
   a cold cache (the servers are wiped and restarted first), then ``uv pip compile --no-cache``
   of the 30 top projects.
3. Warm rounds of all three (direct and server runs interleaved); server CPU seconds per lock
   are read from ``/proc/<pid>/stat`` of the server (and its children) before and after.
4. Cached simple pages rotating over the 30 top projects, HTML and PEP 691 JSON, concurrency 8;
   the cached numpy wheel (17 MB) at concurrency 8.
5. The ceiling: a cached 300-file mirror page at c=8 against a bare waitress WSGI app answering
   the same bytes with the same headers from memory (devpi-core only).
6. Resident memory sampled during all of that (peak) and after it; start-up to the first
   answer with the populated cache; restarted with the upstream unreachable.

The real run needs the internet (the upstream is the installed pip's default index; the lock is
``mirror_lock.txt``, 91 wheels, 230 MB). ``--quick`` uses a fake upstream in this process with
generated wheels instead (one of 17 MB, one project page of about 3 MB).

Run: ``.venv/bin/python benchmarks/mirror_bench.py [--quick] [--seconds 10] [--rounds 2]
[--skip-devpi] [--skip-proxpi]``. Everything listens on 127.0.0.1.
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
from typing import TYPE_CHECKING
from urllib.parse import urljoin

import requests

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from devpi_core_mirror.settings import default_upstream_url  # noqa: E402
from harness import (  # noqa: E402 - after the path set-up
    CORE_BIN,
    RssSampler,
    Server,
    bare_waitress,
    clean_env,
    free_port,
    rotate_script,
    start_devpi_core,
    start_devpi_server,
    start_proxpi,
    workdir,
    wrk,
)
from mirror_report import render, runs  # noqa: E402

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
    top_file: Path
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
    sampler: RssSampler | None = None

    @property
    def simple(self) -> str:
        if self.name == "proxpi":
            return f"{self.server.url}/index/"
        return f"{self.server.url}/{self.index}/+simple/"

    def page(self, project: str) -> str:
        return self.simple.removeprefix(self.server.url) + f"{project}/"

    def sample(self) -> None:
        """(Re)start sampling resident memory; keeps the peak across restarts."""
        peak = self.stop_sampling()
        self.sampler = RssSampler(self.server)
        self.sampler.peak = peak

    def recorded_peak(self) -> float:
        """The peak resident memory of the samplers stopped so far, MiB."""
        return float(self.numbers.get("rss_peak_mib", 0.0))  # type: ignore[arg-type]

    def stop_sampling(self) -> float:
        if self.sampler is not None:
            self.numbers["rss_peak_mib"] = max(self.sampler.stop(), self.recorded_peak())
            self.sampler = None
        return self.recorded_peak()

    def memory(self) -> str:
        """Resident memory now and the peak so far, for the progress lines (which phase
        made the peak)."""
        if self.sampler is None:
            return ""
        now = self.server.rss_kib() / 1024
        peak = max(self.sampler.peak, self.recorded_peak(), now)
        return f", RSS {now:.0f} MiB (peak so far {peak:.0f})"


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
    top_file = work / "quick-top.txt"
    top_file.write_text("".join(f"{name}\n" for name in names))
    return Workload(fake.url, lock, len(names), names, top_file, names[0], "quick_00-1.0", fake)


def real_workload() -> Workload:
    """PEERS.md's lock (91 wheels) and the 30 top-level projects, from the real index."""
    top = [
        line.strip()
        for line in (HERE / "mirror_top30.txt").read_text().splitlines()
        if line.strip()
    ]
    lock = HERE / "mirror_lock.txt"
    count = sum(1 for line in lock.read_text().splitlines() if line.strip())
    return Workload(
        default_upstream_url(),
        lock,
        count,
        top,
        HERE / "mirror_top30.txt",
        "numpy",
        "numpy-2.4.6-cp311",
    )


# -- servers --------------------------------------------------------------------------------
def login(url: str) -> requests.Session:
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    reply = session.post(f"{url}/+login", json={"user": "root", "password": ""}, timeout=60)
    token = reply.json()["result"]["password"]
    session.headers["X-Devpi-Auth"] = base64.b64encode(f"root:{token}".encode()).decode()
    return session


def mirror_index(server: Server, url: str, name: str = "root/fake") -> str:
    """An index ``name`` mirroring ``url`` (created here)."""
    reply = login(server.url).put(
        f"{server.url}/{name}", json={"type": "mirror", "mirror_url": url}
    )
    assert reply.status_code in (200, 201), reply.text
    return name


def start(name: str, work: Path, load: Workload, **kwargs: object) -> Server:
    work.mkdir(parents=True, exist_ok=True)
    if name == "devpi-core":
        # the fake upstreams run on loopback, which mirrors may not reach by default
        config = "logging: {access_log: false}\n"
        server = ["outbound_allow: ['127.0.0.1']"]
        if OUTSIDE_URL:
            kwargs["port"] = kwargs.get("port") or free_port()
            server.append(f"outside_url: 'http://127.0.0.1:{kwargs['port']}'")
        config += f"server: {{{', '.join(server)}}}\n"
        return start_devpi_core(work, config=config, **kwargs)  # type: ignore[arg-type]
    if name == "proxpi":
        return start_proxpi(work, load.upstream_url, **kwargs)  # type: ignore[arg-type]
    return start_devpi_server(work, root_pypi=True, **kwargs)  # type: ignore[arg-type]


def fresh_target(name: str, work: Path, load: Workload) -> Target:
    """A server with an empty cache (its directory wiped first)."""
    shutil.rmtree(work / name, ignore_errors=True)
    server = start(name, work / name, load)
    index = "root/pypi"
    if load.fake is not None and name != "proxpi":
        index = mirror_index(server, load.upstream_url)
    return Target(name, server, index)


# -- measurements ---------------------------------------------------------------------------
Run = tuple[float, int, float]  # wall seconds, files (or 0/1 for success), client CPU seconds


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _client(args: list[str], home: Path) -> tuple[float, float, bool]:
    started, cpu = time.monotonic(), _children_cpu()
    result = subprocess.run(
        args,
        env=clean_env(HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-2000:] + result.stderr[-2000:])
    return seconds, _children_cpu() - cpu, result.returncode == 0


def pip_download(index_url: str, load: Workload, dest: Path) -> Run:
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
    seconds, cpu, _ok = _client(args, dest.parent)
    count = len(list(dest.iterdir())) if dest.exists() else 0
    return seconds, count, cpu


def uv_install(index_url: str, load: Workload, dest: Path) -> Run:
    """``uv pip install --no-deps --target`` of the lock with a fresh uv cache (uv downloads
    many files at once): seconds, how many distributions arrived, uv's CPU seconds."""
    cache = dest.with_name(dest.name + "-cache")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    args = [
        str(CORE_BIN / "uv"),
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--python",
        sys.executable,
        "--cache-dir",
        str(cache),
        "--index-url",
        index_url,
        "--target",
        str(dest),
        "-r",
        str(load.lock),
    ]
    seconds, cpu, _ok = _client(args, dest.parent)
    count = len(list(dest.glob("*.dist-info"))) if dest.exists() else 0
    shutil.rmtree(cache, ignore_errors=True)
    return seconds, count, cpu


def uv_compile(index_url: str, load: Workload, work: Path) -> Run:
    """``uv pip compile --no-cache`` of the top projects (resolution: pages and metadata)."""
    args = [
        str(CORE_BIN / "uv"),
        "pip",
        "compile",
        "--quiet",
        "--no-cache",
        "--python-version",
        "3.11",
        "--python-platform",
        "x86_64-manylinux_2_28",
        "--index-url",
        index_url,
        "-o",
        str(work / "compiled.txt"),
        str(load.top_file),
    ]
    seconds, cpu, ok = _client(args, work)
    return seconds, int(ok), cpu


def measured(target: Target, key: str, run: Run, cpu_before: float) -> None:
    """Record a client run through ``target`` and the server's CPU seconds for it."""
    target.numbers.setdefault(key, []).append(run)  # type: ignore[union-attr]
    target.numbers.setdefault(key + "_cpu", []).append(  # type: ignore[union-attr]
        target.server.cpu_seconds() - cpu_before
    )


def through(target: Target, key: str, do: Callable[[], Run]) -> None:
    cpu = target.server.cpu_seconds()
    measured(target, key, do(), cpu)
    progress(target.name, key, runs(target, key)[-1], target.numbers[key + "_cpu"][-1],  # type: ignore[index]
             target.memory())


def directly(direct: Target, key: str, run: Run) -> None:
    direct.numbers.setdefault(key, []).append(run)  # type: ignore[union-attr]
    progress("direct", key, run, None)


def progress(name: str, key: str, run: Run, cpu: float | None, memory: str = "") -> None:
    """A line on stderr per measurement, so a run cut short still reports what it measured."""
    server = f", server CPU {cpu:.2f} s" if cpu is not None else ""
    sys.stderr.write(f"# {name} {key}: {run[0]:.2f} s, {run[1]} done, client CPU {run[2]:.2f} s"
                     f"{server}{memory}\n")
    sys.stderr.flush()


def big_file_url(target: Target, load: Workload) -> str:
    page_url = target.server.url + target.page(load.big_project)
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
        paths = [target.page(name) for name in load.top]
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
            sys.stderr.write(f"# {target.name} cached pages {form}{target.memory()}\n")
        url = target.server.url + big_file_url(target, load)
        requests.get(url, timeout=300).raise_for_status()
        cpu = target.server.cpu_seconds()
        target.numbers["file"] = wrk(url, seconds=seconds, connections=8, threads=2)
        target.numbers["file_cpu"] = target.server.cpu_seconds() - cpu
        sys.stderr.write(f"# {target.name} big file{target.memory()}\n")


CEILING_FILES = 300
_OWN_HEADERS = ("date", "server", "connection", "keep-alive")  # waitress writes these itself


def ceiling_phase(target: Target, work: Path, seconds: int) -> None:
    """A cached mirror page of a 300-file project at c=8, beside a bare waitress app answering
    the same bytes with the same headers from memory (what the stack can do at best)."""
    fake = FakeUpstream().start()
    try:
        for i in range(CEILING_FILES):
            fake.add("ceiling-300", Dist(f"ceiling_300-0.{i}-py3-none-any.whl", os.urandom(32)))
        index = mirror_index(target.server, fake.url, "root/ceiling")
        path = f"/{index}/+simple/ceiling-300/"
        for form, accept in (("html", "text/html"), ("json", PEP691)):
            # wrk asks without Accept-Encoding: so must the reference (a gzipped reply's
            # Content-Length made the bare app cut the decoded body to the compressed size)
            reply = requests.get(target.server.url + path, timeout=60,
                                 headers={"Accept": accept, "Accept-Encoding": "identity"})
            reply.raise_for_status()
            headers = [
                (k, v) for k, v in reply.raw.headers.items() if k.lower() not in _OWN_HEADERS
            ]
            ours = wrk(target.server.url + path, seconds=seconds, headers=[f"Accept: {accept}"])
            url, bare = bare_waitress(work, reply.content, headers)
            try:
                theirs = wrk(url, seconds=seconds, headers=[f"Accept: {accept}"])
            finally:
                bare.terminate()
                bare.wait()
            target.numbers[f"ceiling_{form}"] = (ours, theirs, len(reply.content))
    finally:
        fake.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fake upstream in this process")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="warm rounds (direct/servers)")
    parser.add_argument("--skip-devpi", action="store_true", help="leave out devpi-server")
    parser.add_argument("--skip-proxpi", action="store_true", help="leave out proxpi")
    parser.add_argument("--outside-url", action="store_true",
                        help="tell devpi-core its URL (server.outside_url, as nginx's X-Outside-Url"
                        " does): simple pages link absolutely, which pip reads faster")
    args = parser.parse_args()
    global OUTSIDE_URL  # noqa: PLW0603 - one setting for every start of devpi-core
    OUTSIDE_URL = args.outside_url
    work = workdir("mirror")
    load = quick_workload(work) if args.quick else real_workload()
    names = ["devpi-core"]
    names += [] if args.skip_devpi else ["devpi-server"]
    names += [] if args.skip_proxpi else ["proxpi"]
    try:
        report = run(names, load, work, args)
    finally:
        if load.fake is not None:
            load.fake.stop()
    sys.stdout.write(report)
    return 0


def run(names: list[str], load: Workload, work: Path, args: argparse.Namespace) -> str:
    direct = Target("direct", None, "")  # type: ignore[arg-type]
    upstream = load.upstream_url
    # 1. pip through cold caches
    directly(direct, "pip_cold", pip_download(upstream, load, work / "dl-direct"))
    targets = []
    for name in names:
        target = fresh_target(name, work, load)
        target.sample()
        through(target, "pip_cold", lambda t=target: pip_download(t.simple, load, work / "dl"))
        target.stop_sampling()
        target.server.stop()
        targets.append(target)
    # 2. uv through caches wiped again, then uv's resolution
    directly(direct, "uv_cold", uv_install(upstream, load, work / "uv-direct"))
    directly(direct, "compile_cold", uv_compile(upstream, load, work))
    for n, target in enumerate(targets):
        peak = target.stop_sampling()
        fresh = fresh_target(target.name, work, load)
        fresh.numbers, targets[n] = target.numbers, fresh
        fresh.numbers["rss_peak_mib"] = peak
        fresh.sample()
        through(fresh, "uv_cold", lambda t=fresh: uv_install(t.simple, load, work / "uv"))
        through(fresh, "compile_cold", lambda t=fresh: uv_compile(t.simple, load, work))
    warm_rounds(direct, targets, load, work, args.rounds)
    # 4. load; 5. the ceiling; 6. memory, start-up, offline
    load_phases(targets, load, work, args.seconds)
    ceiling_phase(targets[0], work, args.seconds)
    restarts(targets, load, work)
    return render(direct, targets, load, args)


def warm_rounds(
    direct: Target, targets: list[Target], load: Workload, work: Path, rounds: int
) -> None:
    """pip, uv and uv's resolution through warm caches, interleaved with direct runs."""
    upstream = load.upstream_url
    for _ in range(rounds):
        directly(direct, "pip_warm", pip_download(upstream, load, work / "dl-direct"))
        for target in targets:
            through(target, "pip_warm", lambda t=target: pip_download(t.simple, load, work / "dl"))
        directly(direct, "uv_warm", uv_install(upstream, load, work / "uv-direct"))
        for target in targets:
            through(target, "uv_warm", lambda t=target: uv_install(t.simple, load, work / "uv"))
        directly(direct, "compile_warm", uv_compile(upstream, load, work))
        for target in targets:
            through(target, "compile_warm", lambda t=target: uv_compile(t.simple, load, work))


def restarts(targets: list[Target], load: Workload, work: Path) -> None:
    """Memory after the run; start-up with the populated cache; the upstream unreachable."""
    for target in targets:
        target.numbers["rss_mib"] = target.server.rss_kib() / 1024
        target.stop_sampling()
        target.server.stop()
        again = start(target.name, work / target.name, load, serverdir=target.server.serverdir)
        target.numbers["startup"] = again.started_in
        again.stop()
    if load.fake is not None:
        load.fake.stop()
    for target in targets:
        if target.name == "proxpi":  # its pages live in memory only: PEERS.md section 8
            continue
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
            work / "dl-off",
        )
        again.stop()


if __name__ == "__main__":
    sys.exit(main())
