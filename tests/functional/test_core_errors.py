"""Errors at the HTTP boundary: one JSON shape, devpi's headers on every response, bad URLs."""

from __future__ import annotations

import logging

import pytest

from devpi_core import __version__, hookimpl, services
from devpi_core.errors import Conflict
from devpi_core.plugins import available_entrypoints
from devpi_core.testing.dists import DistSpec, make_wheel

DEVPI_HEADERS = ("X-DEVPI-API-VERSION", "X-DEVPI-SERVER-VERSION", "X-DEVPI-UUID", "X-DEVPI-SERIAL")


class Failing:
    """A plugin with views that fail on purpose."""

    @hookimpl
    def devpi_pyramid_includes(self):
        return [self.include]

    @staticmethod
    def include(config):
        def crash(request):
            raise RuntimeError("secret internals")

        def conflict(request):
            raise Conflict("plugin says no")

        config.add_route("crash", "/+crash")
        config.add_view(crash, route_name="crash")
        config.add_route("conflict", "/+conflict")
        config.add_view(conflict, route_name="conflict")


@pytest.fixture
def client(make_app):
    return make_app(modules=(("failing", Failing()),))


def assert_devpi_headers(response, client):
    registry = client.app.app.registry
    assert response.headers["X-DEVPI-API-VERSION"] == "2"
    assert response.headers["X-DEVPI-SERVER-VERSION"] == __version__
    assert response.headers["X-DEVPI-UUID"] == services.serverdir(registry).uuid
    assert (
        int(response.headers["X-DEVPI-SERIAL"])
        == services.metadata_store(registry).current_serial()
    )
    assert response.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/+api", 200),
        ("GET", "/+status", 200),
        ("GET", "/nobody", 404),
        ("GET", "/nobody/nothing/+simple/", 404),
        ("GET", "/+nothing/route", 404),
        ("PUT", "/alice", 400),
        ("POST", "/+login", 400),
        ("DELETE", "/root", 403),
        ("GET", "/+conflict", 409),
        ("GET", "/+crash", 500),
        ("GET", "/%2e%2e/etc/passwd", 400),
    ],
)
def test_devpi_headers_on_every_response(client, method, path, status):
    response = client.request(method, path, status=status)
    assert_devpi_headers(response, client)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/nobody", "no user 'nobody'"),
        ("/root/nothing", "no index root/nothing"),
        ("/+nothing", "not found: /+nothing"),
        ("/+conflict", "plugin says no"),
    ],
)
def test_errors_are_json_with_a_message(client, path, message):
    response = client.get(path, status="*")
    assert response.content_type == "application/json"
    assert response.json == {"message": message}


def test_errors_without_accept_are_json(client):
    response = client.app.get("/nobody", status=404)
    assert response.json == {"message": "no user 'nobody'"}


def test_plain_text_when_asked_for(client):
    response = client.app.get("/nobody", headers={"Accept": "text/plain"}, status=404)
    assert response.content_type == "text/plain"
    assert response.text == "no user 'nobody'\n"


def test_browsers_get_text_without_the_web_ui(make_app):
    # the web UI answers browsers with HTML error pages
    html_plugins = [name for name in ("webui",) if name in available_entrypoints()]
    client = make_app({"plugins": {"disabled": html_plugins}})
    response = client.app.get("/nobody", headers={"Accept": "text/html,*/*;q=0.8"}, status=404)
    assert response.content_type == "text/plain"
    assert response.text == "no user 'nobody'\n"


def test_the_reason_phrase_carries_the_message_for_twine(client):
    response = client.app.get("/+conflict", headers={"Accept": "text/plain"}, status=409)
    assert response.status == "409 plugin says no"


def test_401_asks_for_basic_auth(client):
    # an anonymous upload: twine retries with credentials (devpi-server challenges it too)
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.logout()
    response = client.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")), status=401)
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert "message" in response.json


def test_refused_changes_are_403_without_a_challenge(client):
    # devpi-server answers 403 even to anonymous callers; a 401 makes devpi-client log out
    response = client.request("DELETE", "/root", status=403)
    assert "WWW-Authenticate" not in response.headers


def test_a_bug_is_a_500_with_only_the_request_id(client, caplog):
    with caplog.at_level(logging.ERROR, logger="devpi_core.views.errors"):
        response = client.get("/+crash", status=500, **{"X-Request-ID": "bug-report-1"})
    assert response.json == {"message": "internal server error (request id bug-report-1)"}
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert response.headers["X-Request-ID"] == "bug-report-1"
    (record,) = [r for r in caplog.records if r.name == "devpi_core.views.errors"]
    assert "unhandled error in GET /+crash" in record.getMessage()
    assert record.exc_info is not None


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/%2e%2e/etc/passwd", "'.' and '..' are not allowed in URLs"),
        ("/root/%2E%2E/+api", "'.' and '..' are not allowed in URLs"),
        ("/root/./+api", "'.' and '..' are not allowed in URLs"),
        ("/root/pypi/+f/%2e%2e/%2e%2e/.secret", "'.' and '..' are not allowed in URLs"),
        ("/a%00b", "NUL byte in URL"),
        ("/root/%00/+simple/", "NUL byte in URL"),
        ("/%ff%fe", "the URL is not valid UTF-8"),
        ("/root/dev/+simple/%c3%28/", "the URL is not valid UTF-8"),
    ],
)
def test_bad_urls_are_400_json(client, path, message):
    response = client.get(path, status=400)
    assert response.json == {"message": message}


def test_undecodable_query_is_400(client):
    response = client.get("/+api?x=%ff", status=400)
    assert response.json == {"message": "the query string is not valid UTF-8"}


def test_dots_inside_names_are_fine(client):
    client.create_and_login("alice")
    client.create_index("alice/v1.0")
    assert client.get_json("/alice/v1.0/+api")["result"]["index"].endswith("/alice/v1.0")
    # "..hidden" is a project name (PEP 503: "-hidden"), not a path step
    moved = client.get("/alice/v1.0/..hidden", status=302)
    assert moved.headers["Location"].endswith("/alice/v1.0/-hidden")
    client.get("/alice/v1.0/-hidden", status=404)


def test_request_id_is_echoed_or_made_up(client):
    given = client.get("/+api", **{"X-Request-ID": "from-the-proxy.1"})
    assert given.headers["X-Request-ID"] == "from-the-proxy.1"
    first = client.get("/+api").headers["X-Request-ID"]
    second = client.get("/+api").headers["X-Request-ID"]
    assert first != second
    # an id that would break log lines is replaced
    odd = client.get("/+api", **{"X-Request-ID": "a b\tc" + "x" * 100})
    assert odd.headers["X-Request-ID"] not in ("a b\tc" + "x" * 100, "")


def test_a_method_without_a_view_is_404_json_as_in_devpi(client):
    response = client.request("PATCH", "/+api", body={}, status=404)
    assert response.json == {"message": "not found: /+api"}
    assert_devpi_headers(response, client)
