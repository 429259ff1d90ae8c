"""Slow and idle connections against a real ``devpi-core serve``.

Before: 200 idle connections (the connection limit) locked every new client out for two
minutes, and a client sending one byte every few seconds kept its connection forever (waitress
only closes a connection after ``channel_timeout`` seconds without any byte).
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e


def address(server) -> tuple[str, int]:
    parts = urlsplit(server.url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` within ``seconds`` (data it sends is skipped)."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], remaining)
        if readable:
            try:
                if not sock.recv(65536):
                    return True
            except ConnectionResetError:
                return True
    return False


def get_root(server, *, timeout: float = 10) -> tuple[bytes, float]:
    """The status line of ``GET /`` on a new connection, and how long it took."""
    start = time.monotonic()
    with socket.create_connection(address(server), timeout=timeout) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        status = sock.makefile("rb").readline()
    return status, time.monotonic() - start


def test_a_trickling_request_is_cut_off_at_its_deadline(devpi_server):
    server = devpi_server({"server": {"request_timeout": 2, "idle_timeout": 30}})
    request = b"GET / HTTP/1.1\r\nHost: test\r\nX-Padding: " + b"a" * 200
    start = time.monotonic()
    with socket.create_connection(address(server), timeout=10) as sock:
        for byte in request:  # one byte every 0.25 s: never idle for waitress's time-out
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            if closed_within(sock, 0.25):
                break
        elapsed = time.monotonic() - start
    assert 2 <= elapsed < 10, f"connection open for {elapsed:.1f}s"
    server.wait_for("did not arrive within the deadline", timeout=10)


def test_a_slow_but_steady_upload_is_answered(devpi_server):
    # 1000 bytes/s extend the 2 s deadline by a second: 4000 bytes/s over 3 s is fine
    server = devpi_server({"server": {"request_timeout": 2, "request_min_rate": 1000}})
    body = b'{"user": "nobody", "password": "x"}'.ljust(12000)
    head = (
        f"POST /+login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(address(server), timeout=10) as sock:
        sock.sendall(head)
        for offset in range(0, len(body), 1000):
            assert not closed_within(sock, 0.25)
            sock.sendall(body[offset : offset + 1000])
        status = sock.makefile("rb").readline()
    assert status.startswith(b"HTTP/1.1 401 ")


def test_an_idle_keepalive_connection_is_closed(devpi_server):
    server = devpi_server({"server": {"idle_timeout": 1}})
    with socket.create_connection(address(server), timeout=10) as sock:
        sock.sendall(b"GET /+api HTTP/1.1\r\nHost: test\r\n\r\n")
        status = sock.makefile("rb").readline()
        start = time.monotonic()
        assert status.startswith(b"HTTP/1.1 200"), status
        # kept alive after the response, then closed once silent for about a second
        assert not closed_within(sock, 0.5)
        assert closed_within(sock, 8)
    assert time.monotonic() - start < 8


@contextlib.contextmanager
def idle_connections(server, count: int):
    sockets = []
    try:
        for _ in range(count):
            sockets.append(socket.create_connection(address(server), timeout=10))
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def test_idle_connections_do_not_lock_out_new_clients_by_default(devpi_server):
    server = devpi_server()
    with idle_connections(server, 250):
        status, seconds = get_root(server)
    assert status.startswith(b"HTTP/1.1 200"), status
    assert seconds < 8


def test_connections_beyond_the_limit_make_room_by_closing_idle_ones(devpi_server):
    server = devpi_server({"server": {"connection_limit": 40, "idle_timeout": 60}})
    with idle_connections(server, 60) as sockets:
        status, seconds = get_root(server)
        assert status.startswith(b"HTTP/1.1 200"), status
        assert seconds < 8
        # the oldest idle connections were the ones closed
        assert closed_within(sockets[0], 5)
