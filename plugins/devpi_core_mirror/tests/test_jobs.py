"""Background jobs: the queue itself, and pages the mirror stores behind the answer."""

from __future__ import annotations

import functools
import threading

from devpi_core import services
from devpi_core_mirror import layout
from devpi_core_mirror.index import MirrorIndex
from devpi_core_mirror.jobs import JobQueue
from devpi_core_mirror.service import MirrorService
from devpi_core_mirror.tests.conftest import wheel


def test_jobs_run_in_order_and_flush_waits_for_them():
    writes = JobQueue("test-jobs")
    gate = threading.Event()
    done: list[int] = []
    writes.submit(lambda: gate.wait(10))
    for i in range(5):
        writes.submit(functools.partial(done.append, i))
    assert writes.pending() == 6
    assert writes.flush(timeout=0.05) is False
    gate.set()
    assert writes.flush(timeout=10) is True
    assert done == [0, 1, 2, 3, 4]
    assert writes.pending() == 0
    writes.close()


def test_a_failing_job_is_logged_and_the_next_ones_run(caplog):
    writes = JobQueue("test-jobs")
    done: list[str] = []
    writes.submit(lambda: 1 / 0)
    writes.submit(lambda: done.append("after"))
    assert writes.flush(timeout=10)
    assert done == ["after"]
    assert "test-jobs: a background job failed" in caplog.text
    assert "ZeroDivisionError" in caplog.text
    writes.close()


def test_close_runs_what_is_queued_and_later_jobs_run_in_the_caller():
    writes = JobQueue("test-jobs")
    gate = threading.Event()
    done: list[str] = []
    writes.submit(lambda: gate.wait(10))
    writes.submit(lambda: done.append("queued"))
    closer = threading.Thread(target=writes.close)
    closer.start()
    gate.set()
    closer.join(10)
    assert done == ["queued"]
    writes.submit(lambda: done.append(threading.current_thread().name))
    assert done == ["queued", threading.current_thread().name]


def test_wait_below_waits_until_the_queue_is_short_enough():
    writes = JobQueue("test-jobs")
    gate = threading.Event()
    writes.submit(lambda: gate.wait(10))
    writes.submit(lambda: None)
    assert writes.wait_below(3, timeout=0) is True
    assert writes.wait_below(2, timeout=0.05) is False
    waiter = threading.Thread(target=writes.wait_below, args=(1,))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # two jobs still queued or running
    gate.set()
    waiter.join(10)
    assert not waiter.is_alive()
    assert writes.pending() == 0
    writes.close()


def _blocked(mirror):
    """Hold the write-behind thread until the returned event is set."""
    gate = threading.Event()
    mirror.registry[MirrorService].writes.submit(lambda: gate.wait(10))
    return gate


def _stored(mirror, key):
    with services.metadata_store(mirror.registry).read() as tx:
        return tx.get(key)


def test_a_cold_page_is_answered_before_it_is_stored(mirror):
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    gate = _blocked(mirror)
    try:
        files = [f["filename"] for f in mirror.page("hello")["files"]]
        assert files == ["hello-1.0-py3-none-any.whl"]
        assert _stored(mirror, layout.page_key("root/fake", "hello")) is None
        # served from memory meanwhile: the file, and the page again
        assert mirror.download("hello", "hello-1.0-py3-none-any.whl").status_int == 200
        assert [f["filename"] for f in mirror.page("hello")["files"]] == files
    finally:
        gate.set()
    mirror.settle()
    assert _stored(mirror, layout.page_key("root/fake", "hello")) is not None
    assert mirror.upstream.count("/simple/hello/") == 1


def test_a_failed_store_write_makes_the_page_fetched_again(mirror, monkeypatch, caplog):
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    gate = _blocked(mirror)

    def disk_full(_files):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(layout, "page_record", disk_full)
    try:
        assert mirror.page("hello")["files"]
    finally:
        gate.set()
    mirror.settle()
    assert "No space left on device" in caplog.text
    assert _stored(mirror, layout.state_key("root/fake", "hello")) is None
    monkeypatch.undo()
    mirror.client.create_user("carol")  # any write: rendered pages are checked again
    assert mirror.page("hello")["files"]
    mirror.settle()
    assert mirror.upstream.count("/simple/hello/") == 2
    assert _stored(mirror, layout.page_key("root/fake", "hello")) is not None


def test_deleting_the_index_drops_writes_still_queued(mirror):
    mirror.upstream.add("hello", wheel("hello", "1.0"))
    gate = _blocked(mirror)
    try:
        mirror.page("hello")
        mirror.client.request("DELETE", "/root/fake", status=201)
    finally:
        gate.set()
    mirror.settle()
    with services.metadata_store(mirror.registry).read() as tx:
        assert list(tx.keys(layout.prefix("root/fake"))) == []


def test_deleting_an_index_with_cached_pages_does_not_wait_for_queued_writes(
    mirror, monkeypatch
):
    for name in ("alpha", "beta"):
        mirror.upstream.add(name, wheel(name, "1.0"))
    mirror.page("alpha")
    mirror.settle()
    writes = mirror.registry[MirrorService].writes
    gate = threading.Event()
    writes.submit(lambda: gate.wait(10))
    mirror.page("beta")  # its write queues behind the gate
    deleting = threading.Event()
    delete_all = MirrorIndex.delete_all

    def in_the_transaction(self, tx):
        deleting.set()  # the deletion holds the store's lock from here
        gate.set()  # so beta's write now waits for it
        delete_all(self, tx)

    monkeypatch.setattr(MirrorIndex, "delete_all", in_the_transaction)
    thread = threading.Thread(
        target=lambda: mirror.client.request("DELETE", "/root/fake", status=201)
    )
    thread.start()
    assert deleting.wait(5)
    thread.join(5)
    assert not thread.is_alive(), "deleting the index waited for the queued writes"
    mirror.settle()
    with services.metadata_store(mirror.registry).read() as tx:
        assert list(tx.keys(layout.prefix("root/fake"))) == []


def test_cold_pages_wait_while_the_queue_holds_too_many_unstored(mirror):
    """Each queued page holds its files in memory until stored; uv asks for dozens of cold
    pages at once, so a request waits while ``PENDING_PAGES`` are queued."""
    from devpi_core_mirror.project_cache import PENDING_PAGES  # noqa: PLC0415

    for i in range(PENDING_PAGES + 1):
        mirror.upstream.add(f"p{i}", wheel(f"p{i}", "1.0"))
    gate = _blocked(mirror)  # one job running: room for PENDING_PAGES - 1 pages more
    answered: list[str] = []
    try:
        for i in range(PENDING_PAGES - 1):
            assert mirror.page(f"p{i}")["files"]
        last = f"p{PENDING_PAGES}"
        requester = threading.Thread(target=lambda: answered.append(mirror.page(last)["name"]))
        requester.start()
        requester.join(0.3)
        assert requester.is_alive()
        assert answered == []
    finally:
        gate.set()
    requester.join(10)
    assert answered == [last]
