"""``GET /+api`` and ``GET /+status`` as devpi-client reads them (API.md 1.3 and 1.14)."""

from __future__ import annotations

import sys

import pytest

from devpi_core import __version__, hookimpl, services
from devpi_core.specs import IndexTypeSpec

DEVPI_FEATURES = [
    "push-no-docs",
    "push-only-docs",
    "push-register-project",
    "server-keyvalue-parsing",
]
STATUS_KEYS = {
    "serverdir",
    "uuid",
    "versioninfo",
    "server-code",
    "host",
    "port",
    "outside-url",
    "serial",
    "last-commit-timestamp",
    "event-serial",
    "event-serial-timestamp",
    "event-serial-in-sync-at",
    "metrics",
    "role",
    "polling_replicas",
}


class FakeMirrorType:
    """Registers an index type flagged as a mirror (no uploads, so no ``pypisubmit``)."""

    @hookimpl
    def devpi_index_types(self):
        return [IndexTypeSpec("fakemirror", lambda env, record: None, (), is_mirror=True)]


@pytest.fixture
def client(make_app):
    return make_app(modules=(("fakemirror", FakeMirrorType()),))


def test_api_for_anonymous(client):
    response = client.get("/+api")
    assert response.json["type"] == "apiconfig"
    assert response.json["result"] == {
        "login": "http://localhost/+login",
        "authstatus": ["noauth", "", []],
        "features": DEVPI_FEATURES,
    }


def test_api_of_a_user_is_the_server_api(client):
    client.create_user("alice")
    assert client.get_json("/alice/+api") == client.get_json("/+api")


def test_api_of_an_index(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    result = client.get_json("/alice/dev/+api")["result"]
    assert result["login"] == "http://localhost/+login"
    assert result["authstatus"] == ["ok", "alice", []]
    assert result["index"] == "http://localhost/alice/dev"
    assert result["simpleindex"] == "http://localhost/alice/dev/+simple/"
    assert result["pypisubmit"] == "http://localhost/alice/dev/"


def test_api_of_a_mirror_index_has_no_upload_url(client):
    client.login("root", "")
    client.create_index("root/mirror", type="fakemirror")
    result = client.get_json("/root/mirror/+api")["result"]
    assert result["simpleindex"] == "http://localhost/root/mirror/+simple/"
    assert "pypisubmit" not in result


def test_api_of_an_unknown_index_is_404(client):
    client.create_user("alice")
    assert client.get_json("/alice/nothing/+api", status=404) == {
        "message": "no index alice/nothing"
    }


def test_bad_credentials_are_just_anonymous(client):
    client.create_user("alice")
    client.use_password("alice", "wrong")
    assert client.get_json("/+api")["result"]["authstatus"] == ["noauth", "", []]
    client.use_password("alice", "123")
    assert client.get_json("/+api")["result"]["authstatus"] == ["ok", "alice", []]
    client.auth = ("alice", "not.a.valid-token" + "x" * 40)
    assert client.get_json("/+api")["result"]["authstatus"] == ["noauth", "", []]


def test_outside_url_header_rewrites_every_url(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    result = client.get("/alice/dev/+api", **{"X-Outside-Url": "https://pkgs.example/prefix"}).json[
        "result"
    ]
    assert result["login"] == "https://pkgs.example/prefix/+login"
    assert result["simpleindex"] == "https://pkgs.example/prefix/alice/dev/+simple/"


def test_outside_url_setting(make_app):
    client = make_app({"server": {"outside_url": "https://index.example/"}})
    assert client.get_json("/+api")["result"]["login"] == "https://index.example/+login"


def test_status_has_devpi_keys(client):
    response = client.get("/+status")
    assert response.json["type"] == "status"
    result = response.json["result"]
    assert set(result) >= STATUS_KEYS
    registry = client.app.app.registry
    assert result["uuid"] == services.serverdir(registry).uuid == response.headers["X-DEVPI-UUID"]
    assert result["serial"] == int(response.headers["X-DEVPI-SERIAL"])
    assert result["event-serial"] == result["serial"]
    assert result["serverdir"] == services.settings(registry).server.serverdir
    assert result["versioninfo"]["devpi-core"] == __version__
    assert result["versioninfo"]["python"] == sys.version.split()[0]
    assert result["server-code"] == "devpi-core"
    assert result["role"] == "MASTER"
    assert result["polling_replicas"] == {}
    assert isinstance(result["metrics"], list)
    assert {"fsstore", "passwd", "stages", "fakemirror"} <= set(result["plugins"])


def test_status_serial_follows_writes(client):
    before = client.get_json("/+status")["result"]["serial"]
    client.create_user("alice")
    after = client.get_json("/+status")["result"]["serial"]
    assert after == before + 1
