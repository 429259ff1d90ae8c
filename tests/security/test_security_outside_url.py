"""X-Outside-Url: believed only from trusted proxies, and never able to poison a cached page.

The reported attack: any client could send ``X-Outside-Url: https://evil.example`` and get
simple pages (``Cache-Control: max-age=60``, no ``Vary`` on the header) whose links all point
to evil.example; a shared cache in front of the server then served that page to everyone.
"""

from __future__ import annotations

import pytest

from devpi_core.bootstrap import load_plugins
from devpi_core.config import load_raw
from devpi_core.errors import ConfigError
from devpi_core.testing.dists import DistSpec, make_wheel

EVIL = "https://evil.example"
PROXY_URL = "https://pkgs.example/devpi"
OUTSIDER = "203.0.113.7"


def make_server(make_app, config=None):
    client = make_app(config)
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")))
    client.logout()
    return client


@pytest.fixture
def server(make_app):
    return make_server(make_app)


def page(client, remote_addr, *, json_api=True, **headers):
    client.app.extra_environ["REMOTE_ADDR"] = remote_addr
    return client.simple("alice/dev", "pkg", json_api=json_api, **headers)


def file_urls(response) -> list[str]:
    return [entry["url"] for entry in response.json["files"]]


def varies_on_outside_url(response) -> bool:
    return "x-outside-url" in response.headers.get("Vary", "").lower()


def test_client_sent_outside_url_is_ignored(server):
    for _ in range(2):  # rendered, then answered by the cached-page tween
        response = page(server, OUTSIDER, **{"X-Outside-Url": EVIL})
        assert file_urls(response)
        assert not any(url.startswith("http") for url in file_urls(response))
        html = page(server, OUTSIDER, json_api=False, **{"X-Outside-Url": EVIL})
        assert "evil.example" not in html.text
    server.app.extra_environ["REMOTE_ADDR"] = OUTSIDER
    api = server.app.get(
        "/alice/dev/+api", headers={"Accept": "application/json", "X-Outside-Url": EVIL}
    ).json["result"]
    assert api["login"] == "http://localhost/+login"
    assert api["simpleindex"] == "http://localhost/alice/dev/+simple/"


def test_outsiders_header_does_not_reach_the_next_client(server):
    # what a shared cache in front would store from the outsider's request is what everyone gets
    stored = page(server, OUTSIDER, **{"X-Outside-Url": EVIL})
    assert not varies_on_outside_url(stored)
    following = page(server, OUTSIDER)
    assert stored.body == following.body
    assert stored.headers["ETag"] == following.headers["ETag"]


def test_trusted_proxy_header_shapes_links_and_varies(server):
    for _ in range(2):  # rendered, then answered by the cached-page tween
        proxied = page(server, "127.0.0.1", **{"X-Outside-Url": PROXY_URL})
        assert all(url.startswith(f"{PROXY_URL}/alice/dev/_f/") for url in file_urls(proxied))
        assert varies_on_outside_url(proxied)
        assert "Accept" in proxied.headers["Vary"]
    direct = page(server, "127.0.0.1")
    assert not any(url.startswith("http") for url in file_urls(direct))
    assert direct.headers["ETag"] != proxied.headers["ETag"]
    server.app.extra_environ["REMOTE_ADDR"] = "127.0.0.1"
    api = server.app.get(
        "/+api", headers={"Accept": "application/json", "X-Outside-Url": PROXY_URL}
    )
    assert api.json["result"]["login"] == f"{PROXY_URL}/+login"
    assert varies_on_outside_url(api)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_proxies_are_trusted_by_default(server, address):
    response = page(server, address, **{"X-Outside-Url": PROXY_URL})
    assert all(url.startswith(PROXY_URL) for url in file_urls(response))


@pytest.mark.parametrize("address", [OUTSIDER, "127.0.0.2", "10.0.0.1", "::2", "", "junk"])
def test_other_peers_are_not_trusted_by_default(server, address):
    response = page(server, address, **{"X-Outside-Url": PROXY_URL})
    assert not any(url.startswith("http") for url in file_urls(response))


def test_trusted_proxies_setting(make_app):
    client = make_server(make_app, {"server": {"trusted_proxies": ["10.0.0.0/8", "2001:db8::1"]}})
    for address, believed in [
        ("10.1.2.3", True), ("2001:db8::1", True), ("127.0.0.1", False), ("11.0.0.1", False)
    ]:
        response = page(client, address, **{"X-Outside-Url": PROXY_URL})
        assert all(url.startswith(PROXY_URL) for url in file_urls(response)) is believed, address
        assert any(url.startswith("http") for url in file_urls(response)) is believed, address
    nobody = make_server(make_app, {"server": {"trusted_proxies": []}})
    response = page(nobody, "127.0.0.1", **{"X-Outside-Url": PROXY_URL})
    assert not any(url.startswith("http") for url in file_urls(response))


@pytest.mark.parametrize("value", ["javascript:alert(1)", "//evil.example", "evil.example"])
def test_a_trusted_header_must_be_an_http_url(server, value):
    response = page(server, "127.0.0.1", **{"X-Outside-Url": value})
    assert not any("evil" in url or "javascript" in url for url in file_urls(response))
    assert not any(url.startswith(("http", "/", "javascript")) for url in file_urls(response))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('["proxy.example"]', "'proxy.example'"),
        ('["10.0.0.0/33"]', "'10.0.0.0/33'"),
        ('["1.2.3.4.5"]', "'1.2.3.4.5'"),
    ],
)
def test_trusted_proxies_must_be_addresses(tmp_path, value, shown):
    path = tmp_path / "devpi-core.yml"
    path.write_text(f"server:\n  port: 4000\n  trusted_proxies: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_plugins(load_raw(str(path)))
    assert info.value.errors == [
        f"{path}:3: server.trusted_proxies.0: expected an IP address or network such as "
        f"10.0.0.0/8, got {shown}"
    ]


def test_default_trusts_loopback_only():
    _plugins, settings = load_plugins(None)
    networks = settings.server.trusted_proxies.networks
    assert [str(n) for n in networks] == ["127.0.0.1/32", "::1/128"]
