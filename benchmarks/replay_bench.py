"""The cold lock replayed: the real upstream's pages and files of ``mirror_lock.txt``, recorded
once and served from this machine, so a cold mirror can be measured again and again without
the network's variance.

``record`` fetches the 91 projects' PEP 691 pages and the 91 wheels pip picks (about 55 MB and
220 MB) into ``benchmarks/work/replay``. ``run`` serves them from a separate process (file links
pointed at it) and measures, per round, a fresh mirror index of devpi-core: every page asked
once the way pip asks (server CPU; the cost per listed file), then ``pip download`` and
``uv pip install --target`` of the lock through a fresh index each (wall time against the same
client run directly against the replay, server CPU, resident memory). Minimum and median
over ``--rounds``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import requests
from harness import WORK, cpu_of, start_devpi_core, table
from mirror_bench import PEP691, login, pip_download, real_workload, uv_install
from passthrough import LINKS

if TYPE_CHECKING:
    from collections.abc import Callable

    from mirror_bench import Workload

REPLAY = WORK / "replay"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def record(upstream: str) -> None:
    """The lock's pages and files from ``upstream`` into ``REPLAY`` (skipped when there)."""
    load = real_workload()
    pages, files = REPLAY / "pages", REPLAY / "files"
    pages.mkdir(parents=True, exist_ok=True)
    names = [line.split("==")[0] for line in load.lock.read_text().split() if "==" in line]
    with requests.Session() as session:
        for name in names:
            target = pages / f"{name}.json"
            if not target.exists():
                reply = session.get(f"{upstream}{name}/", headers={"Accept": JSON_TYPE}, timeout=60)
                reply.raise_for_status()
                target.write_bytes(reply.content)
    if not files.exists() or len(list(files.iterdir())) < len(names):
        pip_download(upstream, load, files)
    print(f"recorded {len(names)} pages and {len(list(files.iterdir()))} files in {REPLAY}")


