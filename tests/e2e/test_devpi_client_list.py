"""devpi-client against devpi-core: ``devpi list``, ``devpi getjson`` and ``devpi remove``."""

from __future__ import annotations

import json

import pytest

from devpi_core.testing.devpiclient import DevpiCLI, setup_user
from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel

pytestmark = pytest.mark.e2e


def _upload(devpi, directory, name, *versions, sdist=False):
    files = []
    for version in versions:
        spec = DistSpec(name, version)
        files.append(make_wheel(spec).write(directory))
        if sdist:
            files.append(make_sdist(spec).write(directory))
    devpi("upload", *map(str, files))


def _toxresult(failed: bool) -> dict:
    return {
        "host": "testhost",
        "platform": "linux",
        "installpkg": {},
        "testenvs": {
            "py311": {
                "python": {"version": "3.11.7 (main)"},
                "setup": [{"command": ["pip", "install", "x"], "retcode": "0", "output": "ok"}],
                "test": [
                    {
                        "command": ["pytest", "-x"],
                        "retcode": "1" if failed else "0",
                        "output": "E   assert 1 == 2\n1 failed" if failed else "1 passed",
                    }
                ],
            }
        },
    }


# -- devpi list -----------------------------------------------------------------------------
def test_list_projects_of_index(user, devpi, tmp_path):
    _upload(devpi, tmp_path, "alpha", "1.0")
    _upload(devpi, tmp_path, "Beta_Pkg", "1.0")
    assert devpi("list").stdout.split() == ["alpha", "beta-pkg"]
    devpi("index", "-c", "empty")
    assert devpi("list", "--index", f"{user.name}/empty").stdout.split() == []
    verbose = devpi("list", "-v").stdout.split()
    assert verbose == ["alpha==1.0", "Beta_Pkg==1.0"]


def test_list_project_files(user, devpi, tmp_path):
    _upload(devpi, tmp_path, "listed", "1.0", "1.1", sdist=True)
    lines = devpi("list", "listed").stdout.split()
    base = f"{user.url}/{user.fullindex}/+f/"
    assert all(line.startswith(base) for line in lines)
    assert sorted(line.rsplit("/", 1)[-1] for line in lines) == [
        "listed-1.0-py3-none-any.whl",
        "listed-1.0.tar.gz",
        "listed-1.1-py3-none-any.whl",
        "listed-1.1.tar.gz",
    ]
    # newest version first
    assert lines[0].rsplit("/", 1)[-1].startswith("listed-1.1")
    only = devpi("list", "listed==1.0").stdout.split()
    assert [line.rsplit("/", 1)[-1] for line in only] == [
        "listed-1.0-py3-none-any.whl",
        "listed-1.0.tar.gz",
    ]


def test_list_all_versions(user, devpi, tmp_path):
    _upload(devpi, tmp_path, "many", "1.0", "1.1", "1.2", "1.3", "1.4", "2.0")
    limited = devpi("list", "many")
    shown = [line for line in limited.stdout.splitlines() if line.startswith("http")]
    assert [line.rsplit("/", 1)[-1].split("-")[1] for line in shown] == ["2.0", "1.4", "1.3"]
    assert "3 older versions not shown, use --all to see" in limited.out
    everything = devpi("list", "--all", "many").stdout.split()
    assert [line.rsplit("/", 1)[-1].split("-")[1] for line in everything] == [
        "2.0",
        "1.4",
        "1.3",
        "1.2",
        "1.1",
        "1.0",
    ]


def test_list_with_bases_and_ignore_bases(user, devpi, tmp_path):
    _upload(devpi, tmp_path, "layered", "1.0")
    devpi("index", "-c", "child", f"bases={user.fullindex}")
    devpi("use", f"{user.name}/child")
    (tmp_path / "child").mkdir()
    _upload(devpi, tmp_path / "child", "layered", "2.0")
    result = devpi("list", "layered")
    hrefs = result.out.split()
    assert any(f"/{user.name}/child/+f/" in href and "2.0" in href for href in hrefs)
    assert any(f"/{user.fullindex}/+f/" in href and "1.0" in href for href in hrefs)
    own = devpi("list", "--ignore-bases", "layered").out.split()
    # devpi-client joins the hrefs to the request URL, query included (with devpi-server too)
    assert [href.rsplit("/", 1)[-1] for href in own] == [
        "layered-2.0-py3-none-any.whl?ignore_bases="
    ]


def test_list_shows_shadowed_release_of_base(user, devpi, tmp_path):
    _upload(devpi, tmp_path, "shadow", "1.0")
    devpi("index", "-c", "child", f"bases={user.fullindex}")
    devpi("use", f"{user.name}/child")
    (tmp_path / "child").mkdir()
    devpi(
        "upload",
        str(make_wheel(DistSpec("shadow", "1.0", summary="new")).write(tmp_path / "child")),
    )
    result = devpi("list", "shadow")
    assert f"/{user.name}/child/+f/" in result.stdout
    # the shadowed file of the base is shown too, as with devpi-server
    assert f"/{user.fullindex}/+f/" in result.stdout


def test_list_toxresults_and_failures(user, devpi, api, tmp_path):
    _upload(devpi, tmp_path, "tested", "1.0", sdist=True)
    links = api.result(f"{user.fullindex}/tested/1.0")["+links"]
    sdist = next(link for link in links if link["href"].endswith(".tar.gz"))
    wheel = next(link for link in links if link["href"].endswith(".whl"))
    assert api.request("POST", sdist["href"], json=_toxresult(failed=True)).status_code == 200
    assert api.request("POST", wheel["href"], json=_toxresult(failed=False)).status_code == 200
    result = devpi("list", "-t", "tested")
    assert "testhost   linux   py311      3.11.7 tests failed" in result.out
    assert "testhost   linux   py311      3.11.7 tests passed" in result.out
    assert "FAIL" not in result.out
    failures = devpi("list", "-f", "tested").out
    assert "    FAIL: pytest -x" in failures
    assert "    E   assert 1 == 2" in failures


