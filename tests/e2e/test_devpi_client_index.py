"""devpi-client against devpi-core: ``devpi index`` (create, show, modify, list, delete)."""

from __future__ import annotations

import pytest

from devpi_core.testing.devpiclient import DevpiCLI, setup_user
from devpi_core.testing.dists import DistSpec, make_wheel

pytestmark = pytest.mark.e2e


def _shown(output: str) -> dict[str, str]:
    """The ``key=value`` lines devpi prints for an index."""
    return dict(line.strip().split("=", 1) for line in output.splitlines() if line.startswith("  "))


def test_create_with_bases_volatile_and_acl(user, devpi, api):
    devpi("index", "-c", "base")
    result = devpi(
        "index",
        "-c",
        "prod",
        f"bases={user.name}/base,{user.fullindex}",
        "volatile=False",
        f"acl_upload={user.name},:anonymous:",
        "title=Production",
    )
    shown = _shown(result.stdout)
    assert f"{user.url}/{user.name}/prod?no_projects=:" in result.stdout
    assert shown["type"] == "stage"
    assert shown["bases"] == f"{user.name}/base,{user.fullindex}"
    assert shown["volatile"] == "False"
    assert shown["acl_upload"] == f"{user.name},:ANONYMOUS:"
    assert shown["title"] == "Production"
    # devpi prints type, bases, volatile and acl_upload first, the rest sorted
    keys = [
        line.strip().split("=", 1)[0]
        for line in result.stdout.splitlines()
        if line.startswith("  ")
    ]
    assert keys[:4] == ["type", "bases", "volatile", "acl_upload"]
    assert keys[4:] == sorted(keys[4:])
    config = api.result(f"{user.name}/prod")
    assert config["bases"] == [f"{user.name}/base", user.fullindex]
    assert config["volatile"] is False
    assert config["acl_upload"] == [user.name, ":ANONYMOUS:"]
    assert config["projects"] == []


def test_create_existing_index_fails(user, devpi):
    result = devpi("index", "-c", "dev", code=1)
    assert f"409 Conflict: index {user.fullindex} exists" in result.out


def test_create_with_unknown_base_fails(user, devpi, api):
    result = devpi("index", "-c", "broken", "bases=nobody/nothing", code=1)
    assert "400 Bad Request: base index 'nobody/nothing' does not exist" in result.out
    assert api.status(f"{user.name}/broken") == 404


def test_create_with_unknown_key_fails(user, devpi):
    result = devpi("index", "-c", "odd", "colour=blue", code=1)
    assert (
        "400 Bad Request: indexconfig got unexpected keyword arguments: colour=blue" in result.out
    )


def test_create_under_another_user_is_forbidden(server, user, devpi, tmp_path):
    other = setup_user(DevpiCLI.create(tmp_path / "other"), server.url)
    result = devpi("index", "-c", f"{other.name}/sneaky", code=1)
    assert f"PUT {server.url}/{other.name}/sneaky" in result.out
    assert "403 Forbidden" in result.out


def test_show_current_and_named_index(user, devpi):
    assert _shown(devpi("index").stdout)["volatile"] == "True"
    shown = _shown(devpi("index", user.fullindex).stdout)
    assert shown["acl_upload"] == user.name
    assert shown["acl_toxresult_upload"] == ":ANONYMOUS:"
    assert shown["mirror_whitelist_inheritance"] == "intersection"
    result = devpi("index", "--no-projects", user.fullindex)
    assert f"{user.url}/{user.fullindex}?no_projects=:" in result.stdout


def test_show_unknown_index_fails(user, devpi):
    result = devpi("index", f"{user.name}/missing", code=1)
    assert "type=" not in result.out


def test_modify_set_append_remove(user, devpi, api):
    result = devpi("index", "dev", "title=Dev", "acl_upload+=friend", "mirror_whitelist+=Pkg_One")
    assert f"/{user.fullindex} title=Dev" in result.out
    assert f"/{user.fullindex} acl_upload+=friend" in result.out
    config = api.result(user.fullindex)
    assert config["title"] == "Dev"
    assert config["acl_upload"] == [user.name, "friend"]
    assert config["mirror_whitelist"] == ["pkg-one"]
    devpi("index", "dev", "acl_upload-=friend", "volatile=no")
    config = api.result(user.fullindex)
    assert config["acl_upload"] == [user.name]
    assert config["volatile"] is False
    assert _shown(devpi("index", "dev").stdout)["volatile"] == "False"


def test_modify_errors_print_server_message(user, devpi, api):
    result = devpi("index", "dev", "acl_upload-=stranger", code=1)
    assert f"PATCH {user.url}/{user.fullindex}" in result.out
    assert "400 Bad Request: acl_upload: 'stranger' is not in the list" in result.out
    result = devpi("index", "dev", "volatile=maybe", code=1)
    assert "400 Bad Request: volatile: expected true or false, got 'maybe'" in result.out
    result = devpi("index", "dev", "bases+=nobody/nothing", code=1)
    assert "400 Bad Request: base index 'nobody/nothing' does not exist" in result.out
    result = devpi("index", "dev", "type=mirror", code=1)
    assert "400 Bad Request" in result.out
    assert api.result(user.fullindex)["volatile"] is True


