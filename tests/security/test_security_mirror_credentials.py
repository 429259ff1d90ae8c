"""Mirror credentials stay with the upstream they were configured for.

``plugins.mirror.credentials`` was keyed by index name only: whoever owned that name later (the
same index pointed elsewhere, or the user deleted and the name registered again by someone else)
had the server send the credentials to a URL of their choosing. Each entry now names the
upstream (``url``), and the credentials go only to that origin (scheme, host and port).
"""

from __future__ import annotations

import base64

import pytest

from devpi_core.bootstrap import load_plugins
from devpi_core.config import load_raw
from devpi_core.errors import ConfigError
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import server_config, write_config
from devpi_core.testing.upstream import FakeUpstream

BASIC = "Basic " + base64.b64encode(b"ci:s3cret").decode()


def _config(index, url):
    credential = {"url": url, "username": "ci", "password": "s3cret"}
    return {"plugins": {"mirror": {"credentials": {index: credential}}}}


def _authorizations(upstream):
    return [seen.headers.get("Authorization") for seen in upstream.requests]


@pytest.fixture
def upstreams():
    wheel = make_wheel(DistSpec("hello", "1.0"))
    with FakeUpstream(auth=("ci", "s3cret")) as good, FakeUpstream() as other:
        good.add("hello", wheel)
        other.add("hello", wheel)
        other.add("bye", make_wheel(DistSpec("bye", "1.0")))
        yield good, other


def test_credentials_reach_the_configured_upstream(make_app, upstreams):
    good, _other = upstreams
    root = make_app(_config("root/m", good.url))
    root.login("root", "")
    root.create_index("root/m", type="mirror", mirror_url=good.url)
    assert root.simple_filenames("root/m", "hello") == ["hello-1.0-py3-none-any.whl"]
    assert BASIC in _authorizations(good)


def test_credentials_do_not_follow_the_index_to_another_upstream(make_app, upstreams):
    good, other = upstreams
    root = make_app(_config("root/m", good.url))
    root.login("root", "")
    root.create_index("root/m", type="mirror", mirror_url=good.url)
    assert root.simple_filenames("root/m", "hello") == ["hello-1.0-py3-none-any.whl"]
    assert BASIC in _authorizations(good)
    root.modify_index("root/m", {"mirror_url": other.url})
    assert root.simple_filenames("root/m", "bye") == ["bye-1.0-py3-none-any.whl"]
    assert other.count("/simple/bye/") == 1
    assert _authorizations(other) == [None]


def test_a_reregistered_index_name_does_not_inherit_credentials(make_app, upstreams):
    good, other = upstreams
    client = make_app(_config("alice/m", good.url))
    client.create_and_login("alice")
    client.create_index("alice/m", type="mirror", mirror_url=good.url)
    assert client.simple_filenames("alice/m", "hello") == ["hello-1.0-py3-none-any.whl"]
    client.request("DELETE", "/alice", status=200)
    # someone else takes the name and points the index at their own server
    client.create_and_login("alice", "other-password")
    client.create_index("alice/m", type="mirror", mirror_url=other.url)
    client.simple_filenames("alice/m", "hello")
    assert other.count() >= 1
    assert set(_authorizations(other)) == {None}


def test_same_host_on_another_port_or_scheme_gets_no_credentials(make_app, upstreams):
    good, _other = upstreams
    # configured for https on good's port: plain http there is another origin
    root = make_app(_config("root/m", f"https://127.0.0.1:{good.port}/simple/"))
    root.login("root", "")
    root.create_index("root/m", type="mirror", mirror_url=good.url)
    message = root.simple("root/m", "hello", json_api=True, status=502).json["message"]
    assert "refused access (401)" in message
    assert set(_authorizations(good)) == {None}


def test_credentials_are_not_carried_across_a_redirect(make_app, upstreams):
    good, other = upstreams
    good.redirects["/simple/hello/"] = f"{other.url}hello/"
    root = make_app(_config("root/m", good.url))
    root.login("root", "")
    root.create_index("root/m", type="mirror", mirror_url=good.url)
    assert root.simple_filenames("root/m", "hello") == ["hello-1.0-py3-none-any.whl"]
    assert BASIC in _authorizations(good)  # the first hop is the configured origin
    assert _authorizations(other) == [None]


def test_a_redirect_within_the_origin_keeps_the_credentials(make_app, upstreams):
    good, _other = upstreams
    good.redirects["/simple/old-name/"] = f"{good.url}hello/"
    root = make_app(_config("root/m", good.url))
    root.login("root", "")
    root.create_index("root/m", type="mirror", mirror_url=good.url)
    root.simple("root/m", "old-name", json_api=True)
    assert [seen.headers.get("Authorization") for seen in good.seen("/simple/hello/")] == [BASIC]


def test_credentials_without_url_are_a_configuration_error(tmp_path):
    credential = {"username": "u", "password": "p"}
    config = {"plugins": {"mirror": {"credentials": {"root/m": credential}}}}
    raw = load_raw(str(write_config(tmp_path / "c.yml", server_config(config))))
    with pytest.raises(ConfigError) as info:
        load_plugins(raw, entrypoints=True)
    [error] = info.value.errors
    assert "plugins.mirror.credentials.root/m: 'url' is a required property" in error
    assert "sent only to its scheme, host and port" in error
