"""devpi_core.heap: the heap is trimmed once per quiet spell after activity, and never while
requests are worked on or when nothing happened."""

from __future__ import annotations

import http.client

from devpi_core.connections import RequestDeadline, create_server
from devpi_core.heap import IdleTrim, malloc_trim
from devpi_core.testing.contracts import wait_until
from devpi_core.testing.waitress_loop import served


def test_trims_once_after_quiet_ticks_and_not_while_idle():
    trims: list[int] = []
    trim = IdleTrim(lambda: trims.append(1), quiet_ticks=2)
    assert [trim.tick(0, busy=False) for _ in range(5)] == [False] * 5  # nothing happened yet
    assert not trim.tick(100, busy=False)  # activity since the last tick
    assert not trim.tick(100, busy=False)  # quiet for one tick
    assert trim.tick(100, busy=False)  # and two: trimmed
    assert [trim.tick(100, busy=False) for _ in range(5)] == [False] * 5  # once per spell
    assert len(trims) == 1


def test_work_in_progress_or_new_activity_postpones_the_trim():
    trims: list[int] = []
    trim = IdleTrim(lambda: trims.append(1), quiet_ticks=2)
    trim.tick(10, busy=False)
    for _ in range(4):  # a long request: no new bytes, but a worker is busy
        assert not trim.tick(10, busy=True)
    assert not trim.tick(10, busy=False)
    assert not trim.tick(20, busy=False)  # another request came in
    assert not trim.tick(20, busy=False)
    assert trim.tick(20, busy=False)
    assert not trim.tick(30, busy=False)
    assert not trim.tick(30, busy=False)
    assert trim.tick(30, busy=False)  # the next quiet spell trims again
    assert len(trims) == 2


def test_without_a_trim_function_nothing_runs():
    trim = IdleTrim(None, quiet_ticks=1)
    assert not trim.tick(5, busy=False)
    assert not trim.tick(5, busy=False)


def test_malloc_trim_runs_on_this_c_library():
    trim = malloc_trim()
    if trim is not None:  # glibc: returns 1 when memory was released, else 0
        assert trim() in (0, 1)


def test_the_server_trims_once_it_falls_quiet_after_a_request():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    server = create_server(app, deadline=RequestDeadline(30, 1000), host="127.0.0.1", port=0,
                           threads=2, cleanup_interval=1)
    trims: list[int] = []
    server.idle_trim = IdleTrim(lambda: trims.append(1), quiet_ticks=1)
    with served(server):
        assert server.received == 0
        conn = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=30)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"ok"
        conn.close()
        assert server.received > 0
        wait_until(lambda: trims, timeout=30)  # within a few maintenance rounds (one a second)
