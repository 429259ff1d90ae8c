"""The contrib nginx configuration refuses ambiguous request framing before devpi-core sees it.

waitress frames a request that has both ``Content-Length`` and ``Transfer-Encoding`` by the
latter and keeps the connection open; a proxy that framed it by ``Content-Length`` would pass
the rest on as a second, smuggled request. docs/deployment.rst therefore has the proxy
normalise framing; this runs Debian's nginx with ``contrib/nginx/devpi-core.conf`` in front of
a real ``devpi-core serve`` and sends both framings over a raw socket.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devpi_core.testing.plugin import tool_path

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).parents[2] / "contrib" / "nginx" / "devpi-core.conf"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def site_config(upstream_port: int, listen_port: int) -> str:
    """contrib's server block, pointed at the test server and listening on ``listen_port``."""
    text = TEMPLATE.read_text(encoding="utf-8")
    replacements = {
        "server 127.0.0.1:3141;": f"server 127.0.0.1:{upstream_port};",
        "listen 80;": f"listen 127.0.0.1:{listen_port};",
        "listen [::]:80;": "",
    }
    for old, new in replacements.items():
        assert old in text, f"contrib/nginx/devpi-core.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


def main_config(prefix: Path, site: Path) -> str:
    temp = "".join(f"  {name}_temp_path {prefix / name};\n" for name in TEMP_PATHS)
    # as root the workers would switch to an unprivileged user that cannot read the prefix
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\n"
        f"events {{}}\nhttp {{\n  access_log off;\n{temp}  include {site};\n}}\n"
    )


def wait_for_port(port: int, process: subprocess.Popen[bytes], prefix: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            # not listening yet: wait on the process instead of sleeping blindly
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)
        else:
            return
    log = (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
    pytest.fail(f"nginx did not start: {log}")


@pytest.fixture
def proxied(devpi_server, tmp_path):
    binary = tool_path("nginx")
    server = devpi_server()
    upstream_port = urlsplit(server.url).port
    assert upstream_port is not None
    port = free_port()
    site = tmp_path / "devpi-core.conf"
    site.write_text(site_config(upstream_port, port), encoding="utf-8")
    main = tmp_path / "nginx.conf"
    main.write_text(main_config(tmp_path, site), encoding="utf-8")
    process = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(main),
         "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, process, tmp_path)
        yield server, port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` and read until nginx closes the connection (or 5 s pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received


def test_nginx_passes_ordinary_requests(proxied):
    _server, port = proxied
    answer = exchange(port, b"GET /+api HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"x-devpi-api-version: 2" in answer.lower()  # devpi-core answered, through nginx


SMUGGLED = b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n"


@pytest.mark.parametrize(
    "headers",
    [
        f"Content-Length: {len(SMUGGLED)}\r\nTransfer-Encoding: chunked\r\n",
        f"Transfer-Encoding: chunked\r\nContent-Length: {len(SMUGGLED)}\r\n",
    ],
    ids=["cl-te", "te-cl"],
)
def test_nginx_refuses_content_length_with_transfer_encoding(proxied, headers):
    server, port = proxied
    raw = b"POST /+api HTTP/1.1\r\nHost: test\r\n" + headers.encode() + b"\r\n" + SMUGGLED
    answer = exchange(port, raw)
    status = answer.split(b"\r\n", 1)[0]
    # nginx refuses it outright; had it forwarded it, only one framing may have reached the
    # server, and never a second request hidden in the body
    assert status == b"HTTP/1.1 400 Bad Request", answer[:300]
    marker = f"/marker-{uuid.uuid4().hex}"
    exchange(port, f"GET {marker} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
    server.wait_for(marker, timeout=10)
    assert "/smuggled" not in server.log()
