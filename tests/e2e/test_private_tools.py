"""Real tools against a real ``devpi-core serve``: twine, ``setup.py sdist upload``, devpi upload,
pip and uv installs through bases.

Every subprocess runs with :func:`clean_env` and explicit index URLs, and the server's request
log is checked, so a pass cannot come from another index.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import pytest
import requests

from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel
from devpi_core.testing.plugin import (
    ServerProcess,
    bin_path,
    clean_env,
    server_config,
    write_config,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e
TIMEOUT = 180


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("private-e2e")
    handle = ServerProcess(base / "serverdir", write_config(base / "config.yml", server_config()))
    handle.start()
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    url = handle.url
    assert session.put(f"{url}/alice", json={"password": "123"}).status_code == 201
    session.auth = ("alice", "123")
    assert session.put(f"{url}/alice/base", json={}).status_code == 200
    assert session.put(f"{url}/alice/dev", json={"bases": "alice/base"}).status_code == 200
    yield handle
    handle.stop()


def run(
    args, *, home: Path, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=clean_env(home, **env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def wait_for_log(server: ServerProcess, needle: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log()
        if needle in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} not in the server log:\n{server.log()[-3000:]}")


def filenames(server: ServerProcess, index: str, project: str) -> list[str]:
    response = requests.get(
        f"{server.url}/{index}/+simple/{project}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return sorted(f["filename"] for f in response.json()["files"])


def test_twine_upload_then_pip_and_uv_install_through_bases(server, tmp_path):
    dep = make_wheel(DistSpec("twdep", "1.0", module_code="VALUE = 'dep'\n"))
    app = make_wheel(
        DistSpec("twapp", "2.0", requires_dist=["twdep>=1.0"], module_code="VALUE = 'app'\n")
    )
    app_sdist = make_sdist(DistSpec("twapp", "2.0", requires_dist=["twdep>=1.0"]))
    dist = tmp_path / "dist"
    dist.mkdir()
    paths = [d.write(dist) for d in (app, app_sdist)]
    dep_path = dep.write(tmp_path)
    twine = bin_path("twine")
    for index, files in (("alice/base", [dep_path]), ("alice/dev", paths)):
        run(
            [
                twine,
                "upload",
                "--non-interactive",
                "--disable-progress-bar",
                "--repository-url",
                f"{server.url}/{index}/",
                "-u",
                "alice",
                "-p",
                "123",
                *files,
            ],
            home=tmp_path,
        )
    assert filenames(server, "alice/dev", "twapp") == sorted([app.filename, app_sdist.filename])
    simple = f"{server.url}/alice/dev/+simple/"

    pip_target = tmp_path / "pip-target"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--only-binary",
            ":all:",
            "--index-url",
            simple,
            "--target",
            pip_target,
            "twapp",
        ],
        home=tmp_path,
    )
    assert (pip_target / "twapp" / "__init__.py").read_text() == "VALUE = 'app'\n"
    assert (pip_target / "twdep" / "__init__.py").read_text() == "VALUE = 'dep'\n"
    wait_for_log(server, "GET /alice/dev/+simple/twdep/")

    uv_target = tmp_path / "uv-target"
    run(
        [
            bin_path("uv"),
            "pip",
            "install",
            "--no-cache",
            "--python",
            sys.executable,
            "--index-url",
            simple,
            "--target",
            uv_target,
            "twapp",
        ],
        home=tmp_path,
    )
    assert (uv_target / "twapp" / "__init__.py").read_text() == "VALUE = 'app'\n"
    assert (uv_target / "twdep" / "__init__.py").read_text() == "VALUE = 'dep'\n"
    log = wait_for_log(server, f"/{app.filename}")
    assert "/alice/base/_f/" in log


def test_twine_reports_conflict_on_non_volatile_index(server, tmp_path):
    requests.put(
        f"{server.url}/alice/prod",
        json={"volatile": False},
        auth=("alice", "123"),
        headers={"Accept": "application/json"},
        timeout=10,
    ).raise_for_status()
    first = make_wheel(DistSpec("pinned", "1.0"))
    second = make_wheel(DistSpec("pinned", "1.0"), padding=64)
    twine = bin_path("twine")
    args = [
        twine,
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        "--repository-url",
        f"{server.url}/alice/prod/",
        "-u",
        "alice",
        "-p",
        "123",
    ]
    run([*args, first.write(tmp_path)], home=tmp_path)
    (tmp_path / "second").mkdir()
    result = subprocess.run(
        [*args, second.write(tmp_path / "second")],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode != 0
    assert "409" in result.stdout + result.stderr
    assert "already exists in non-volatile index" in result.stdout + result.stderr
    assert filenames(server, "alice/prod", "pinned") == [first.filename]


def test_twine_with_wrong_password_is_refused(server, tmp_path):
    wheel = make_wheel(DistSpec("refused", "1.0"))
    result = subprocess.run(
        [
            bin_path("twine"),
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            f"{server.url}/alice/dev/",
            "-u",
            "alice",
            "-p",
            "wrong",
            str(wheel.write(tmp_path)),
        ],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode != 0
    assert "401" in result.stdout + result.stderr or "403" in result.stdout + result.stderr
    response = requests.get(f"{server.url}/alice/dev/+simple/refused/", timeout=10)
    assert response.status_code == 404


SETUP_PY = """\
from distutils.core import setup
setup(name="distutilspkg", version="0.3", py_modules=["distutilspkg"],
      description="uploaded with setup.py upload", author="Alice")
