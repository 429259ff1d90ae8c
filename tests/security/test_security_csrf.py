"""Cross-site request forgery: another site's page cannot make a logged-in browser act.

The reported attack: a page on another site auto-submits a form to the server in a browser that
logged in with Basic auth (the browser resends those credentials by itself). With a
``text/plain`` body holding JSON it made the server push a private release to the attacker;
with a urlencoded ``:action=submit`` form it overwrote release metadata. WebTest's host is
``http://localhost``; requests here carry exactly the headers a browser would send.
"""

from __future__ import annotations

import base64
import json

import pytest

from devpi_core.testing.dists import DistSpec, make_wheel

EVIL = "https://evil.example"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def basic(user: str, password: str = "123") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def server(make_app):
    client = make_app()
    client.create_and_login("alice")
    client.create_index("alice/private", acl_read=["alice"])
    client.upload("alice/private", make_wheel(DistSpec("secret", "1.0")), summary="original")
    client.logout()
    return client


def browser_post(client, path, body, content_type, **headers):
    """A form submission as the victim's browser sends it: Basic auth, its own Accept."""
    hdrs = {"Authorization": basic("alice"), "Content-Type": content_type, **headers}
    return client.app.post(path, body, headers=hdrs, expect_errors=True)


def assert_refused(response):
    assert response.status_int == 403, response
    assert "cross-site request refused" in response.text


def summary(client) -> str:
    client.use_password("alice")
    try:
        return client.get_json("/alice/private/secret/1.0")["result"]["summary"]
    finally:
        client.logout()


def test_cross_site_push_of_a_private_release_is_refused(server, fake_upstream):
    body = {"name": "secret", "version": "1.0", "posturl": f"{fake_upstream.root}/steal/"}
    response = browser_post(
        server, "/alice/private", json.dumps(body), "text/plain", Origin=EVIL,
        Accept="application/json",
    )
    assert_refused(response)
    assert response.content_type == "application/json"
    assert EVIL in response.json["message"]
    assert fake_upstream.count("/steal") == 0


def test_cross_site_submit_form_cannot_change_metadata(server):
    form = {":action": "submit", "name": "secret", "version": "1.0", "summary": "pwned"}
    response = server.app.post(
        "/alice/private/",
        form,
        headers={"Authorization": basic("alice"), "Origin": EVIL, "Accept": BROWSER_ACCEPT},
        expect_errors=True,
    )
    assert_refused(response)
    assert summary(server) == "original"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "null"},
        {"Origin": "http://localhost:8080"},  # same host, other port
        {"Origin": "https://localhost"},  # same host, other scheme
        {"Origin": "http://localhost.evil.example"},
        {"Origin": "not a url"},
        {"Referer": f"{EVIL}/page.html"},  # no Origin: the Referer decides
        {"Sec-Fetch-Site": "cross-site"},  # neither: a modern browser still says where from
        {"Sec-Fetch-Site": "same-site"},
    ],
    ids=lambda h: f"{next(iter(h))}={next(iter(h.values()))}",
)
def test_foreign_or_opaque_origins_are_refused(server, headers):
    form = {":action": "submit", "name": "secret", "version": "1.0", "summary": "pwned"}
    response = server.app.post(
        "/alice/private/", form, headers={"Authorization": basic("alice"), **headers},
        expect_errors=True,
    )
    assert_refused(response)
    assert summary(server) == "original"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "PUSH"])
def test_every_state_changing_method_is_checked(server, method):
    server.app.lint = False  # WebTest's lint refuses devpi's PUSH method
    headers = {"Authorization": basic("alice"), "Origin": EVIL, "Content-Type": "application/json"}
    response = server.app.request(
        "/alice/private", method=method, body=b'{"title": "x"}', headers=headers,
        expect_errors=True,
    )
    assert_refused(response)
    server.use_password("alice")
    assert "title" not in server.get_json("/alice/private")["result"]


def test_reads_from_other_sites_are_not_refused(server):
    # a GET changes nothing: links and embeds from other sites keep working
    response = server.app.get(
        "/alice/private/+simple/secret/", headers={"Authorization": basic("alice"), "Origin": EVIL}
    )
    assert response.status_int == 200
    assert "secret-1.0-py3-none-any.whl" in response.text


@pytest.mark.parametrize(
    ("config", "origin", "extra"),
    [
        (None, "http://localhost", {}),  # the URL the request came in on
        (None, "http://LOCALHOST:80", {}),  # spelled differently, the same origin
        ({"server": {"outside_url": "https://pkgs.example/devpi"}}, "https://pkgs.example", {}),
        (None, "https://pkgs.example", {"X-Outside-Url": "https://pkgs.example/devpi"}),
    ],
    ids=["host", "host-spelling", "outside_url", "trusted-proxy-header"],
)
def test_requests_from_the_servers_own_pages_pass(make_app, config, origin, extra):
    client = make_app(config)
    client.create_and_login("alice")
    client.create_index("alice/dev")
    response = client.app.post(
        "/alice/dev/",
        {":action": "submit", "name": "pkg", "version": "1.0", "summary": "mine"},
        headers={**client._headers(json_accept=False), "Origin": origin, **extra},
        expect_errors=True,
    )
    assert response.status_int == 200, response
    assert client.get_json("/alice/dev/pkg/1.0")["result"]["summary"] == "mine"


def test_untrusted_outside_url_header_does_not_widen_the_origins(make_app):
    # only a trusted proxy's X-Outside-Url names the server; a client's own says nothing
    client = make_app()
    client.app.extra_environ["REMOTE_ADDR"] = "203.0.113.7"
    response = client.app.put(
        "/mallory",
        b'{"password": "123"}',
        headers={"Content-Type": "application/json", "Origin": EVIL, "X-Outside-Url": EVIL},
        expect_errors=True,
    )
    assert_refused(response)


def test_tools_send_no_origin_and_pass(server):
    # twine, pip, uv, devpi-client and curl: no Origin, no Referer
    server.use_password("alice")
    response = server.upload("alice/private", make_wheel(DistSpec("secret", "2.0")))
    assert response.status_int == 200
    server.create_user("bob")
    server.request("PATCH", "/alice/private", ["title=Private"], status=200)


def test_json_views_refuse_form_and_text_bodies(server, fake_upstream):
    # the second line of defence: a JSON API takes only JSON, even without an Origin
    body = {"name": "secret", "version": "1.0", "posturl": f"{fake_upstream.root}/steal/"}
    response = browser_post(
        server, "/alice/private", json.dumps(body), "text/plain", Accept="application/json"
    )
    assert response.status_int == 415, response
    assert "'Content-Type: application/json'" in response.json["message"]
    assert fake_upstream.count("/steal") == 0
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = server.app.put(
            "/bob", b'{"password": "123"}', headers={"Content-Type": content_type},
            expect_errors=True,
        )
        assert response.status_int == 415, response
    assert server.get("/bob", status=404)


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON", None],
)
def test_json_content_types_that_clients_send_are_accepted(server, content_type):
    # devpi-client sends application/json; a script's requests.put(data=...) sends none
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = server.app.request(
        "/bob", method="PUT", body=b'{"password": "123"}', headers=headers, expect_errors=True
    )
    assert response.status_int == 201, response
    assert response.request.environ.get("CONTENT_TYPE") == content_type
