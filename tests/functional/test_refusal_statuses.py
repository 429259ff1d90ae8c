"""Refusals answered with devpi-server's status codes (as tests/e2e/test_devpi_status_parity.py
measures them).

Changes of users and indexes are refused with 403 whoever asks, anonymous included: devpi-client
drops its login on a 401. Only reads that need credentials and uploads challenge with 401 and
``WWW-Authenticate``, so pip, uv and twine retry with credentials.
"""

from __future__ import annotations

import base64

import pytest

from devpi_core.testing.dists import DistSpec, make_wheel


@pytest.fixture
def alice(client):
    """alice with alice/dev holding pkg 1.0, logged out again."""
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")))
    client.logout()
    return client


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/alice", {"email": "x@example.org"}),
        ("PATCH", "/alice", {"password": "taken-over"}),
        ("DELETE", "/alice", None),
        ("PUT", "/alice/new", {}),
        ("PATCH", "/alice/dev", ["title=x"]),
        ("DELETE", "/alice/dev", None),
        ("DELETE", "/alice/dev/pkg", None),
        ("DELETE", "/alice/dev/pkg/1.0", None),
    ],
)
def test_anonymous_changes_are_403_without_a_challenge(alice, method, path, body):
    response = alice.request(method, path, body, status=403)
    assert "no permission" in response.json["message"]
    assert "WWW-Authenticate" not in response.headers


def test_anonymous_upload_is_challenged_with_the_standard_reason(alice):
    response = alice.upload("alice/dev", make_wheel(DistSpec("pkg", "2.0")), status=401)
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    # devpi upload prints "401 FAIL file_upload ..." and then the reason, as with devpi-server
    assert response.status == "401 Unauthorized"


def test_index_of_a_missing_user_is_404_for_everyone(alice):
    assert alice.request("PUT", "/nobody/dev", {}, status=404).json["message"]
    alice.login("alice", "123")
    alice.request("PUT", "/nobody/dev", {}, status=404)


def test_changing_a_missing_index_is_403(alice):
    # devpi-server: an index that does not exist grants no permission
    for method, path in (("PATCH", "/alice/nope"), ("DELETE", "/alice/nope"),
                         ("DELETE", "/alice/nope/pkg"), ("DELETE", "/nobody/dev")):
        body = ["title=x"] if method == "PATCH" else None
        anonymous = alice.request(method, path, body, status=403).json["message"]
        assert "no such index" not in anonymous  # not told to those who may not create it
    alice.login("alice", "123")
    message = alice.request("DELETE", "/alice/nope", status=403).json["message"]
    assert message == "no permission to delete alice/nope (no such index)"


def test_deleting_a_missing_user_checks_permission_first(alice):
    alice.request("DELETE", "/nobody", status=403)
    alice.login("root", "")
    alice.request("DELETE", "/nobody", status=404)


def test_a_user_deleted_while_logged_in_is_anonymous(alice):
    alice.create_and_login("carl")
    alice.request("DELETE", "/carl", status=200)
    # devpi-client still sends carl's token: anonymous now, as with devpi-server
    assert alice.get_json("/+api")["result"]["authstatus"] == ["noauth", "", []]
    assert alice.request("PUT", "/carl/dev", {}, status=404).json["message"] == "no user 'carl'"
    alice.request("DELETE", "/carl", status=403)


def test_token_of_a_deleted_user_is_no_failed_login(make_app):
    # one failure allowed per user: the stale token must not use it up
    client = make_app({"plugins": {"passwd": {"login_failures_per_user": 1}}})
    client.create_and_login("carl", "pw-carl")
    token = client.auth[1]
    client.request("DELETE", "/carl", status=200)
    headers = {"Accept": "application/json"}
    headers["X-Devpi-Auth"] = base64.b64encode(f"carl:{token}".encode()).decode()
    for _ in range(3):
        assert client.app.get("/+api", headers=headers).json["result"]["authstatus"][0] == "noauth"
    # carl again, with another password: the old token is stale, still no failure
    client.create_user("carl", "pw-carl-2")
    for _ in range(3):
        assert client.app.get("/+api", headers=headers).json["result"]["authstatus"][0] == "noauth"
    client.logout()
    assert client.login("carl", "pw-carl-2")


def test_refused_login_is_401_without_a_challenge(alice):
    response = alice.request("POST", "/+login", {"user": "alice", "password": "x"}, status=401)
    assert "WWW-Authenticate" not in response.headers
