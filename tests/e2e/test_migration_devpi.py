"""Migration both ways against the real devpi-server (issue 12).

1. devpi-server's ``devpi-export`` of a realistic server, ``devpi-core import``, then what
   devpi-core serves is compared with what devpi-server served (users, indexes, projects,
   versions, ``+links`` with their logs, file bytes), plus docs pages, pip and uv installs and
   ``devpi login`` with the old passwords.
2. ``devpi-core export`` of that server, ``devpi-import`` into a fresh devpi-server: the same
   comparison against devpi-server.

The scenario (``migration_scenario.py``) is built once per run and shared by both tests.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
import requests
from migration_scenario import DOC_HTML, PASSWORDS, USER_KEYS, build, record_state
from peer import FAST_ARGON2, peer_harness

from devpi_core.cli import main
from devpi_core.testing.devpiclient import DevpiCLI
from devpi_core.testing.plugin import bin_path, clean_env, server_config, write_config

if TYPE_CHECKING:
    from pathlib import Path

    from migration_scenario import Scenario

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Scenario:
    # under xdist every worker has its own basetemp; their parent is this run's, shared
    base = tmp_path_factory.getbasetemp()
    shared = (base if worker_id == "master" else base.parent) / "migration-scenario"
    shared.mkdir(exist_ok=True)
    return build(shared)


def _links(verdata: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for link in verdata.get("+links", ()):
        name = link["href"].split("#")[0].rsplit("/", 1)[1]
        found[name] = {
            "rel": link["rel"],
            "path": link["href"].split("/", 3)[3],
            "log": link.get("log"),
            "for": (link.get("for_href") or "").rsplit("/", 1)[-1],
        }
    return found


def assert_same_state(expected: dict[str, Any], got: dict[str, Any]) -> None:
    """What devpi-server answered (``expected``) is what the other server answers."""
    for name, user in expected["users"].items():
        for key in USER_KEYS:
            assert got["users"][name].get(key) == user.get(key), (name, key)
        assert sorted(got["users"][name]["indexes"]) == sorted(user["indexes"]), name
    for index, config in expected["indexes"].items():
        for key, value in config.items():
            assert got["indexes"][index].get(key) == value, (index, key)
    for project, versions in expected["projects"].items():
        assert sorted(got["projects"][project]) == sorted(versions), project
        for version, verdata in versions.items():
            other = got["projects"][project][version]
            for key, value in verdata.items():
                if not key.startswith("+"):
                    assert other.get(key) == value, (project, version, key)
            assert _links(other) == _links(verdata), (project, version)
    assert got["files"] == expected["files"]


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=clean_env(**env),
                          timeout=180, check=False)


def _installs(url: str, tmp_path: Path) -> None:
    simple = f"{url}/bob/stage/+simple/"
    pip = _run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps",
                "--index-url", simple, "--target", str(tmp_path / "pip"), "hello-pkg==1.0"])
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (tmp_path / "pip" / "hello_pkg" / "__init__.py").read_text() == "__version__ = '1.0'\n"
    uv = _run([bin_path("uv"), "pip", "install", "--no-cache", "--index-url", simple,
               "--target", str(tmp_path / "uv"), "bob-tool==3.1"])
    assert uv.returncode == 0, uv.stdout + uv.stderr
    assert (tmp_path / "uv" / "bob_tool" / "__init__.py").exists()


def _logins(url: str, tmp_path: Path, *, with_client: bool = True) -> None:
    """Every old password logs in (root and bob over the API, alice with devpi-client)."""
    for user in ("root", "bob"):
        assert _login(url, user, PASSWORDS[user]) == 200, user
    assert _login(url, "bob", "wrong-password") == 401
    if not with_client:
        assert _login(url, "alice", PASSWORDS["alice"]) == 200
        return
    devpi = DevpiCLI.create(tmp_path / "client")
    devpi("use", url)
    assert "logged in 'alice'" in devpi("login", "alice", "--password", PASSWORDS["alice"]).out


def _login(url: str, user: str, password: str) -> int:
    with requests.Session() as session:
        session.trust_env = False
        response = session.post(f"{url}/+login", json={"user": user, "password": password},
                                headers={"Accept": "application/json"}, timeout=60)
        return response.status_code


def _core(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``devpi-core ARGS`` in this process (a subprocess costs seconds on a loaded machine)."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_of_devpi_server_export(scenario: Scenario, tmp_path: Path, devpi_server, capsys):
    config = write_config(tmp_path / "config.yml", server_config())
    serverdir = tmp_path / "serverdir"
    where = ("--serverdir", str(serverdir), "--config", str(config))
    code, out, err = _core("import", *where, str(scenario.dump), capsys=capsys)
    assert code == 0, out + err
    assert "imported 3 users, 4 indexes, 5 projects, 11 files" in out
    code, out, err = _core("import", *where, str(scenario.dump), capsys=capsys)
    assert code == 1
    assert "the target server is not empty (user alice" in err
    server = devpi_server(serverdir=serverdir)
    assert_same_state(scenario.state, record_state(server.url))
    _logins(server.url, tmp_path)
    _installs(server.url, tmp_path)
    doc = _run([sys.executable, "-c", "import sys, urllib.request; sys.stdout.write("
                f"urllib.request.urlopen('{server.url}/alice/dev/hello-pkg/2.0/+doc/index.html')"
                ".read().decode())"])
    assert doc.stdout == DOC_HTML, doc.stdout + doc.stderr


def test_export_reads_into_devpi_server(scenario: Scenario, tmp_path: Path, capsys):
    harness = peer_harness()
    config = write_config(tmp_path / "config.yml", server_config())
    where = ("--serverdir", str(tmp_path / "core"), "--config", str(config))
    code, out, err = _core("import", *where, str(scenario.dump), capsys=capsys)
    assert code == 0, out + err
    code, out, err = _core("export", *where, str(tmp_path / "dump"), capsys=capsys)
    assert code == 0, out + err
    assert "exported to" in out
    assert "11 files" in out
    peer_dir = tmp_path / "peer" / "devpi-serverdir"
    devpi_import = _run([str(harness.PEER_VENV / "bin" / "devpi-import"), "--serverdir",
                         str(peer_dir), "--no-root-pypi", str(tmp_path / "dump")])
    assert devpi_import.returncode == 0, devpi_import.stdout + devpi_import.stderr
    server = harness.start_devpi_server(tmp_path / "peer", serverdir=peer_dir, extra=FAST_ARGON2)
    try:
        assert_same_state(scenario.state, record_state(server.url))
        _logins(server.url, tmp_path, with_client=False)  # devpi login: the import test
    finally:
        server.stop()
