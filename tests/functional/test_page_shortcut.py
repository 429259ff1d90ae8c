"""The warm-page shortcut (devpi_core.page_shortcut): warm public pages answered before Pyramid,
byte for byte and header for header what the full path answers; everything else goes through."""

from __future__ import annotations

import pytest

from devpi_core import page_shortcut
from devpi_core.testing.client import PEP691
from devpi_core.testing.dists import DistSpec, make_wheel

PAGE = "/alice/dev/+simple/hello/"


@pytest.fixture
def alice(client, monkeypatch):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("hello", "1.0")), name="hello")
    client.logout()
    client.full = []  # the requests Pyramid handled
    real = page_shortcut.default_execution_policy

    def counted(environ, router):
        client.full.append(environ["PATH_INFO"])
        return real(environ, router)

    monkeypatch.setattr(page_shortcut, "default_execution_policy", counted)
    return client


def _headers(response):
    return sorted((k, v) for k, v in response.headerlist if k != "X-Request-ID")


WARM = [{"Accept": "text/html"}, {"Accept": PEP691}, {"Accept": PEP691, "Accept-Encoding": "gzip"}]
OTHERS = [  # a query, a conditional request, a name to redirect, a proxy's outside URL
    (PAGE + "?x=1", {}, 200),
    (PAGE, {"If-None-Match": "*"}, 304),
    ("/alice/dev/+simple/Hello/", {"Accept": "text/html"}, 302),
    (PAGE, {"X-Outside-Url": "http://example.invalid"}, 200),
]


def test_a_warm_page_skips_pyramid_and_answers_the_same(alice):
    for headers in WARM:
        cold = alice.app.get(PAGE, headers=headers)  # rendered by the view, now cached
        alice.full.clear()
        warm = alice.app.get(PAGE, headers=headers)
        assert alice.full == [], headers  # the shortcut answered
        assert warm.body == cold.body
        assert _headers(warm) == _headers(cold)
        assert warm.headers["X-Request-ID"] != cold.headers["X-Request-ID"]
        assert warm.headers["X-Content-Type-Options"] == "nosniff"


def test_everything_else_goes_through_pyramid(alice):
    assert alice.app.get(PAGE).status_code == 200  # warm
    for path, headers, status in OTHERS:
        alice.full.clear()
        alice.app.get(path, headers=headers, status=status)
        assert alice.full == [path.partition("?")[0]], (path, headers)


def test_no_shortcut_with_a_docs_origin(make_app):
    client = make_app({"server": {"docs_url": "http://docs.example.invalid/"}})
    assert page_shortcut.execution_policy(client.app.app.registry) is None
    plain = make_app()
    assert page_shortcut.execution_policy(plain.app.app.registry) is not None


def test_a_large_page_from_its_temp_file_skips_pyramid_and_answers_the_same(alice, monkeypatch):
    from devpi_core import page_bodies  # noqa: PLC0415
    from devpi_core.views import simple  # noqa: PLC0415

    # pages of popular projects are megabytes: spilled to temp files and sent from there
    for module in (page_shortcut, simple):
        monkeypatch.setattr(module, "LARGE_BODY", 64)
    monkeypatch.setattr(page_bodies, "SPILL_MIN", 64)
    path = "/alice/dev/+simple/large/"
    alice.login("alice")
    alice.upload("alice/dev", make_wheel(DistSpec("large", "1.0")), name="large")
    alice.logout()
    for headers in WARM:
        cold = alice.app.get(path, headers=headers)
        alice.full.clear()
        warm = alice.app.get(path, headers=headers)
        assert alice.full == [], headers
        assert len(warm.body) > 64
        assert warm.body == cold.body
        assert _headers(warm) == _headers(cold)
