"""SSRF through mirrors and external push: the server's outbound host policy.

Any registered user could create a mirror index whose ``mirror_url`` (or whose pages' file links
and redirects) pointed at a service only the server can reach, and read the answer through the
mirror; any reader could make the server POST to such a URL and see 2,000 characters of the
answer. Every fake "internal" service here runs on 127.0.0.1: with the default policy (loopback
refused) it stands for any internal address. Names resolve through injected resolvers, never DNS.
"""

from __future__ import annotations

import socket
from urllib.parse import urljoin

import pytest

from devpi_core.config import load_raw
from devpi_core.errors import ConfigError
from devpi_core.outbound import OutboundDenied, OutboundPolicy, denied_reason, parse_address
from devpi_core.outbound_session import guarded_session
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import server_config, write_config
from devpi_core.testing.upstream import FakeUpstream

STRICT = {"server": {"outbound_allow": []}}  # the production default
SECRET = "internal-secret"


def _no_dns(host, port):
    raise AssertionError(f"{host} must not be resolved")


# -- the address policy ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1",  # legacy forms the C library accepts
        "2130706433",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "[::1]",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fd00:ec2::254",  # cloud metadata over IPv6
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:a9fe:a9fe",  # mapped 169.254.169.254, hex form
        "::127.0.0.1",  # IPv4-compatible
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::1",
    ],
)
def test_default_policy_refuses_internal_addresses(host):
    with pytest.raises(OutboundDenied, match="not allowed") as info:
        OutboundPolicy(resolver=_no_dns).addresses(host, 80)
    assert info.value.status == 403
    assert "server.outbound_allow" in info.value.message


@pytest.mark.parametrize(
    "host",
    ["1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1", "64:ff9b::101:101", "2002:101:101::"],
)
def test_default_policy_allows_public_addresses(host):
    assert OutboundPolicy(resolver=_no_dns).addresses(host, 443)


@pytest.mark.parametrize("host", ["192.0.2.1", "198.51.100.7", "203.0.113.80", "2001:db8::1"])
def test_documentation_ranges_pass_where_intercepting_proxies_answer(host):
    # no service can live there; a sandbox's or a gateway's proxy answers for the public index
    assert OutboundPolicy(resolver=_no_dns).addresses(host, 443) == [host.strip("[]")]


def test_a_name_is_judged_by_every_address_it_resolves_to():
    names = {
        "loopback.test": ["127.0.0.1"],
        "mixed.test": ["1.1.1.1", "10.0.0.7"],
        "v6.test": ["2606:4700:4700::1111", "::ffff:192.168.0.1"],
        "public.test": ["1.1.1.1", "2606:4700:4700::1111"],
    }
    policy = OutboundPolicy(resolver=lambda host, _port: names[host])
    for host in ("loopback.test", "mixed.test", "v6.test", "LOOPBACK.test."):
        with pytest.raises(OutboundDenied, match=r"resolves to a (loopback|private) address"):
            policy.addresses(host, 80)
    assert policy.addresses("public.test", 80) == names["public.test"]


def test_resolved_addresses_are_not_revealed_to_the_client(caplog):
    policy = OutboundPolicy(resolver=lambda _host, _port: ["10.9.8.7"])
    with pytest.raises(OutboundDenied) as info:
        policy.addresses("intranet.test", 80)
    assert "10.9.8.7" not in info.value.message
    assert "private" in info.value.message
    assert "intranet.test" in caplog.text
    assert "10.9.8.7" in caplog.text  # the administrator's log has it