def test_modify_other_users_index_is_forbidden(server, user, devpi, tmp_path, api):
    other = setup_user(DevpiCLI.create(tmp_path / "other"), server.url)
    result = devpi("index", other.fullindex, "title=mine", code=1)
    assert f"PATCH {server.url}/{other.fullindex}" in result.out
    assert "403 Forbidden" in result.out
    assert "title" not in api.result(other.fullindex)


def test_acl_upload_lets_another_user_upload(server, user, devpi, tmp_path, api):
    friend = setup_user(DevpiCLI.create(tmp_path / "friend"), server.url)
    wheel = make_wheel(DistSpec("shared-pkg", "1.0")).write(tmp_path)
    refused = friend.devpi("upload", "--index", user.fullindex, str(wheel), code=1)
    assert f"403 FAIL file_upload of {wheel.name} to {server.url}/{user.fullindex}/" in refused.out
    devpi("index", "dev", f"acl_upload+={friend.name}")
    result = friend.devpi("upload", "--index", user.fullindex, str(wheel))
    assert f"file_upload of {wheel.name} to {server.url}/{user.fullindex}/" in result.out
    assert (
        api.result(f"{user.fullindex}/shared-pkg")["1.0"]["+links"][0]["log"][0]["who"]
        == friend.name
    )


def test_list_own_and_other_users_indexes(user, devpi, api):
    devpi("index", "-c", "second")
    assert devpi("index", "-l").stdout.split() == [user.fullindex, f"{user.name}/second"]
    root_indexes = sorted(f"root/{name}" for name in api.result("root")["indexes"])
    assert devpi("index", "-l", "root").stdout.split() == root_indexes
    assert user.fullindex in devpi("use", "-l").stdout


def test_delete_volatile_index(user, devpi, api):
    devpi("index", "-c", "scratch")
    result = devpi("index", "--delete", "scratch", "-y")
    assert f"index deleted: {user.url}/{user.name}/scratch" in result.out
    assert api.status(f"{user.name}/scratch") == 404


def test_delete_non_volatile_index_is_refused(user, devpi, api):
    devpi("index", "-c", "keep", "volatile=False")
    result = devpi("index", "--delete", "keep", "-y", code=1)
    assert f"403 Forbidden: index {user.name}/keep non-volatile, cannot delete" in result.out
    assert api.status(f"{user.name}/keep") == 200
    devpi("index", "keep", "volatile=True")
    devpi("index", "--delete", "keep", "-y")
    assert api.status(f"{user.name}/keep") == 404


def test_delete_needs_confirmation(user, devpi, api):
    devpi("index", "-c", "maybe")
    result = devpi("index", "--delete", "maybe", stdin="no\n")
    assert "index deleted" not in result.out
    assert api.status(f"{user.name}/maybe") == 200


def test_delete_index_used_as_base(user, devpi, api):
    devpi("index", "-c", "lower")
    devpi("index", "-c", "upper", f"bases={user.name}/lower")
    devpi("index", "--delete", "lower", "-y")
    # as devpi-server: the dependent index keeps the (now dangling) base and still answers
    assert api.result(f"{user.name}/upper")["bases"] == [f"{user.name}/lower"]
    assert api.status(f"{user.name}/upper/+simple/") == 200


def test_acl_read_makes_an_index_private(server, user, devpi, tmp_path, api):
    devpi("upload", str(make_wheel(DistSpec("secret-pkg", "1.0")).write(tmp_path)))
    result = devpi("index", "dev", f"acl_read={user.name}")
    assert _shown(result.stdout)["acl_read"] == user.name
    outsider = DevpiCLI.create(tmp_path / "outsider")
    # devpi-client gets a 403 on reads (as devpi's read-restricting plugins answer it) and
    # turns it into a hint instead of failing
    used = outsider("use", f"{server.url}/{user.fullindex}")
    assert f"403 Forbidden: no permission to read {user.fullindex}" in used.out
    assert "You might have to login first to access this index." in used.out
    listed = outsider("list", "secret-pkg", code=1)
    assert f"403 Forbidden: no permission to read {user.fullindex}" in listed.out
    assert "secret_pkg" not in listed.out
    # pip and other clients still get a 401 that asks for credentials
    assert api.status(f"{user.fullindex}/+simple/secret-pkg/") == 401
    assert "secret_pkg-1.0-py3-none-any.whl" in devpi("list", "secret-pkg").out
    friend = setup_user(DevpiCLI.create(tmp_path / "friend"), server.url)
    assert friend.devpi("list", "--index", user.fullindex, "secret-pkg", code=1).returncode == 1
    devpi("index", "dev", f"acl_read+={friend.name}")
    assert "secret_pkg" in friend.devpi("list", "--index", user.fullindex, "secret-pkg").out
