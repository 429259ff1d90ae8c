"""Shared benchmark plumbing: start devpi-core and devpi-server side by side, run wrk, print tables.

Everything listens on 127.0.0.1. devpi-server (and devpi-client) come from the package index
into their own virtualenv under ``benchmarks/work/peer-venv``, created on first use.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
ROOT = HERE.parent
CORE_BIN = Path(sys.executable).parent
PEER_VENV = WORK / "peer-venv"
PEER_PACKAGES = ("devpi-server>=6.20,<7", "devpi-client>=7.3,<8")


def clean_env(**extra: str) -> dict[str, str]:
    """No site-wide pip/uv/twine settings leak into measured commands."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "TWINE_", "DEVPI"))
    }
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", UV_NO_CONFIG="1")
    env.update(extra)
    return env


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 120) -> float:
    """Poll ``url`` until it answers (any status); return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            urllib.request.urlopen(url, timeout=2).close()  # loopback only
            return time.monotonic() - start
        except urllib.error.HTTPError:
            return time.monotonic() - start
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


@dataclass
class Server:
    """A server process under test."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    serverdir: Path
    log: Path
    started_in: float = 0.0

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process and its live children (gunicorn's worker)
        have used so far, read from Linux ``/proc``."""
        return sum(cpu_of(pid) for pid in self.pids())

    def pids(self) -> list[int]:
        """The process and its direct children."""
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return [self.process.pid, *(int(v) for v in out.split())]

    def rss_kib(self) -> int:
        """Resident memory of the process (and its children) in KiB."""
        pids = [str(self.process.pid)]
        out = subprocess.run(
            ["ps", "-o", "rss=", "--ppid", pids[0], "-p", pids[0]],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return sum(int(v) for v in out.split())


def cpu_of(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Samples a server's resident memory in a thread (every ``every`` seconds); ``peak`` is
    the largest value seen, in MiB."""

    def __init__(self, server: Server, every: float = 0.25) -> None:
        self.server = server
        self.every = every
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(OSError, ValueError):
                self.peak = max(self.peak, self.server.rss_kib() / 1024)

    def stop(self) -> float:
        """Stop sampling; the peak in MiB."""
        self._stop.set()
        self._thread.join()
        return self.peak


def ensure_venv(name: str, packages: Sequence[str], marker: str) -> Path:
    """A virtualenv ``benchmarks/work/<name>`` holding ``packages`` (created once); its bin."""
    venv = WORK / name
    if not (venv / "bin" / marker).exists():
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *packages],
            check=True,
        )
    return venv / "bin"


def ensure_peer_venv() -> Path:
    """The virtualenv with devpi-server and devpi-client from the index (created once)."""
    python = PEER_VENV / "bin" / "python"
    if not (PEER_VENV / "bin" / "devpi-server").exists():
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
    return PEER_VENV / "bin"