def test_allow_list_names_globs_and_networks_win_over_the_default():
    names = {"pypi.corp.test": ["10.0.0.5"], "other.test": ["10.0.0.6"], "db.test": ["10.2.0.1"]}
    policy = OutboundPolicy(
        ["*.corp.test", "10.1.0.0/16", "fd12::/16", "127.0.0.1"],
        resolver=lambda host, _port: names[host],
    )
    assert policy.addresses("pypi.corp.test", 80) == ["10.0.0.5"]  # an allowed name
    assert policy.addresses("10.1.2.3", 80) == ["10.1.2.3"]
    assert policy.addresses("::ffff:10.1.2.3", 80) == ["::ffff:a01:203"]
    assert policy.addresses("fd12::1", 80) == ["fd12::1"]
    assert policy.addresses("127.0.0.1", 80) == ["127.0.0.1"]
    for host in ("other.test", "db.test", "10.2.0.1", "127.0.0.2", "fd13::1"):
        with pytest.raises(OutboundDenied):
            policy.addresses(host, 80)


def test_deny_list_wins_over_the_allow_list():
    policy = OutboundPolicy(
        ["*.corp.test", "10.0.0.0/8"],
        ["secret.corp.test", "10.0.9.0/24", "203.0.112.0/24"],
        resolver=lambda host, _port: {"secret.corp.test": ["10.0.0.1"], "x.test": ["10.0.9.1"]}[
            host
        ],
    )
    with pytest.raises(OutboundDenied, match="outbound_deny"):
        policy.addresses("secret.corp.test", 80)
    with pytest.raises(OutboundDenied, match="outbound_deny"):
        policy.addresses("x.test", 80)
    with pytest.raises(OutboundDenied, match="outbound_deny"):
        policy.addresses("203.0.112.9", 80)  # public, but denied by the administrator


def test_literal_problem_needs_no_dns():
    policy = OutboundPolicy(resolver=_no_dns)
    for url in (
        "http://127.0.0.1:8080/simple/",
        "http://localhost/simple/",
        "http://LOCALHOST./simple/",
        "http://admin.localhost/",
        "http://[::1]:3141/",
        "https://169.254.169.254/latest/",
        "http://2130706433/",
    ):
        assert "not allowed" in (policy.literal_problem(url) or ""), url
    assert policy.literal_problem("https://internal.test/simple/") is None  # checked on connect
    assert policy.literal_problem("https://1.1.1.1/simple/") is None
    allowed = OutboundPolicy(["localhost", "127.0.0.0/8"], resolver=_no_dns)
    assert allowed.literal_problem("http://localhost:8080/") is None
    assert allowed.literal_problem("http://127.0.0.1:8080/") is None


def test_parse_address_and_reasons():
    assert str(parse_address("0x7f.1")) == "127.0.0.1"
    assert parse_address("pypi.test") is None
    assert parse_address("1e100.test") is None
    assert denied_reason(parse_address("::ffff:169.254.169.254")) == "link-local"
    assert denied_reason(parse_address("2606:4700:4700::1111")) is None


def test_bad_allow_entries_are_configuration_errors(tmp_path):
    from devpi_core.bootstrap import load_plugins  # noqa: PLC0415

    config = {"server": {"outbound_allow": ["10.0.0.0/33", "not a host"], "outbound_deny": ["::g"]}}
    raw = load_raw(str(write_config(tmp_path / "c.yml", server_config(config))))
    with pytest.raises(ConfigError) as info:
        load_plugins(raw, entrypoints=True)
    text = "\n".join(info.value.errors)
    assert "server.outbound_allow.0: '10.0.0.0/33' is not a valid CIDR network" in text
    assert "server.outbound_allow.1" in text
    assert "server.outbound_deny.0" in text


