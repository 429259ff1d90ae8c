"""One devpi-client session against devpi-core and devpi-server: what the client sees must match.

Each server sits behind a small recording proxy on 127.0.0.1. The session (every command group
of devpi-client) runs once per server; the test compares, request by request, the status
codes, the JSON envelope and result keys and the devpi headers, plus each command's exit status.
Keys devpi-core adds are allowed only where ``EXTRA_KEYS`` (in ``result``) and
``EXTRA_ENVELOPE`` (beside ``type`` and ``result``) document them (and
docs/devpi-compatibility.rst explains them).

devpi-server comes from the venv that ``benchmarks/harness.py`` builds (``ensure_peer_venv``,
run by ``make test``); tests never reach the package index themselves, so without that venv
the test is skipped, and fails under ``CI=true``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from peer import FAST_ARGON2, peer_harness

from devpi_core.testing.devpiclient import DevpiCLI, running_server
from devpi_core.testing.dists import DistSpec, make_doczip, make_sdist, make_wheel

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
DEVPI_HEADERS = ("X-DEVPI-API-VERSION", "X-DEVPI-SERVER-VERSION", "X-DEVPI-UUID", "X-DEVPI-SERIAL")
PASSWORD = "parity-123"
NEW_PASSWORD = "parity-456"

# result keys devpi-core sends beyond devpi-server's, per result type (see the compat doc)
EXTRA_KEYS = {
    "indexconfig": {"acl_read"},  # read access control per index
    "releasefilemeta": {"size"},  # file size (PEP 700 data, also on the simple pages)
}
EXTRA_ENVELOPE = {
    "projectconfig": {"project-status"},  # PEP 792, as on the simple pages
}


# -- recording proxy ------------------------------------------------------------------------
@dataclass
class Exchange:
    """One request through the proxy and what came back."""

    method: str
    path: str
    accept: str
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The decoded body, or None when it is not JSON."""
        if "json" not in self.headers.get("content-type", ""):
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class RecordingProxy:
    """A reverse proxy on 127.0.0.1 that keeps every exchange; ``Host`` passes through."""

    def __init__(self, target: str) -> None:
        self.target = target.removeprefix("http://").rstrip("/")
        self.exchanges: list[Exchange] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                connection = http.client.HTTPConnection(proxy.target, timeout=60)
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                    reply = {k.lower(): v for k, v in response.getheaders()}
                    status, reason = response.status, response.reason
                finally:
                    connection.close()
                proxy.exchanges.append(
                    Exchange(
                        self.command, self.path, self.headers.get("Accept", ""), status, reply, data
                    )
                )
                self.send_response(status, reason)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_PUSH = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


# -- the session ----------------------------------------------------------------------------
def _session(devpi: DevpiCLI, url: str, files: dict[str, Path]) -> list[tuple[str, int]]:
    """devpi-client commands of every group; returns (command, exit status) pairs."""
    commands: list[tuple[str, ...]] = [
        ("use", url),
        ("user", "-c", "alice", f"password={PASSWORD}", "email=alice@example.com"),
        ("user", "-c", "alice", f"password={PASSWORD}"),
        ("login", "alice", "--password", "wrong-password"),
        ("login", "alice", "--password", PASSWORD),
        ("index", "-c", "dev"),
        ("index", "-c", "prod", "volatile=False", "bases=alice/dev"),
        ("index", "-c", "dev"),
        ("index", "-c", "bad", "bases=nobody/nothing"),
        ("use", "alice/dev"),
        ("use", "nobody/nothing"),
        ("use", "-l"),
        ("index", "dev", "acl_upload+=bob", "title=Dev"),
        ("index", "dev", "acl_upload-=bob"),
        ("index", "dev", "acl_upload-=nobody"),
        ("index", "dev", "colour=blue"),
        ("index", "-l"),
        ("index", "prod"),
        ("user", "-m", "alice", "email=alice@example.org"),
        ("user", "alice"),
        ("user", "-l"),
        ("upload", *(str(files[k]) for k in ("sdist", "wheel", "doc"))),
        ("getjson", _file_path(files["wheel"])),
        ("getjson", _file_path(files["wheel"]) + ".missing"),
        ("index", "-c", "child", "bases=alice/dev"),
        ("use", "alice/child"),
        ("upload", str(files["rebuilt"])),
        ("list", "pkg"),
        ("getjson", "pkg/1.0"),
        ("getjson", "pkg"),
        ("remove", "-y", f"{url}/alice/child/{_file_path(files['rebuilt'])}"),
        ("use", "alice/dev"),
        ("list",),
        ("list", "pkg"),
        ("getjson", "pkg/1.0"),
        ("getjson", "/+api"),
        ("push", "pkg==1.0", "alice/prod"),
        ("push", "pkg==9.9", "alice/prod"),
        ("push", "pkg==1.0", "nobody/nothing"),
        ("list", "--index", "alice/prod", "pkg"),
        ("remove", "-y", "--index", "alice/prod", "pkg==1.0"),
        ("remove", "-y", "pkg==1.0"),
        ("list", "pkg"),
        ("index", "--delete", "prod", "-y"),
        ("user", "--delete", "alice", "-y"),
        ("passwd",),
        ("login", "alice", "--password", PASSWORD),
        ("login", "alice", "--password", NEW_PASSWORD),
        ("logout",),
        ("upload", str(files["wheel"])),
        ("login", "alice", "--password", NEW_PASSWORD),
        ("index", "prod", "volatile=True"),
        ("index", "--delete", "prod", "-y"),
        ("user", "--delete", "alice", "-y"),
    ]
    stdin = f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    return [
        (" ".join(args).replace(url, "URL"), devpi(*args, code=None, stdin=stdin).returncode)
        for args in commands
    ]