class _Replay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    pages: dict[str, bytes] = {}  # noqa: RUF012 - filled once before serving
    files: dict[str, Path] = {}  # noqa: RUF012

    def log_message(self, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path.startswith("/packages/"):
            found = self.files.get(path.rsplit("/", 1)[-1])
            body = found.read_bytes() if found else None
            ctype = "application/octet-stream"
        else:
            body = self.pages.get(path.strip("/").rsplit("/", 1)[-1])
            ctype = JSON_TYPE
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("X-PyPI-Last-Serial", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve() -> None:
    """Serve the recording on a free port (printed first); file links point here."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Replay)
    server.daemon_threads = True
    url = f"http://127.0.0.1:{server.server_port}"
    for page in (REPLAY / "pages").glob("*.json"):
        _Replay.pages[page.stem] = LINKS.sub(url.encode() + b"/packages/", page.read_bytes())
    _Replay.files = {f.name: f for f in (REPLAY / "files").iterdir()}
    print(url, flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # until the benchmark closes the pipe


def _rss_mib(pid: int) -> dict[str, float]:
    wanted = ("VmRSS", "VmHWM")
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {
        k: int(v.split()[0]) / 1024 for k, _, v in (x.partition(":") for x in lines) if k in wanted
    }


def run(rounds: int) -> str:
    """The measurements (see the module docstring) as a table."""
    replay = subprocess.Popen(
        [sys.executable, __file__, "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert replay.stdout is not None
    upstream = replay.stdout.readline().strip() + "/simple/"
    load = real_workload()
    load = dataclasses.replace(load, upstream_url=upstream)
    work = WORK / "replay-run"
    numbers: dict[str, list[float]] = {}
    try:
        for client, measure in (("pip", pip_download), ("uv", uv_install)):
            for n in range(rounds):
                seconds, _count, _ = measure(upstream, load, work / f"direct-{client}")
                numbers.setdefault(f"{client} direct, s", []).append(seconds)
                _core_round(upstream, load, work, client, measure, numbers)
                for variant, store in (("pass-through", None), ("pass-through storing", work)):
                    seconds, cpu = _through_floor(upstream, load, work, measure, store)
                    numbers.setdefault(f"{client} {variant}, server CPU s", []).append(cpu)
                    numbers.setdefault(f"{client} {variant}, s", []).append(seconds)
                print(
                    f"# {client} round {n}: { {k: v[-1] for k, v in numbers.items()} }",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        replay.stdin.close()  # type: ignore[union-attr]
        replay.wait(10)
    rows = [
        (key, f"{min(values):.2f}", f"{statistics.median(values):.2f}", len(values))
        for key, values in numbers.items()
    ]
    return table("cold lock, replayed upstream", ("measure", "min", "median", "rounds"), rows)


def _core_round(
    upstream: str,
    load: Workload,
    work: Path,
    client: str,
    measure: Callable[[str, Workload, Path], tuple[float, int, float]],
    numbers: dict[str, list[float]],
) -> None:
    """One round on a fresh devpi-core: every page cold, then the lock through ``client``."""
    shutil.rmtree(work / "server", ignore_errors=True)
    server = start_devpi_core(
        work,
        config="logging: {access_log: false}\nserver: {outbound_allow: ['127.0.0.1']}\n",
        serverdir=work / "server",
    )
    try:
        pid, session = server.process.pid, login(server.url)
        for index in ("pages", "lock"):
            config = {"type": "mirror", "mirror_url": upstream}
            session.put(f"{server.url}/root/{index}", json=config).raise_for_status()
        before = cpu_of(pid)
        for name in _recorded_names():
            requests.get(
                f"{server.url}/root/pages/+simple/{name}/",
                headers={"Accept": PEP691, "Accept-Encoding": "gzip"},
                timeout=120,
            ).raise_for_status()
        numbers.setdefault("cold pages only, server CPU s", []).append(cpu_of(pid) - before)
        time.sleep(1)  # the write-behind thread stores the last pages
        before = cpu_of(pid)
        lock = f"{server.url}/root/lock/+simple/"
        seconds, count, _ = measure(lock, load, work / f"core-{client}")
        assert count == load.count, f"{count} of {load.count} files through {client}"
        numbers.setdefault(f"{client} cold, server CPU s", []).append(cpu_of(pid) - before)
        numbers.setdefault(f"{client} cold, s", []).append(seconds)
        rss = _rss_mib(pid)
        numbers.setdefault(f"{client} cold, peak MiB", []).append(rss["VmHWM"])
        numbers.setdefault(f"{client} cold, after MiB", []).append(rss["VmRSS"])
    finally:
        server.stop()


def _through_floor(
    upstream: str,
    load: Workload,
    work: Path,
    measure: Callable[[str, Workload, Path], tuple[float, int, float]],
    store: Path | None,
) -> tuple[float, float]:
    """The lock through ``passthrough.py`` (the stack's floor): wall time, its CPU seconds."""
    stored = None if store is None else store / "passthrough-store"
    args = [sys.executable, str(Path(__file__).with_name("passthrough.py")), upstream]
    if stored is not None:
        shutil.rmtree(stored, ignore_errors=True)
        stored.mkdir(parents=True)
        args += ["--store", str(stored)]
    proxy = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proxy.stdout is not None
        url = proxy.stdout.readline().strip()
        before = cpu_of(proxy.pid)
        seconds, count, _ = measure(f"{url}/simple/", load, work / "floor")
        assert count == load.count, f"{count} of {load.count} files through the pass-through"
        return seconds, cpu_of(proxy.pid) - before
    finally:
        proxy.stdin.close()  # type: ignore[union-attr]
        proxy.wait(10)


def _recorded_names() -> list[str]:
    return sorted(page.stem for page in (REPLAY / "pages").glob("*.json"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("record", "run", "serve"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--upstream", help="the index to record from (default: pip's)")
    args = parser.parse_args()
    if args.command == "serve":
        serve()
        return 0
    if args.command == "record":
        record(args.upstream or real_workload().upstream_url)
        return 0
    if not (REPLAY / "files").is_dir():
        sys.stderr.write("nothing recorded yet: run 'replay_bench.py record' first\n")
        return 2
    sys.stdout.write(run(args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