# -- connections ----------------------------------------------------------------------------
@pytest.fixture
def system_dns_off(monkeypatch):
    """Numeric hosts still parse; any name lookup by the system fails the test."""
    real = socket.getaddrinfo

    def numeric_only(host, *args, **kwargs):
        if parse_address(str(host)) is None:
            raise AssertionError(f"the system resolver was asked for {host}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)


def test_connection_goes_to_the_address_that_was_checked(fake_upstream, system_dns_off):
    # A name resolved once, checked, and connected to by address: a rebinding DNS server gets
    # no second question whose answer could switch the target after the check.
    asked = []

    def resolver(host, port):
        asked.append(host)
        return ["127.0.0.1"]

    policy = OutboundPolicy(["pinned.test"], resolver=resolver)
    with guarded_session(policy) as session:
        response = session.get(f"http://pinned.test:{fake_upstream.port}/simple/", timeout=10)
    assert response.status_code == 200
    assert asked == ["pinned.test"]
    assert fake_upstream.seen("/simple/")[0].headers["Host"] == f"pinned.test:{fake_upstream.port}"


def test_guarded_session_refuses_before_connecting(fake_upstream):
    with guarded_session(OutboundPolicy()) as session, pytest.raises(OutboundDenied):
        session.get(fake_upstream.url, timeout=10)
    assert fake_upstream.count() == 0


# -- mirrors --------------------------------------------------------------------------------
@pytest.fixture
def internal(monkeypatch):
    """An "internal" service serving a secret, reachable as internal.test (resolving to
    127.0.0.1 through the patched system resolver)."""
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host in ("internal.test", "allowed.test"):
            host = "127.0.0.1"
        elif parse_address(str(host)) is None:
            raise AssertionError(f"the system resolver was asked for {host}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with FakeUpstream() as upstream:
        upstream.add(SECRET, make_wheel(DistSpec(SECRET, "1.0")))
        yield upstream


def _alice(make_app, config):
    client = make_app(config)
    client.create_and_login("alice")
    return client


@pytest.mark.parametrize(
    "template",
    [
        "{url}",
        "http://localhost:{port}/simple/",
        "http://[::1]:{port}/simple/",
        "http://2130706433:{port}/simple/",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_mirror_on_an_internal_address_is_refused_at_creation(make_app, internal, template):
    alice = _alice(make_app, STRICT)
    url = template.format(url=internal.url, port=internal.port)
    message = alice.create_index("alice/m", type="mirror", mirror_url=url, status=400).json[
        "message"
    ]
    assert "mirror_url" in message
    assert "server.outbound_allow" in message
    alice.create_index("alice/m", type="mirror", mirror_url="https://1.1.1.1/simple/")
    alice.modify_index("alice/m", {"mirror_url": url}, status=400)
    assert internal.count() == 0


def test_mirror_whose_name_resolves_internally_serves_nothing(make_app, internal):
    alice = _alice(make_app, STRICT)
    url = f"http://internal.test:{internal.port}/simple/"
    alice.create_index("alice/m", type="mirror", mirror_url=url)  # a name: judged on connect
    response = alice.simple("alice/m", SECRET, json_api=True, status=502)
    assert "not allowed" in response.json["message"]
    assert "loopback" in response.json["message"]
    assert SECRET.replace("-", "_") not in response.text
    alice.get(f"/alice/m/+simple/{SECRET}/", status=502, Accept="text/html")
    assert internal.count() == 0  # never even connected


def test_an_administrator_can_allow_an_internal_upstream(make_app, internal):
    alice = _alice(make_app, {"server": {"outbound_allow": ["internal.test"]}})
    alice.create_index(
        "alice/m", type="mirror", mirror_url=f"http://internal.test:{internal.port}/simple/"
    )
    [filename] = alice.simple_filenames("alice/m", SECRET)
    assert filename == f"{SECRET.replace('-', '_')}-1.0-py3-none-any.whl"


def test_redirect_from_an_allowed_upstream_to_a_denied_host_is_not_followed(make_app, internal):
    with FakeUpstream() as allowed:
        allowed.redirects["/simple/hello/"] = f"{internal.url}{SECRET}/"
        alice = _alice(make_app, {"server": {"outbound_allow": ["allowed.test"]}})
        alice.create_index(
            "alice/m", type="mirror", mirror_url=f"http://allowed.test:{allowed.port}/simple/"
        )
        response = alice.simple("alice/m", "hello", json_api=True, status=502)
        assert "127.0.0.1 is not allowed" in response.json["message"]
        assert allowed.count("/simple/hello/") == 1
    assert internal.count() == 0


def test_redirect_to_an_allowed_host_is_followed(make_app, internal):
    internal.add("hello", make_wheel(DistSpec("hello", "2.0")))
    with FakeUpstream() as allowed:
        allowed.redirects["/simple/hello/"] = f"http://internal.test:{internal.port}/simple/hello/"
        config = {"server": {"outbound_allow": ["allowed.test", "internal.test"]}}
        alice = _alice(make_app, config)
        alice.create_index(
            "alice/m", type="mirror", mirror_url=f"http://allowed.test:{allowed.port}/simple/"
        )
        assert alice.simple_filenames("alice/m", "hello") == ["hello-2.0-py3-none-any.whl"]
        assert internal.count("/simple/hello/") == 1


def test_file_link_to_a_denied_host_is_not_fetched(make_app, internal):
    wheel = make_wheel(DistSpec("hello", "1.0"))
    entry = internal.add("hello", wheel)
    with FakeUpstream() as allowed:
        allowed.add_link("hello", internal.file_url(entry))
        alice = _alice(make_app, {"server": {"outbound_allow": ["allowed.test"]}})
        alice.create_index(
            "alice/m", type="mirror", mirror_url=f"http://allowed.test:{allowed.port}/simple/"
        )
        [link] = alice.simple("alice/m", "hello", json_api=True).json["files"]
        href = urljoin("/alice/m/+simple/hello/", link["url"])
        response = alice.app.get(href, status=502, expect_errors=True)
        assert "connecting to 127.0.0.1 is not allowed" in response.json["message"]
        assert wheel.content not in response.body
    assert internal.count("/files/") == 0


# -- external push --------------------------------------------------------------------------
@pytest.fixture
def pusher(make_app):
    def factory(config=None):
        client = make_app(config)
        client.create_and_login("alice")
        client.create_index("alice/dev")
        client.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")))
        return client

    return factory


def push(client, posturl, *, status):
    body = {"name": "pkg", "version": "1.0", "posturl": posturl, "username": "u", "password": "p"}
    return client.request("POST", "/alice/dev", body, status=status)


def test_external_push_to_a_denied_host_is_refused(pusher, internal):
    alice = pusher(STRICT)
    for url in (f"{internal.url}", f"http://internal.test:{internal.port}/legacy/"):
        message = push(alice, url, status=403).json["message"]
        assert "not allowed" in message
        assert "server.outbound_allow" in message
    assert internal.count() == 0


def test_external_push_needs_upload_permission_on_the_source(pusher, fake_upstream):
    alice = pusher()
    alice.create_and_login("bob")  # may read alice/dev, may not upload there
    message = push(alice, f"{fake_upstream.url}bob/", status=403).json["message"]
    assert "upload permission on alice/dev" in message
    alice.logout()
    push(alice, f"{fake_upstream.url}anon/", status=401)
    assert fake_upstream.count() == 0


def test_external_push_never_echoes_the_remote_answer(pusher):
    alice = pusher()
    with FakeUpstream(auth=("someone", "else")) as remote:
        response = push(alice, f"{remote.root}/legacy/", status=502)
        [row] = response.json["result"]
        assert row[:2] == [401, "upload"]
        assert row[-1] == f"{remote.root}/legacy/ answered 401"
        assert "authentication required" not in response.text  # the remote body


def test_external_push_does_not_follow_redirects(pusher, internal):
    alice = pusher()
    with FakeUpstream() as remote:
        remote.redirects["/legacy/"] = f"{internal.url}steal/"
        response = push(alice, f"{remote.root}/legacy/", status=502)
        [row] = response.json["result"]
        assert row[0] == 302
        assert "does not follow" in row[-1]
        assert remote.count("/legacy/") == 1
    assert internal.count() == 0
