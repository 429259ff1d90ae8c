"""An upstream that is down, slow or broken: cached data keeps being served, nothing half-done is
cached, and what cannot be served is a clear 502/504/404.
"""

from __future__ import annotations

import logging

import pytest

from devpi_core.testing.upstream import FakeUpstream
from devpi_core_mirror.tests.conftest import wheel

FAST = {"plugins": {"mirror": {"timeout": 0.5, "file_timeout": 0.5, "error_retry": 0}}}


@pytest.fixture
def fast(make_mirror):
    """A mirror with short time-outs that asks again at once after an upstream failure."""
    return make_mirror(FAST, mirror_cache_expiry=0)


def cached(m, project="hello"):
    w = wheel(project, "1.0")
    m.upstream.add(project, w)
    m.page(project)
    return w


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 503},
        {"delay": 1.5},
        {"malformed": "json"},
        {"serial_backwards": True},
    ],
)
def test_stale_page_is_served_with_a_warning(fast, fault, caplog):
    w = cached(fast)
    for name, value in fault.items():
        setattr(fast.upstream.faults, name, value)
    with caplog.at_level(logging.WARNING, logger="devpi_core_mirror"):
        response = fast.page("hello", json_api=False)
        fast.page("hello", json_api=False)
    assert w.filename in response.text
    assert response.headers["Warning"].startswith('110 devpi-core "serving the copy cached at')
    assert response.headers["Cache-Control"] == "no-cache"
    assert len([r for r in caplog.records if "serving the cached page" in r.getMessage()]) == 1


def test_down_upstream_serves_stale_then_resumes(fast):
    cached(fast)
    fast.upstream.stop()
    assert "Warning" in fast.page("hello", json_api=False).headers
    fast.upstream.start()
    fast.upstream.add("hello", wheel("hello", "2.0"))
    response = fast.page("hello", json_api=False)
    assert "hello-2.0-py3-none-any.whl" in response.text
    assert "Warning" not in response.headers


def test_nothing_cached_and_upstream_down_is_502(fast):
    fast.upstream.stop()
    response = fast.page("hello", status=502)
    assert "cannot reach upstream" in response.json["message"]


def test_nothing_cached_and_upstream_slow_is_504(fast):
    fast.upstream.faults.delay = 1.5
    response = fast.page("hello", status=504)
    assert "did not answer within 0.5 s" in response.json["message"]


def test_upstream_500_without_cache_is_502(fast):
    fast.upstream.faults.status = 500
    assert "error 500 getting" in fast.page("hello", status=502).json["message"]


def test_malformed_json_page_without_cache_is_502(fast):
    fast.upstream.add("hello", wheel("hello", "1.0"))
    fast.upstream.faults.malformed = "json"
    assert "is malformed: invalid JSON" in fast.page("hello", status=502).json["message"]


def test_garbage_html_page_yields_no_links(make_mirror, fake_upstream):
    fake_upstream.json_pages = False
    m = make_mirror(FAST)
    fake_upstream.add("hello", wheel("hello", "1.0"))
    fake_upstream.faults.malformed = "html"
    assert m.page("hello")["files"] == []


def test_upstream_404_keeps_the_cached_links(fast):
    cached(fast)
    fast.upstream.remove("hello")
    assert len(fast.page("hello")["files"]) == 1


def test_wrong_hash_is_502_and_not_cached(mirror):
    w = cached(mirror)
    mirror.upstream.faults.wrong_hash = True
    response = mirror.download("hello", w.filename, status=502)
    assert (
        "sha256 mismatch" in response.json["message"]
        if response.content_type == "application/json"
        else "sha256 mismatch" in response.text
    )
    mirror.upstream.faults.wrong_hash = False
    assert mirror.download("hello", w.filename).body == w.content


def test_truncated_file_is_502_and_not_cached(mirror):
    w = cached(mirror)
    mirror.upstream.faults.truncate = True
    mirror.download("hello", w.filename, status=502)
    mirror.upstream.faults.truncate = False
    mirror.upstream.clear()
    assert mirror.download("hello", w.filename).body == w.content
    assert mirror.upstream.count("/files/") == 1


def test_wrong_content_length_is_502_and_not_cached(mirror):
    w = cached(mirror)
    mirror.upstream.faults.wrong_length = True
    response = mirror.download("hello", w.filename, status=502)
    assert f"expected {len(w.content)} bytes, got {len(w.content) - 100}" in response.text
    mirror.upstream.faults.wrong_length = False
    assert mirror.download("hello", w.filename).body == w.content


def test_uncached_file_404_upstream_is_404(mirror):
    w = cached(mirror)
    mirror.upstream.remove("hello")
    response = mirror.download("hello", w.filename, status=404)
    # devpi-server's words: clients (devpi-client, scripts) match on them
    assert f"error 404 getting {mirror.upstream.root}/files/" in response.text


def test_uncached_file_upstream_down_is_502(mirror):
    w = cached(mirror)
    url = mirror.file_url("hello", w.filename)
    mirror.upstream.stop()
    response = mirror.client.app.get(url, status=502, expect_errors=True)
    assert "cannot reach upstream" in response.text


def test_links_to_other_projects_and_bad_names_are_dropped(mirror):
    good = wheel("hello", "1.0")
    mirror.upstream.add("hello", good)
    mirror.upstream.add_link("hello", f"{mirror.upstream.root}/files/00000000/evil-1.0.tar.gz")
    mirror.upstream.add_link("hello", "file:///etc/hello-1.0.tar.gz")
    mirror.upstream.add_link("hello", "javascript:alert(1)")
    mirror.upstream.add_link(
        "hello", f"{mirror.upstream.root}/files/00000000/..%2Fhello-2.0.tar.gz"
    )
    names = [f["filename"] for f in mirror.page("hello")["files"]]
    assert names == [good.filename]


def test_files_on_another_host_are_fetched_through_the_mirror(make_mirror):
    with FakeUpstream(files_host="localhost") as upstream:
        m = make_mirror(upstream=upstream)
        w = wheel("hello", "1.0")
        upstream.add("hello", w)
        assert m.file_url("hello", w.filename).startswith("/root/fake/_f/")
        assert m.download("hello", w.filename).body == w.content
        assert upstream.seen("/files/")[0].headers["Host"].startswith("localhost:")