def start_devpi_core(
    workdir: Path,
    *,
    config: str = "",
    port: int | None = None,
    serverdir: Path | None = None,
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Server:
    """``devpi-core serve`` with its own server directory (initialised on first start)."""
    port = port or free_port()
    serverdir = serverdir or workdir / "core-serverdir"
    config_file = workdir / "core-config.yml"
    config_file.write_text(config or "logging: {access_log: false}\n")
    log = workdir / "core.log"
    args = [
        str(CORE_BIN / "devpi-core"),
        "serve",
        "--serverdir",
        str(serverdir),
        "--config",
        str(config_file),
        "--port",
        str(port),
        *extra,
    ]
    start = time.monotonic()
    process = subprocess.Popen(
        args, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=clean_env(**(env or {}))
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/+api")
    return Server("devpi-core", url, process, serverdir, log, time.monotonic() - start)


def start_devpi_server(
    workdir: Path,
    *,
    port: int | None = None,
    serverdir: Path | None = None,
    root_pypi: bool = False,
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Server:
    """devpi-server 6.x from the index, as the peers in PEERS.md ran it."""
    peer_bin = ensure_peer_venv()
    port = port or free_port()
    serverdir = serverdir or workdir / "devpi-serverdir"
    if not (serverdir / ".nodeinfo").exists():
        init = [str(peer_bin / "devpi-init"), "--serverdir", str(serverdir)]
        if not root_pypi:
            init.append("--no-root-pypi")
        subprocess.run(init, check=True, env=clean_env(), capture_output=True)
    secret = workdir / "devpi-secret"
    if not secret.exists():
        subprocess.run(
            [str(peer_bin / "devpi-gen-secret"), "--secretfile", str(secret)],
            check=True,
            env=clean_env(),
            capture_output=True,
        )
    log = workdir / "devpi-server.log"
    args = [
        str(peer_bin / "devpi-server"),
        "--serverdir",
        str(serverdir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--secretfile",
        str(secret),
        *extra,
    ]
    start = time.monotonic()
    process = subprocess.Popen(
        args, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=clean_env(**(env or {}))
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/+api", timeout=300)
    return Server("devpi-server", url, process, serverdir, log, time.monotonic() - start)


@dataclass
class WrkResult:
    """One wrk run."""

    requests_per_s: float
    mb_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    non_2xx: int
    raw: str = field(repr=False, default="")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_BYTES = {"B": 1e-6, "KB": 1024 / 1e6, "MB": 1024**2 / 1e6, "GB": 1024**3 / 1e6}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def wrk(  # noqa: PLR0913 - wrk's options, all keyword-only
    url: str,
    *,
    seconds: int = 10,
    connections: int = 8,
    threads: int = 2,
    headers: Sequence[str] = (),
    script: Path | None = None,
    prefix: Sequence[str] = (),
) -> WrkResult:
    """Run wrk with ``--latency`` against ``url`` and parse its report (``prefix``: a command
    wrk runs under, such as ``taskset -c 1``)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (make bench does this)")
    args = [
        *prefix,
        "wrk",
        "--latency",
        "-t",
        str(min(threads, connections)),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "30s",
    ]
    for header in headers:
        args += ["-H", header]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)$", out, re.MULTILINE))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(
        requests_per_s=float(rps.group(1)) if rps else 0.0,
        mb_per_s=float(transfer.group(1)) * _BYTES[transfer.group(2)] if transfer else 0.0,
        p50_ms=_ms(latency.get("50", "nan")),
        p90_ms=_ms(latency.get("90", "nan")),
        p99_ms=_ms(latency.get("99", "nan")),
        errors=sum(int(v) for v in errors.groups()) if errors else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        raw=out,
    )


def rotate_script(directory: Path, paths: Sequence[str]) -> Path:
    """A wrk Lua script that requests ``paths`` in turn (each wrk thread rotates on its own)."""
    listed = ", ".join(f'"{path}"' for path in paths)
    script = directory / "rotate.lua"
    script.write_text(
        f"local paths = {{{listed}}}\nlocal i = 0\n"
        "request = function()\n  i = i + 1\n"
        '  return wrk.format("GET", paths[(i % #paths) + 1])\nend\n'
    )
    return script


def hello_world(threads: int = 16) -> tuple[str, subprocess.Popen[bytes]]:
    """A bare Pyramid hello-world view on waitress (same threads as devpi-core), for scale."""
    port = free_port()
    code = (
        "from pyramid.config import Configurator\n"
        "from pyramid.response import Response\n"
        "import logging, waitress\n"
        "logging.basicConfig(level=logging.ERROR)\n"
        "def hello(request):\n"
        "    return Response(b'hello world', content_type='text/plain')\n"
        "with Configurator() as config:\n"
        "    config.add_route('hello', '/')\n"
        "    config.add_view(hello, route_name='hello')\n"
        "    app = config.make_wsgi_app()\n"
        f"waitress.serve(app, host='127.0.0.1', port={port}, threads={threads}, _quiet=True)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], env=clean_env())
    url = f"http://127.0.0.1:{port}/"
    wait_http(url)
    return url, process


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table."""
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [title, "-" * len(title)]
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def workdir(name: str) -> Path:
    """A fresh scratch directory under ``benchmarks/work``."""
    WORK.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=WORK))


PROXPI_PACKAGES = ("proxpi", "gunicorn")


def start_proxpi(
    workdir: Path,
    upstream_url: str,
    *,
    port: int | None = None,
    serverdir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Server:
    """proxpi from the index (own virtualenv) under gunicorn, as its README and PEERS.md run
    it: one worker, 8 threads, ``--preload``; its cache directory is the ``serverdir``."""
    peer_bin = ensure_venv("proxpi-venv", PROXPI_PACKAGES, "gunicorn")
    port = port or free_port()
    serverdir = serverdir or workdir / "proxpi-cache"
    serverdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "proxpi.log"
    args = [
        str(peer_bin / "gunicorn"),
        "--preload",
        "--bind",
        f"127.0.0.1:{port}",
        "--threads",
        "8",
        "--workers",
        "1",
        "proxpi.server:app",
    ]
    extra = {"PROXPI_INDEX_URL": upstream_url.rstrip("/") + "/", "PROXPI_CACHE_DIR": str(serverdir)}
    start = time.monotonic()
    process = subprocess.Popen(
        args,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=clean_env(**extra, **(env or {})),
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health")
    return Server("proxpi", url, process, serverdir, log, time.monotonic() - start)


def bare_waitress(
    directory: Path, body: bytes, headers: Sequence[tuple[str, str]], threads: int = 16
) -> tuple[str, subprocess.Popen[bytes]]:
    """A bare WSGI app on waitress answering ``body`` with ``headers`` from memory: the
    ceiling of a server built on waitress, for the same bytes."""
    port = free_port()
    (directory / "bare-body").write_bytes(body)
    code = (
        "import logging, sys, waitress\n"
        "logging.basicConfig(level=logging.ERROR)\n"
        f"body = open({str(directory / 'bare-body')!r}, 'rb').read()\n"
        f"headers = {list(headers)!r}\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', headers)\n"
        "    return [body]\n"
        f"waitress.serve(app, host='127.0.0.1', port={port}, threads={threads}, _quiet=True)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], env=clean_env())
    url = f"http://127.0.0.1:{port}/"
    wait_http(url)
    return url, process
