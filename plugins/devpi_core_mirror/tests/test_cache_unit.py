"""Cache policy, single-flight, the breaker and the settings (no server)."""

from __future__ import annotations

import io
import threading

import pytest

from devpi_core.errors import UpstreamUnavailable
from devpi_core.outbound import origin
from devpi_core.records import UpstreamFile, UpstreamPage
from devpi_core.specs import build
from devpi_core_mirror.cache import MISSING, STALE, STORE, TOUCH, PageState, SingleFlight, decide
from devpi_core_mirror.client import Breaker
from devpi_core_mirror.fills import DONE, STREAMING, VERIFIED, FileJob, Fill, FillEnv, Fills
from devpi_core_mirror.settings import (
    Credential,
    MirrorSettings,
    default_upstream_url,
    validate_index,
    web_url_fmt,
)

FILES = (UpstreamFile("p-1.0.tar.gz", "https://h.example/p-1.0.tar.gz"),)


def cached(serial=10, etag='"e"'):
    return PageState(token=5, serial=serial, etag=etag, fetched_at=1.0, fresh_until=2.0)


def test_not_modified_touches_and_keeps_a_newer_serial():
    outcome = decide(
        cached(), UpstreamPage("not_modified", serial=12, etag=None), ignore_serial=False
    )
    assert (outcome.action, outcome.serial, outcome.etag) == (TOUCH, 12, '"e"')
    outcome = decide(cached(), UpstreamPage("not_modified", serial=3), ignore_serial=False)
    assert outcome.serial == 10


def test_not_found_keeps_cached_links_or_remembers_the_miss():
    assert decide(cached(), UpstreamPage("not_found"), ignore_serial=False).action == TOUCH
    assert decide(PageState(), UpstreamPage("not_found"), ignore_serial=False).action == MISSING


def test_serial_going_backwards_is_refused_unless_ignored():
    page = UpstreamPage("ok", FILES, serial=9, etag='"n"')
    stale = decide(cached(), page, ignore_serial=False)
    assert stale.action == STALE
    assert "older than the cached 10" in stale.reason
    stored = decide(cached(), page, ignore_serial=True)
    assert (stored.action, stored.serial, stored.files) == (STORE, 9, FILES)


def test_answers_without_serial_keep_the_stored_one():
    outcome = decide(cached(), UpstreamPage("ok", FILES, serial=None), ignore_serial=False)
    assert (outcome.action, outcome.serial) == (STORE, 10)
    first = decide(PageState(), UpstreamPage("ok", FILES, serial=4), ignore_serial=False)
    assert (first.action, first.serial) == (STORE, 4)


def test_page_state_freshness():
    state = cached()
    assert state.is_fresh(1.5)
    assert not state.is_fresh(2.0)
    missing = PageState(missing_until=5.0)
    assert missing.is_missing(4.0)
    assert not missing.is_missing(6.0)


def test_single_flight_runs_once_for_concurrent_callers():
    flight: SingleFlight[int] = SingleFlight()
    release = threading.Event()
    started = threading.Event()
    calls = []
    waits = []

    def fetch():
        calls.append(1)
        started.set()
        assert release.wait(10)
        return 42

    flight = SingleFlight(waits.append)
    results = []
    leader = threading.Thread(target=lambda: results.append(flight.do("k", fetch)))
    leader.start()
    assert started.wait(10)
    followers = [
        threading.Thread(target=lambda: results.append(flight.do("k", fetch))) for _ in range(5)
    ]
    for t in followers:
        t.start()
    while waits.count(1) < 5:
        threading.Event().wait(0.01)
    assert flight.running("k")
    release.set()
    for t in [leader, *followers]:
        t.join(10)
    assert results == [42] * 6
    assert calls == [1]
    assert sum(waits) == 0
    assert not flight.running("k")


def test_single_flight_shares_errors_and_forgets_them():
    flight: SingleFlight[int] = SingleFlight()

    def boom():
        raise UpstreamUnavailable("down")

    with pytest.raises(UpstreamUnavailable):
        flight.do("k", boom)
    assert flight.do("k", lambda: 1) == 1


def test_breaker_opens_after_repeated_failures_and_closes_on_success():
    breaker = Breaker(threshold=2, open_for=60)
    breaker.check("x")
    breaker.failed("refused")
    breaker.check("x")
    breaker.failed("refused")
    with pytest.raises(UpstreamUnavailable, match="refused"):
        breaker.check("x")
    breaker.succeeded()
    breaker.check("x")


