"""Users and logins over HTTP: create, log in, tokens, Basic auth, password changes, deletion."""

from __future__ import annotations

import base64
import logging

import pytest

from devpi_core import services
from devpi_core.testing.dists import DistSpec, make_wheel

JSON = {"Accept": "application/json"}


def basic(user: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}", **JSON}


def authstatus(client, **headers: str) -> list:
    return client.app.get("/+api", headers={**JSON, **headers}).json["result"]["authstatus"]


def test_create_user_answers_201_with_userconfig(client):
    response = client.create_user("alice", "secret", email="a@example.com", title="Alice")
    assert response.status_int == 201
    assert response.json["type"] == "userconfig"
    result = response.json["result"]
    assert result["username"] == "alice"
    assert result["email"] == "a@example.com"
    assert result["title"] == "Alice"
    assert result["indexes"] == {}
    assert "created" in result
    assert "pwhash" not in result
    assert "password" not in result


def test_create_user_twice_is_409(client):
    client.create_user("alice")
    response = client.create_user("alice", status=409)
    assert "alice" in response.json["message"]


@pytest.mark.parametrize("body", [{}, {"email": "x@y"}])
def test_create_user_needs_password(client, body):
    response = client.request("PUT", "/bob", body, status=400)
    assert response.json["message"] == "password needs to be set"


def test_create_user_rejects_unknown_keys(client):
    response = client.request("PUT", "/bob", {"password": "1", "colour": "red"}, status=400)
    assert "Unknown keys in user config: colour" in response.json["message"]


@pytest.mark.parametrize("name", ["a b", "a%21b", "x:y", "semi;colon"])
def test_invalid_user_names_are_400(client, name):
    response = client.request("PUT", f"/{name}", {"password": "1"}, status=400)
    assert "invalid user name" in response.json["message"]


def test_names_starting_with_plus_are_refused(client):
    response = client.request("PUT", "/%2Bplus", {"password": "1"}, status="*")
    assert response.status_int in (400, 404)
    assert "+plus" not in client.get_json("/")["result"]


def test_stored_password_is_an_argon2_hash(client):
    client.create_user("alice", "secret")
    record = services.users(client.app.app.registry).get("alice")
    assert record["pwhash"].startswith("$argon2id$")
    assert "secret" not in record["pwhash"]


def test_get_user_and_list(client):
    client.create_user("alice", "1", email="a@x")
    client.create_user("bob", "1")
    client.login("alice", "1")
    client.create_index("alice/dev")
    user = client.get_json("/alice")
    assert user["type"] == "userconfig"
    assert user["result"]["username"] == "alice"
    assert user["result"]["indexes"]["dev"]["type"] == "stage"
    listing = client.get_json("/")
    assert listing["type"] == "list:userconfig"
    assert set(listing["result"]) == {"root", "alice", "bob"}
    assert "pwhash" not in str(listing)
    assert client.get("/nobody", status=404).json["message"]


def test_login_returns_token_usable_with_both_headers(client):
    client.create_user("alice", "secret")
    response = client.request(
        "POST", "/+login", {"user": "alice", "password": "secret"}, status=200
    )
    assert response.json["type"] == "proxyauth"
    assert response.json["message"] == "login successful"
    token = response.json["result"]["password"]
    assert response.json["result"]["expiration"] == 36000
    devpi_auth = base64.b64encode(f"alice:{token}".encode()).decode()
    assert authstatus(client, **{"X-Devpi-Auth": devpi_auth}) == ["ok", "alice", []]
    assert authstatus(client, **basic("alice", token)) == ["ok", "alice", []]
    assert authstatus(client, **basic("alice", "secret")) == ["ok", "alice", []]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"user": "alice", "password": "wrong"}, 401),
        ({"user": "nobody", "password": "x"}, 401),
        ({"user": "alice"}, 400),
        ({"password": "x"}, 400),
        ({"user": 1, "password": "x"}, 400),
    ],
)
def test_bad_logins(client, body, status):
    client.create_user("alice", "secret")
    response = client.request("POST", "/+login", body, status=status)
    assert response.json["message"]


def test_login_with_malformed_json_is_400(client):
    response = client.app.post(
        "/+login", b"{nope", headers={**JSON, "Content-Type": "application/json"}, status=400
    )
    assert "malformed JSON" in response.json["message"]


