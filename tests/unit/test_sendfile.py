"""devpi_core.connections sends files on disk with os.sendfile: the same bytes as waitress's
own path, keep-alive intact after them, and anything that is not a real file sent as before."""

from __future__ import annotations

import http.client
import io
import os

import pytest

from devpi_core import connections
from devpi_core.connections import RequestDeadline, create_server
from devpi_core.testing import waitress_loop
from devpi_core.testing.contracts import wait_until

pytestmark = pytest.mark.skipif(not connections.SENDFILE, reason="no os.sendfile here")
SIZE = 3 * 1024 * 1024 + 17  # more than a socket buffer takes at once


@pytest.fixture
def served(tmp_path, monkeypatch):
    content = os.urandom(SIZE)
    path = tmp_path / "blob"
    path.write_bytes(content)
    calls: list[int] = []
    real = os.sendfile

    def counted(*args):
        sent = real(*args)
        calls.append(sent)
        return sent

    monkeypatch.setattr(os, "sendfile", counted)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", str(SIZE))])
        wrapper = environ["wsgi.file_wrapper"]
        if environ["PATH_INFO"] == "/memory":
            return wrapper(io.BytesIO(content), 1 << 18)  # no descriptor: waitress's own way
        return wrapper(path.open("rb"), 1 << 18)

    server = create_server(app, deadline=RequestDeadline(30, 1000), host="127.0.0.1", port=0,
                           threads=2)
    with waitress_loop.served(server):
        yield server.effective_port, content, calls


def _sent(calls: list[int], total: int) -> int:
    """The number of sendfile calls once their bytes add up to ``total``. The server's loop
    thread records a call only after the kernel took the bytes, so the client may have read
    them all by then: wait for the count, with a deadline."""
    wait_until(lambda: sum(calls) >= total, timeout=30)
    assert sum(calls) == total
    return len(calls)


def _get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Length") == str(SIZE)
    return response.read()


def test_a_file_goes_out_with_sendfile_and_the_connection_stays_usable(served):
    port, content, calls = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        assert _get(conn, "/file") == content
        _sent(calls, SIZE)  # every byte went through sendfile
        assert _get(conn, "/file") == content  # the same connection, the next response
        used = _sent(calls, 2 * SIZE)
        assert _get(conn, "/memory") == content
        assert _sent(calls, 2 * SIZE) == used  # no descriptor: sent from Python, as waitress does
    finally:
        conn.close()


def test_a_streamed_answer_pauses_before_waitress_moves_it_to_a_temp_file():
    """waitress buffers a streamed answer in memory up to ``outbuf_overflow`` and in a temp
    file beyond; the server pauses the stream below that, so a cold file's bytes are not
    written to disk a second time while a slow client reads."""
    from dataclasses import replace  # noqa: PLC0415

    from devpi_core.blobs import CHUNK  # noqa: PLC0415
    from devpi_core.config import ServerSettings  # noqa: PLC0415
    from devpi_core.serving import _listen  # noqa: PLC0415

    server = _listen(lambda environ, start_response: [], replace(ServerSettings(), port=0))
    try:
        assert server.adj.outbuf_high_watermark + CHUNK < server.adj.outbuf_overflow
    finally:
        server.close()