def test_list_unknown_project(user, devpi):
    result = devpi("list", "missing", code=1)
    assert f"GET {user.url}/{user.fullindex}/missing/" in result.out
    assert "404 Not Found" in result.out


# -- devpi getjson --------------------------------------------------------------------------
def test_getjson_paths(user, devpi, tmp_path):
    _upload(devpi, tmp_path, "jsoned", "1.0")
    relative = json.loads(devpi("getjson", "jsoned").stdout)
    assert relative["type"] == "projectconfig"
    assert list(relative["result"]) == ["1.0"]
    index = json.loads(devpi("getjson", f"/{user.fullindex}").stdout)
    assert index["type"] == "indexconfig"
    assert index["result"]["projects"] == ["jsoned"]
    absolute = json.loads(devpi("getjson", f"{user.url}/{user.fullindex}/jsoned/1.0").stdout)
    assert absolute["type"] == "versiondata"
    assert absolute["result"]["+links"][0]["rel"] == "releasefile"
    api_config = json.loads(devpi("getjson", "/+api").stdout)["result"]
    assert api_config["login"] == f"{user.url}/+login"
    assert api_config["authstatus"][:2] == ["ok", user.name]
    no_projects = json.loads(devpi("getjson", f"/{user.fullindex}?no_projects=").stdout)
    assert "projects" not in no_projects["result"]


def test_getjson_verbose_shows_devpi_headers(user, devpi):
    result = devpi("getjson", "-v", "/+api")
    assert f"GET REQUEST sent to {user.url}/+api" in result.stdout
    assert "X-DEVPI-API-VERSION: 2" in result.stdout
    assert "X-DEVPI-SERIAL: " in result.stdout
    assert "X-DEVPI-UUID: " in result.stdout


def test_getjson_missing_path_shows_server_reply(user, devpi):
    result = devpi("getjson", f"/{user.name}/nothing", code=1)
    assert f"GET {user.url}/{user.name}/nothing" in result.out
    assert f"404 Not Found: no index {user.name}/nothing" in result.out


# -- devpi remove ---------------------------------------------------------------------------
def test_remove_version_with_confirmation(user, devpi, api, tmp_path):
    _upload(devpi, tmp_path, "doomed", "1.0", "2.0")
    declined = devpi("remove", "doomed==1.0", stdin="no\n")
    assert "About to remove the following releases and distributions" in declined.out
    assert "version: 1.0" in declined.out
    assert "not deleting anything" in declined.out
    assert sorted(api.result(f"{user.fullindex}/doomed")) == ["1.0", "2.0"]
    accepted = devpi("remove", "doomed==1.0", stdin="yes\n")
    assert "deleting release 1.0 of doomed" in accepted.out
    assert sorted(api.result(f"{user.fullindex}/doomed")) == ["2.0"]


def test_remove_range_and_whole_project(user, devpi, api, tmp_path):
    _upload(devpi, tmp_path, "ranged", "1.0", "1.5", "2.0", "3.0")
    result = devpi("remove", "-y", "ranged>=1.5,<3")
    assert "deleting release 1.5 of ranged" in result.out
    assert "deleting release 2.0 of ranged" in result.out
    assert sorted(api.result(f"{user.fullindex}/ranged")) == ["1.0", "3.0"]
    devpi("remove", "-y", "ranged")
    assert api.status(f"{user.fullindex}/ranged") == 404
    assert api.result(user.fullindex)["projects"] == []


def test_remove_nothing_matching(user, devpi, tmp_path):
    _upload(devpi, tmp_path, "kept", "1.0")
    result = devpi("remove", "-y", "kept==9.9", code=1)
    assert "No releases or distributions found matching 'kept==9.9'." in result.out


def test_remove_release_file_url(user, devpi, api, tmp_path):
    _upload(devpi, tmp_path, "filed", "1.0", sdist=True)
    links = api.result(f"{user.fullindex}/filed/1.0")["+links"]
    wheel_url = next(link["href"] for link in links if link["href"].endswith(".whl"))
    result = devpi("remove", "-y", wheel_url)
    assert wheel_url in result.out
    remaining = api.result(f"{user.fullindex}/filed/1.0")["+links"]
    assert [link["href"].rsplit("/", 1)[-1] for link in remaining] == ["filed-1.0.tar.gz"]
    assert api.status(wheel_url) in (404, 410)


def test_remove_on_non_volatile_index_needs_force(user, devpi, api, tmp_path):
    _upload(devpi, tmp_path, "solid", "1.0", "2.0")
    devpi("index", "dev", "volatile=False")
    result = devpi("remove", "-y", "solid==1.0", code=1)
    assert f"DELETE {user.url}/{user.fullindex}/solid/1.0" in result.out
    assert "403 Forbidden" in result.out
    assert sorted(api.result(f"{user.fullindex}/solid")) == ["1.0", "2.0"]
    devpi("remove", "-y", "--force", "solid==1.0")
    assert sorted(api.result(f"{user.fullindex}/solid")) == ["2.0"]


def test_remove_from_another_users_index_is_forbidden(server, user, devpi, api, tmp_path):
    _upload(devpi, tmp_path, "guarded", "1.0")
    intruder = DevpiCLI.create(tmp_path / "intruder")
    setup_user(intruder, server.url)
    result = intruder("remove", "-y", "--index", user.fullindex, "guarded==1.0", code=1)
    assert "403 Forbidden" in result.out
    assert sorted(api.result(f"{user.fullindex}/guarded")) == ["1.0"]
