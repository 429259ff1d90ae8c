"""The ``policy`` plugin through a real server: pip, uv (``pip install``, ``lock`` + ``sync``) and
devpi-client against a mirror of a fake upstream whose upload times are set relative to now.

``pkg 1.0`` was uploaded 30 days ago, ``pkg 2.0`` an hour ago: a 3-day cooldown holds 2.0. No
clock is faked here (the server is another process): the times are far enough from any
threshold that a slow machine cannot flip an answer.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest

from devpi_core.testing.devpiclient import DevpiCLI, ServerAPI, running_server, unique
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import bin_path, clean_env
from devpi_core.testing.upstream import FakeUpstream

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e
TIMEOUT = 180
CONFIG = {"plugins": {"mirror": {"init_root_pypi": False, "timeout": 2, "file_timeout": 2}}}


def _ago(seconds: float) -> str:
    moment = datetime.fromtimestamp(time.time() - seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def run(args, *, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], env=clean_env(home), cwd=cwd, capture_output=True, text=True,
        timeout=TIMEOUT, check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server and upstream for the module; each test mirrors it with an index of its own."""
    with FakeUpstream() as upstream:
        upstream.add("pkg", make_wheel(DistSpec("pkg", "1.0")), upload_time=_ago(30 * 86400))
        upstream.add("pkg", make_wheel(DistSpec("pkg", "2.0")), upload_time=_ago(3600))
        with running_server(tmp_path_factory.mktemp("policy"), CONFIG) as process:
            api = ServerAPI(process.url)
            token = api.request("POST", "+login", json={"user": "root", "password": ""}).json()
            api.auth = ("root", token["result"]["password"])
            yield process, api, upstream
            api.close()


@pytest.fixture
def served(server):
    process, api, upstream = server
    name = unique("mirror")
    created = api.request("PUT", f"root/{name}", json={"type": "mirror",
                                                       "mirror_url": upstream.url})
    assert created.status_code == 200, created.text
    return process, api, f"root/{name}"


def test_installers_fall_back_and_show_the_403(served, tmp_path):
    server, api, index = served
    simple = f"{server.url}/{index}/+simple/"
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0"\nrequires-python = ">=3.8"\n'
        'dependencies = ["pkg"]\n'
    )  # uv runs with UV_NO_CONFIG: the index is given on the command line
    uv = bin_path("uv")
    # locked before the rule: pkg 2.0
    ok(run([uv, "lock", "--no-cache", "--default-index", simple], home=tmp_path, cwd=project))
    assert 'version = "2.0"' in (project / "uv.lock").read_text()
    changed = api.request("PATCH", index, json=["min_release_age=3d"])
    assert changed.status_code == 200, changed.text
    # a fresh resolution falls back to 1.0
    ok(run([uv, "pip", "install", "--no-cache", "--index-url", simple, "--python", sys.executable,
            "--target", tmp_path / "uv", "pkg"], home=tmp_path))
    assert (tmp_path / "uv" / "pkg-1.0.dist-info").is_dir()
    # the lock file downloads 2.0 by URL: refused, with the reason
    synced = run([uv, "sync", "--frozen", "--no-cache", "--default-index", simple,
                  "--python", sys.executable], home=tmp_path, cwd=project)
    assert synced.returncode != 0
    said = " ".join(synced.stderr.split())  # uv wraps its message at the terminal's width
    assert "(403 pkg 2.0 was uploaded " in said, synced.stderr
    assert f"min_release_age of {index} holds it until" in said, synced.stderr
    # pip given the file's URL (a requirements file made from the lock): refused, with the reason
    lock = (project / "uv.lock").read_text()
    held_url = next(part.split('"')[1] for part in lock.split("url = ")[1:]
                    if "pkg-2.0-py3-none-any.whl" in part.split('"')[1])
    pipped = run([sys.executable, "-m", "pip", "download", "--no-cache-dir", "--no-deps",
                  "--dest", tmp_path / "dl", f"pkg @ {held_url}"], home=tmp_path)
    assert pipped.returncode != 0
    said = " ".join(pipped.stderr.split())
    assert "403" in said, pipped.stderr
    assert f"min_release_age of {index} holds it until" in said, pipped.stderr


def test_devpi_client_sets_rules_and_waivers_and_shows_the_403(served, tmp_path):
    server, api, index = served
    devpi = DevpiCLI.create(tmp_path)
    devpi("use", f"{server.url}/{index}")
    devpi("login", "root", "--password", "")
    shown = devpi("index", index, "min_release_age=3d", "policy_exempt=acme-*").stdout
    assert "min_release_age=3d" in shown
    assert "policy_exempt=acme-*" in shown
    refused = devpi("getjson", f"/{index}/pkg/2.0", code=1).out
    assert "403 Forbidden: pkg 2.0 was uploaded" in refused
    assert f"min_release_age of {index} holds it until" in refused
    bad = devpi("index", index, "min_release_age=soon", code=1).out
    assert "400 Bad Request: min_release_age: expected a duration" in bad
    waived = devpi("index", index, "waivers+=pkg==2.0").stdout
    assert "waivers=pkg==2.0" in waived
    assert "min_release_age=3d" in waived  # the failed change stored nothing, the rule stays
    page = api.get(f"{index}/+simple/pkg/",
                   headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert page["versions"] == ["1.0", "2.0"]  # the waiver lets 2.0 through