def test_bad_credentials_are_anonymous(client):
    client.create_user("alice", "secret")
    assert authstatus(client, **basic("alice", "wrong")) == ["noauth", "", []]
    assert authstatus(client, **basic("nobody", "secret")) == ["noauth", "", []]
    assert authstatus(client, **{"Authorization": "Basic !!!notbase64"}) == ["noauth", "", []]
    assert authstatus(client, **{"X-Devpi-Auth": "bm9jb2xvbg=="}) == ["noauth", "", []]


def test_token_of_one_user_does_not_work_for_another(client):
    client.create_user("alice", "1")
    client.create_user("bob", "2")
    token = client.login("alice", "1")
    assert authstatus(client, **basic("bob", token)) == ["noauth", "", []]


def test_tampered_token_is_rejected(client):
    client.create_user("alice", "1")
    token = client.login("alice", "1")
    payload, sig = token.split(".")
    forged = payload + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    assert authstatus(client, **basic("alice", forged)) == ["noauth", "", []]


def test_change_password_returns_new_token_and_kills_old_ones(client):
    client.create_user("alice", "old")
    old_token = client.login("alice", "old")
    response = client.request("PATCH", "/alice", {"password": "new"}, status=200)
    assert response.json["type"] == "userpassword"
    assert response.json["message"] == "user updated, new proxy auth"
    new_token = response.json["result"]["password"]
    assert authstatus(client, **basic("alice", old_token)) == ["noauth", "", []]
    assert authstatus(client, **basic("alice", "old")) == ["noauth", "", []]
    assert authstatus(client, **basic("alice", new_token))[0] == "ok"
    assert authstatus(client, **basic("alice", "new"))[0] == "ok"


def test_password_change_takes_effect_despite_credential_cache(client):
    client.create_user("alice", "old")
    assert authstatus(client, **basic("alice", "old"))[0] == "ok"  # now cached
    client.use_password("alice", "old")
    client.request("PATCH", "/alice", {"password": "new"}, status=200)
    assert authstatus(client, **basic("alice", "old")) == ["noauth", "", []]


def test_modify_public_fields(client):
    client.create_and_login("alice")
    response = client.request("PATCH", "/alice", {"email": "new@x", "title": "T"}, status=200)
    assert response.json == {"message": "user updated"}
    result = client.get_json("/alice")["result"]
    assert result["email"] == "new@x"
    assert "modified" in result
    client.request("PATCH", "/alice", {"email": ""}, status=200)
    assert "email" not in client.get_json("/alice")["result"]


def test_devpi_client_passwd_sends_the_whole_userconfig(client):
    # devpi-client GETs the user, sets the password and PATCHes everything back
    client.create_and_login("alice", "old")
    userconfig = client.get_json("/alice")["result"]
    body = {k: v for k, v in userconfig.items() if k not in ("indexes", "username")}
    body["password"] = "new"
    response = client.request("PATCH", "/alice", body, status=200)
    assert response.json["type"] == "userpassword"
    client.logout()
    assert client.login("alice", "new")


def test_empty_password_is_a_password_as_in_devpi(client, caplog):
    # devpi user -m alice password= / devpi passwd with an empty entry
    client.create_and_login("alice", "old")
    caplog.set_level(logging.WARNING)
    response = client.request("PATCH", "/alice", {"password": ""}, status=200)
    assert response.json["type"] == "userpassword"
    assert "empty password" in caplog.text
    client.logout()
    assert client.login("alice", "")
    client.logout()
    client.request("POST", "/+login", {"user": "alice", "password": "old"}, status=401)


def test_root_password_reset_to_empty(client):
    # root starts with an empty password; tooling sets one and resets it to empty
    client.login("root", "")
    client.request("PATCH", "/root", {"password": "set-by-admin"}, status=200)
    client.logout()
    client.login("root", "set-by-admin")
    client.request("PATCH", "/root", {"password": ""}, status=200)
    client.logout()
    assert client.login("root", "")


def test_create_user_with_empty_password_can_log_in(client):
    client.request("PUT", "/alice", {"password": ""}, status=201)
    assert client.login("alice", "")


def test_null_password_on_patch_changes_nothing(client):
    # as devpi: "password": null is no password change (and issues no token)
    client.create_and_login("alice", "old")
    response = client.request("PATCH", "/alice", {"password": None}, status=200)
    assert response.json == {"message": "user updated"}
    client.logout()
    assert client.login("alice", "old")