def _file_path(path: Path) -> str:
    """``+f/<hash dirs>/<name>`` of an uploaded file (both servers lay files out alike)."""
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"+f/{sha256[:3]}/{sha256[3:16]}/{path.name}"


def _normalize_path(path: str) -> str:
    return re.sub(r"\d{14}-\d+", "<stamp>", path)


def _keys(value: Any) -> set[str]:
    return set(value) if isinstance(value, dict) else set()


def _shape(exchange: Exchange) -> dict[str, Any]:
    """What devpi-client reads from one reply."""
    data = exchange.json()
    shape: dict[str, Any] = {
        "request": f"{exchange.method} {_normalize_path(exchange.path)}",
        "status": exchange.status,
        "api-version": exchange.headers.get("x-devpi-api-version"),
        "devpi-headers": sorted(h for h in DEVPI_HEADERS if h.lower() in exchange.headers),
    }
    # devpi-client reads JSON only where it asked for it; other bodies (upload errors) are
    # pages for humans, and the client shows the reason phrase instead
    if isinstance(data, dict) and "application/json" in exchange.accept:
        extra = EXTRA_ENVELOPE.get(str(data.get("type")), set())
        shape["envelope"] = sorted(set(data) - extra)
        shape["type"] = data.get("type")
    return shape


def _result_keys(exchange: Exchange) -> tuple[str | None, set[str]]:
    data = exchange.json()
    if not isinstance(data, dict):
        return None, set()
    result = data.get("result")
    result_type = data.get("type")
    if result_type in ("projectconfig", "list:userconfig"):
        return result_type, set().union(*(_keys(v) for v in result.values())) if result else set()
    return result_type, _keys(result)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("dists")
    spec = DistSpec("pkg", "1.0", summary="parity package")
    doc = base / "pkg-1.0.doc.zip"
    doc.write_bytes(make_doczip())
    (base / "rebuilt").mkdir()
    rebuilt = make_wheel(DistSpec("pkg", "1.0", module_code="REBUILT = True\n")).write(
        base / "rebuilt"
    )
    return {
        "sdist": make_sdist(spec).write(base),
        "wheel": make_wheel(spec).write(base),
        "doc": doc,
        "rebuilt": rebuilt,
    }


def _record(
    name: str, url: str, work: Path, files: dict[str, Path]
) -> tuple[list[tuple[str, int]], list[Exchange]]:
    proxy = RecordingProxy(url)
    try:
        statuses = _session(DevpiCLI.create(work / f"client-{name}"), proxy.url, files)
    finally:
        proxy.close()
    return statuses, proxy.exchanges


@pytest.fixture(scope="module")
def transcripts(tmp_path_factory, files):
    """Both sessions, run side by side (each server is busy with only its own client)."""
    harness = peer_harness()
    work = tmp_path_factory.mktemp("parity")
    with ThreadPoolExecutor(2) as pool:
        starting = pool.submit(
            harness.start_devpi_server,
            work,
            extra=FAST_ARGON2,
        )
        try:
            with running_server(
                work / "core", {"plugins": {"mirror": {"init_root_pypi": False}}}
            ) as core:
                peer = starting.result()
                jobs = {
                    name: pool.submit(_record, name, url, work, files)
                    for name, url in (("devpi-server", peer.url), ("devpi-core", core.url))
                }
                return {name: job.result() for name, job in jobs.items()}
        finally:
            starting.result().stop()


def test_devpi_client_sees_the_same_replies(transcripts):
    """One test, so test distribution never runs the (expensive) session twice."""
    server_statuses, server = transcripts["devpi-server"]
    core_statuses, core = transcripts["devpi-core"]
    # every command ends the same way
    assert core_statuses == server_statuses
    # every request gets the same status, envelope, result type and devpi headers
    assert len(core) > 60, "the session should have exercised the whole API"
    assert [_shape(e) for e in core] == [_shape(e) for e in server]
    # every key devpi-server sends is there; additional keys only where documented
    for theirs, ours in zip(server, core, strict=True):
        result_type, their_keys = _result_keys(theirs)
        _, our_keys = _result_keys(ours)
        where = f"{ours.method} {ours.path} ({result_type})"
        assert their_keys - our_keys == set(), f"{where}: keys devpi-server sends and we do not"
        assert our_keys - their_keys <= EXTRA_KEYS.get(result_type or "", set()), where