"""


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="distutils left the stdlib in 3.12")
def test_setup_py_sdist_upload_with_stdlib_distutils(server, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "setup.py").write_text(SETUP_PY)
    (project / "distutilspkg.py").write_text("VALUE = 3\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".pypirc").write_text(
        textwrap.dedent(f"""\
        [distutils]
        index-servers = devpi

        [devpi]
        repository = {server.url}/alice/dev/
        username = alice
        password = 123
        """)
    )
    result = run(
        [sys.executable, "setup.py", "sdist", "upload", "-r", "devpi"],
        home=home,
        cwd=project,
        SETUPTOOLS_USE_DISTUTILS="stdlib",
    )
    assert "Server response (200)" in result.stdout + result.stderr
    assert filenames(server, "alice/dev", "distutilspkg") == ["distutilspkg-0.3.tar.gz"]
    data = requests.get(
        f"{server.url}/alice/dev/distutilspkg/0.3",
        headers={"Accept": "application/json"},
        timeout=10,
    ).json()["result"]
    assert data["summary"] == "uploaded with setup.py upload"
    assert data["author"] == "Alice"
    wait_for_log(server, "POST /alice/dev/ 200")


def test_devpi_upload_of_built_files(server, tmp_path):
    wheel = make_wheel(DistSpec("devpiup", "1.0"))
    path = wheel.write(tmp_path)
    devpi = bin_path("devpi")
    clientdir = tmp_path / "clientdir"
    env = {"DEVPI_CLIENTDIR": str(clientdir)}
    home = tmp_path
    run([devpi, "use", f"{server.url}/alice/dev"], home=home, **env)
    run([devpi, "login", "alice", "--password", "123"], home=home, **env)
    result = run([devpi, "upload", str(path)], home=home, **env)
    assert wheel.filename in result.stdout
    assert filenames(server, "alice/dev", "devpiup") == [wheel.filename]


def test_uv_publish(server, tmp_path):
    spec = DistSpec("uvpub", "1.0", summary="published by uv")
    wheel, sdist = make_wheel(spec), make_sdist(spec)
    dist = tmp_path / "dist"
    dist.mkdir()
    paths = [wheel.write(dist), sdist.write(dist)]
    run(
        [
            bin_path("uv"),
            "publish",
            "--publish-url",
            f"{server.url}/alice/dev/",
            "--username",
            "alice",
            "--password",
            "123",
            *paths,
        ],
        home=tmp_path,
    )
    assert filenames(server, "alice/dev", "uvpub") == sorted([wheel.filename, sdist.filename])
    data = requests.get(
        f"{server.url}/alice/dev/uvpub/1.0", headers={"Accept": "application/json"}, timeout=10
    ).json()["result"]
    assert data["summary"] == "published by uv"