def test_users_cannot_modify_each_other_but_root_can(client):
    client.create_user("alice", "1")
    client.create_user("bob", "2")
    client.login("bob", "2")
    response = client.request("PATCH", "/alice", {"email": "evil@x"}, status=403)
    assert "no permission" in response.json["message"]
    client.request("PATCH", "/alice", {"password": "x"}, status=403)
    client.request("DELETE", "/alice", status=403)
    client.logout()
    # 403, not 401, as devpi-server: a 401 would make devpi-client drop its login
    client.request("PATCH", "/alice", {"email": "x"}, status=403)
    client.request("DELETE", "/alice", status=403)
    client.login("root", "")
    client.request("PATCH", "/alice", {"password": "byroot"}, status=200)
    client.logout()
    assert client.login("alice", "byroot")


def test_delete_user_removes_indexes_and_files(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")))
    response = client.request("DELETE", "/alice", status=200)
    assert "alice" in response.json["message"]
    client.get("/alice", status=404)
    client.get("/alice/dev", status=404)
    client.logout()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    assert client.get_json("/alice/dev")["result"]["projects"] == []


def test_delete_user_with_non_volatile_index_is_403(client):
    client.create_and_login("alice")
    client.create_index("alice/prod", volatile=False)
    response = client.request("DELETE", "/alice", status=403)
    assert "non-volatile" in response.json["message"]
    assert client.get_json("/alice")["result"]["indexes"]["prod"]


def test_root_cannot_be_deleted(client):
    client.login("root", "")
    client.request("DELETE", "/root", status=403)
    assert client.get_json("/root")["result"]["username"] == "root"


def test_root_administers_other_users(client):
    client.create_user("alice", "1")
    client.login("root", "")
    client.create_index("alice/byroot")
    client.request("PATCH", "/alice/byroot", ["title=from root"], status=200)
    client.request("DELETE", "/alice/byroot", status=201)
    client.request("DELETE", "/alice", status=200)


def test_no_password_or_token_in_the_log(client, caplog):
    caplog.set_level(logging.DEBUG)
    client.create_user("alice", "sup3rsecret")
    token = client.login("alice", "sup3rsecret")
    client.get("/+api")
    client.app.get("/+api", headers=basic("alice", "sup3rsecret"))
    assert "sup3rsecret" not in caplog.text
    assert token not in caplog.text


# -- restrict_modify (API.md 2.3) -------------------------------------------------------------
@pytest.fixture
def restricted(make_app):
    client = make_app({"server": {"restrict_modify": ["root", ":admins"]}})
    client.login("root", "")
    client.create_user("alice", "1")
    client.create_user("bob", "2")
    client.create_index("alice/dev")
    client.logout()
    return client


def test_restrict_modify_blocks_user_creation(restricted):
    restricted.create_user("eve", status=403)
    restricted.login("alice", "1")
    restricted.create_user("eve", status=403)
    restricted.login("root", "")
    restricted.create_user("eve", status=201)


def test_restrict_modify_blocks_index_changes_by_owner(restricted):
    restricted.login("alice", "1")
    restricted.create_index("alice/other", status=403)
    restricted.modify_index("alice/dev", ["title=x"], status=403)
    restricted.request("DELETE", "/alice/dev", status=403)
    restricted.request("PATCH", "/alice", {"email": "x@y"}, status=403)


def test_restrict_modify_still_lets_users_change_their_password(restricted):
    restricted.login("alice", "1")
    response = restricted.request("PATCH", "/alice", {"password": "new"}, status=200)
    assert response.json["type"] == "userpassword"
    restricted.request("PATCH", "/bob", {"password": "x"}, status=403)


def test_restrict_modify_users_cannot_delete_themselves(restricted):
    restricted.login("alice", "1")
    restricted.request("DELETE", "/alice", status=403)


def test_restrict_modify_listed_principals_administer(restricted):
    restricted.login("root", "")
    restricted.modify_index("alice/dev", ["title=by root"])
    restricted.create_index("bob/new")
    restricted.request("DELETE", "/bob", status=200)


def test_restrict_modify_allows_devpi_client_passwd(restricted):
    restricted.login("alice", "1")
    userconfig = restricted.get_json("/alice")["result"]
    body = {k: v for k, v in userconfig.items() if k not in ("indexes", "username")}
    restricted.request("PATCH", "/alice", {**body, "password": "new"}, status=200)
    restricted.request("PATCH", "/alice", {**body, "password": "new2", "email": "x@y"}, status=403)
