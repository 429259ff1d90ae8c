"""devpi-client against devpi-core: ``use``, ``user``, ``passwd``, ``login`` and ``logout``.

Every command runs as a ``devpi`` subprocess with its own ``--clientdir`` and ``$HOME``; the
server state a command changed is checked through the JSON API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import TYPE_CHECKING

import pytest

from devpi_core.testing.devpiclient import (
    PASSWORD,
    DevpiCLI,
    ServerAPI,
    setup_user,
    unique,
)
from devpi_core.testing.dists import DistSpec, make_wheel

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e
FEATURES = (
    "supported features: push-no-docs, push-only-docs, push-register-project, "
    "server-keyvalue-parsing"
)


# -- devpi use ------------------------------------------------------------------------------
@pytest.mark.pkgcheck
def test_use_url_connects_without_index(server, devpi):
    result = devpi("use", server.url)
    assert f"using server: {server.url}/ (not logged in)" in result.out
    assert "no current index: type 'devpi use -l' to discover indices" in result.out
    current = json.loads((devpi.clientdir / "current.json").read_text())
    assert current["login"] == f"{server.url}/+login"
    assert "index" not in current


def test_use_index_url_directly(server, devpi):
    user = setup_user(devpi, server.url)
    other = DevpiCLI.create(devpi.home.parent / "other")
    result = other("use", f"{server.url}/{user.fullindex}")
    assert f"current devpi index: {server.url}/{user.fullindex} (not logged in)" in result.out
    assert FEATURES in result.out
    current = json.loads((other.clientdir / "current.json").read_text())
    assert current["simpleindex"] == f"{server.url}/{user.fullindex}/+simple/"
    assert current["pypisubmit"] == f"{server.url}/{user.fullindex}/"


def test_use_user_index_and_urls(server, devpi):
    user = setup_user(devpi, server.url)
    devpi("use", server.url)
    devpi("use", user.fullindex)
    result = devpi("use", "--urls")
    assert (
        f"current devpi index: {server.url}/{user.fullindex} (logged in as {user.name})"
        in result.out
    )
    assert f"simpleindex: {server.url}/{user.fullindex}/+simple/" in result.out
    assert f"pypisubmit: {server.url}/{user.fullindex}/" in result.out
    assert f"login: {server.url}/+login" in result.out


def test_use_unknown_index_fails_with_server_message(server, devpi):
    devpi("use", server.url)
    result = devpi("use", "nobody/nothing", code=1)
    assert "404 Not Found: no index nobody/nothing" in result.out


def test_use_list_shows_bases_and_volatile(server, devpi):
    user = setup_user(devpi, server.url)
    devpi("index", "-c", "prod", f"bases={user.fullindex}", "volatile=False")
    result = devpi("use", "-l")
    lines = [line.split() for line in result.stdout.splitlines()]
    assert [f"{user.name}/dev", "bases=", "volatile=True"] in lines
    assert [f"{user.name}/prod", f"bases={user.fullindex}", "volatile=False"] in lines


def test_use_set_cfg_writes_pip_and_uv_config(server, tmp_path):
    devpi = DevpiCLI.create(tmp_path)
    user = setup_user(devpi, server.url)
    # --set-cfg writes where pip reads: $HOME's config, not the clean env's /dev/null
    env = {"PIP_CONFIG_FILE": str(devpi.home / ".config" / "pip" / "pip.conf")}
    result = devpi("use", "--set-cfg", user.fullindex, env=env)
    simple = f"{server.url}/{user.fullindex}/+simple/"
    pip_conf = (devpi.home / ".config" / "pip" / "pip.conf").read_text()
    assert f"index_url = {simple}" in pip_conf
    assert "trusted-host = 127.0.0.1" in pip_conf
    uv_toml = (devpi.home / ".config" / "uv" / "uv.toml").read_text()
    assert f'index-url = "{simple}"' in uv_toml
    assert f"pip.conf: {simple}" in result.out
    assert "always-set-cfg: no" in result.out


# -- devpi user -----------------------------------------------------------------------------
def test_user_create_show_list_modify(server, devpi, api):
    name = unique("u")
    devpi("use", server.url)
    result = devpi("user", "-c", name, f"password={PASSWORD}", "email=first@example.com")
    assert f"user created: {name}" in result.out
    assert api.result(name)["email"] == "first@example.com"
    assert name in devpi("user", "-l").stdout.split()
    devpi("login", name, "--password", PASSWORD)
    result = devpi("user", "-m", name, "email=second@example.com", "title=Second")
    assert f"/{name} changing email: second@example.com" in result.out
    assert f"user modified: {name}" in result.out
    config = api.result(name)
    assert (config["email"], config["title"]) == ("second@example.com", "Second")
    shown = devpi("user", name).stdout
    assert f"{server.url}/{name}:" in shown
    assert "  email=second@example.com" in shown
    assert "password" not in shown


def test_user_create_prompts_for_password(server, devpi, api):
    name = unique("u")
    devpi("use", server.url)
    result = devpi("user", "-c", name, "email=p@example.com", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert f"user created: {name}" in result.out
    devpi("login", name, stdin=f"{PASSWORD}\n")
    assert api.result("+api")["authstatus"][0] == "noauth"  # the API client itself is anonymous
    assert devpi.token() is not None


def test_user_create_existing_fails(server, devpi):
    user = setup_user(devpi, server.url)
    result = devpi("user", "-c", user.name, "password=other-pass", code=1)
    assert f"PUT {server.url}/{user.name}" in result.out
    assert "409 Conflict" in result.out


def test_user_modify_of_other_user_is_forbidden(server, devpi):
    other = setup_user(DevpiCLI.create(devpi.home.parent / "other"), server.url)
    setup_user(devpi, server.url)
    result = devpi("user", "-m", other.name, "email=evil@example.com", code=1)
    assert f"PATCH {server.url}/{other.name}" in result.out
    assert "403 Forbidden" in result.out


def test_user_delete(server, devpi, api):
    user = setup_user(devpi, server.url)
    result = devpi("user", "--delete", user.name, "-y")
    assert f"user deleted: {user.name}" in result.out
    assert api.status(user.name) == 404
    assert api.status(user.fullindex) == 404


def test_user_delete_refused_with_non_volatile_index(server, devpi, api):
    user = setup_user(devpi, server.url, volatile="False")
    result = devpi("user", "--delete", user.name, "-y", code=1)
    assert f"DELETE {server.url}/{user.name}" in result.out
    assert "403 Forbidden" in result.out
    assert api.status(user.name) == 200


def test_user_delete_without_confirmation_keeps_user(server, devpi, api):
    user = setup_user(devpi, server.url)
    result = devpi("user", "--delete", user.name, stdin="no\n")
    assert "user deleted" not in result.out
    assert api.status(user.name) == 200


def test_passwd_changes_password_and_old_token_dies(server, devpi, api):
    user = setup_user(devpi, server.url)
    old_token = devpi.token()
    new = "another-secret"
    result = devpi("passwd", stdin=f"{new}\n{new}\n")
    assert f"/{user.name} changing password: ********" in result.out
    assert f"user modified: {user.name}" in result.out
    assert ServerAPI(server.url, (user.name, new)).result("+api")["authstatus"][:2] == [
        "ok",
        user.name,
    ]
    assert ServerAPI(server.url, (user.name, PASSWORD)).result("+api")["authstatus"][0] == "noauth"
    assert ServerAPI(server.url, old_token).result("+api")["authstatus"][0] == "noauth"
    result = devpi("login", user.name, "--password", new)
    assert "credentials valid for 10.00 hours" in result.out


# -- devpi login / logout -------------------------------------------------------------------
def test_login_and_logout(server, devpi):
    user = setup_user(devpi, server.url)
    result = devpi("login", user.name, "--password", PASSWORD)
    assert (
        f"logged in '{user.name}' at '{server.url}/{user.fullindex}', "
        "credentials valid for 10.00 hours"
    ) in result.out
    token_user, token = devpi.token()
    assert token_user == user.name
    assert token != PASSWORD
    assert ServerAPI(server.url, (user.name, token)).result("+api")["authstatus"][:2] == [
        "ok",
        user.name,
    ]
    assert "login information deleted" in devpi("logout").out
    assert devpi.token() is None
    assert "(not logged in)" in devpi("use").out
    assert "not logged in" in devpi("logoff").out


def test_login_wrong_password_prints_server_message(server, devpi):
    user = setup_user(devpi, server.url)
    devpi("logout")
    result = devpi("login", user.name, "--password", "wrong-password", code=1)
    assert f"POST {server.url}/+login" in result.out
    assert f"401 Unauthorized: user '{user.name}' could not be authenticated" in result.out
    assert devpi.token() is None


def test_login_unknown_user(server, devpi):
    devpi("use", server.url)
    result = devpi("login", "nobody-here", "--password", "x", code=1)
    assert "401 Unauthorized: user 'nobody-here' could not be authenticated" in result.out


def test_commands_needing_login_say_so(server, devpi):
    user = setup_user(devpi, server.url)
    devpi("logout")
    assert "you need to be logged in" in devpi("index", "-c", f"{user.name}/more", code=1).out
    assert "you need to be logged in" in devpi("index", f"{user.name}/dev", "title=x", code=1).out
    assert (
        "you need to be logged in" in devpi("index", "--delete", user.fullindex, "-y", code=1).out
    )


def _backdate(serverdir: Path, token: str, seconds: int) -> str:
    """The same login token, issued ``seconds`` earlier (signed with the server's secret)."""
    payload, _dot, _sig = token.partition(".")
    username, issued, fingerprint = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    new_payload = (
        base64.urlsafe_b64encode(json.dumps([username, issued - seconds, fingerprint]).encode())
        .rstrip(b"=")
        .decode()
    )
    secret = (serverdir / ".secret").read_bytes()
    key = hmac.new(secret, b"devpi-core login token v1", hashlib.sha256).digest()
    signature = (
        base64.urlsafe_b64encode(hmac.new(key, new_payload.encode(), hashlib.sha256).digest())
        .rstrip(b"=")
        .decode()
    )
    return f"{new_payload}.{signature}"


def test_expired_login_is_dropped_like_devpi_does(server, devpi):
    user = setup_user(devpi, server.url)
    _name, token = devpi.token()
    expired = _backdate(server.serverdir, token, 11 * 3600)
    assert (
        ServerAPI(server.url, (user.name, _backdate(server.serverdir, token, 60))).result("+api")[
            "authstatus"
        ][0]
        == "ok"
    ), "re-signing must produce a valid token"
    auth_file = devpi.clientdir / "auth.json"
    auth_file.write_text(auth_file.read_text().replace(token, expired))
    # an expired token is simply no identity: the server answers as to anonymous
    assert ServerAPI(server.url, (user.name, expired)).result("+api")["authstatus"] == [
        "noauth",
        "",
        [],
    ]
    result = devpi("use")
    assert f"current devpi index: {server.url}/{user.fullindex} (not logged in)" in result.out
    assert devpi.token() is None
    assert "you need to be logged in" in devpi("index", "-c", f"{user.name}/late", code=1).out
    devpi("login", user.name, "--password", PASSWORD)
    assert f"{server.url}/{user.name}/late" in devpi("index", "-c", "late").out


def test_expired_token_upload_is_refused(server, devpi, tmp_path):
    user = setup_user(devpi, server.url)
    _name, token = devpi.token()
    auth_file = devpi.clientdir / "auth.json"
    auth_file.write_text(
        auth_file.read_text().replace(token, _backdate(server.serverdir, token, 11 * 3600))
    )
    wheel = tmp_path / "late-1.0-py3-none-any.whl"
    make_wheel(DistSpec("late", "1.0")).write(tmp_path)
    result = devpi("upload", str(wheel), code=1)
    assert f"401 FAIL file_upload of {wheel.name}" in result.out
    assert ServerAPI(server.url).status(f"{user.fullindex}/late") == 404