def test_origin_compares_scheme_host_and_port():
    assert origin("https://H.example/simple/") == origin("https://h.example:443/x")
    assert origin("http://h.example/") != origin("https://h.example/")


def test_settings_and_validation():
    settings = build(
        MirrorSettings,
        {
            "verify_before_send": "1M",
            "credentials": {
                "/root/x/": {"url": "https://h.example/simple/", "username": "u", "password": "p"}
            },
        },
    )
    assert settings.verify_before_send == 1 << 20
    assert settings.credentials == {"root/x": Credential("https://h.example/simple/", "u", "p")}
    assert settings.credentials["root/x"].for_url("https://H.example:443/other/") == ("u", "p")
    assert settings.credentials["root/x"].for_url("http://h.example/simple/") is None
    assert validate_index({"mirror_url": "https://h.example/simple/"}) == []
    assert "required" in validate_index({})[0]
    assert "credentials" in validate_index({"mirror_url": "https://u:p@h.example/simple/"})[0]
    assert "http://" in validate_index({"mirror_url": "file:///srv/simple/"})[0]
    assert validate_index({"mirror_url": "https://h.example/", "mirror_cache_expiry": -1})


def test_default_upstream_comes_from_pip():
    url = default_upstream_url()
    assert url.startswith("https://")
    assert url.endswith("/simple/")
    assert web_url_fmt(url).endswith("/project/{name}/")


def test_no_second_fetch_when_a_fill_stored_the_file_meanwhile():
    # the view saw no blob, the fill that stored it finished before this request got here
    fills = Fills()
    url = "http://up/x-1.0.tar.gz"
    job = FileJob("root/fake/+f/abc/def/x-1.0.tar.gz", url, "x-1.0.tar.gz", {}, 3)

    def make(_job):
        raise AssertionError("a second upstream fetch was started")

    assert fills.get(job, make, lambda: True) is None
    assert fills.running() == 0


def test_a_client_arriving_while_the_blob_is_stored_gets_the_blob():
    # The fill moves on from "streaming" to "verified" (its temp file about to go into the blob
    # store) between a client's wait and its look at the state, and it has no handle of its own
    # on the content: the client must wait for the blob instead of failing.
    job = FileJob("k", "http://up/x-1.0.tar.gz", "x-1.0.tar.gz", {}, 5)
    env = FillEnv(None, None, "", None, threading.Event())  # type: ignore[arg-type]

    def store() -> None:
        with fill.cond:
            fill.sha256, fill.state = "ab" * 32, DONE
            fill.cond.notify_all()

    class Racing(Fill):
        raced = False

        def wait(self, states, timeout):
            if states == (STREAMING, VERIFIED) and not self.raced:
                self.raced = True
                self.state = VERIFIED  # the fill got further right after the wait returned
                threading.Timer(0.05, store).start()
                return STREAMING
            return super().wait(states, timeout)

    fill = Racing(job, env, lambda sha: None)
    fill.state, fill.written = STREAMING, 5
    opened = []

    def open_blob(sha256):
        opened.append(sha256)
        return io.BytesIO(b"hello")

    stream = fill.reader(open_blob, idle_timeout=5)
    assert b"".join(stream.chunks) == b"hello"
    assert opened == ["ab" * 32]


def test_a_client_arriving_after_the_check_reads_the_fills_copy_before_the_commit(tmp_path):
    # Verified content is served from the fill's own handle on its temp file, which the blob
    # store may already have moved or deleted: no read back from the blob store (a GET on an
    # object store) and no waiting for the metadata commit.
    job = FileJob("k", "http://up/x-1.0.tar.gz", "x-1.0.tar.gz", {}, 5)
    env = FillEnv(None, None, "", None, threading.Event())  # type: ignore[arg-type]
    fill = Fill(job, env, lambda sha: None)
    temp = tmp_path / "tmp"
    temp.write_bytes(b"hello")
    fill._spare = open(temp, "rb")  # noqa: SIM115 - as _download opens it
    temp.unlink()  # handed to the blob store
    fill.state, fill.written = VERIFIED, 5

    def open_blob(sha256):
        raise AssertionError("the blob store was asked")

    stream = fill.reader(open_blob, idle_timeout=0.2, verified=True)
    assert b"".join(stream.chunks) == b"hello"
    assert fill.state == VERIFIED  # answered while the commit is still under way
    fill._spare.close()
