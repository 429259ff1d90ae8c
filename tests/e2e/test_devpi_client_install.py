"""devpi-client against devpi-core with root/pypi: install, test, refresh, use --set-cfg.

root/pypi mirrors a fake upstream index (:class:`~devpi_core.testing.upstream.FakeUpstream`)
on 127.0.0.1, so dependencies, setuptools for tox's build and refreshed pages come through the
mirror exactly as they would from the public index, without the network.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devpi_core.testing.devpiclient import (
    DevpiCLI,
    build_dists,
    running_server,
    setup_user,
    write_project,
)
from devpi_core.testing.dists import Dist, DistSpec, make_wheel
from devpi_core.testing.plugin import bin_path, clean_env
from devpi_core.testing.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


def _embedded_setuptools() -> Dist:
    """The setuptools wheel virtualenv ships (tox builds sdists with it)."""
    import virtualenv  # noqa: PLC0415 - a dependency of tox, located only here

    embed = Path(virtualenv.__file__).parent / "seed" / "wheels" / "embed"
    wheel = sorted(embed.glob("setuptools-*-py3-none-any.whl"))[-1]
    return Dist(wheel.name, wheel.read_bytes())


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream() as fake:
        fake.add("dep-lib", make_wheel(DistSpec("dep-lib", "1.0", module_code="ANSWER = 42\n")))
        fake.add("setuptools", _embedded_setuptools())
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory, upstream):
    config = {"plugins": {"mirror": {"default_url": upstream.url}}}
    with running_server(tmp_path_factory.mktemp("devpi-core"), config) as process:
        yield process


@pytest.fixture
def user(server, devpi):
    return setup_user(devpi, server.url, bases="root/pypi")


def _venv(path: Path) -> Path:
    """A virtualenv with pip (seeded offline by virtualenv) and nothing else."""
    subprocess.run(
        [
            bin_path("virtualenv"),
            "--no-setuptools",
            "--no-wheel",
            "--no-periodic-update",
            str(path),
        ],
        env=clean_env(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    return path


def _python(venv: Path, code: str) -> str:
    completed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return completed.stdout.strip()


def test_root_pypi_is_a_mirror(server, devpi, api):
    config = api.result("root/pypi")
    assert config["type"] == "mirror"
    devpi("use", f"{server.url}/root/pypi")
    # a mirror has no upload URL: devpi refuses to upload there
    result = devpi("upload", str(Path(__file__)), code=1)
    assert "does not support upload" in result.out
    assert "Most likely, it is a mirror." in result.out


def test_install_with_dependency_from_root_pypi(user, devpi, upstream, tmp_path):
    app = make_wheel(DistSpec("app-pkg", "1.0", requires_dist=["dep-lib>=1.0"]))
    devpi("upload", str(app.write(tmp_path)))
    venv = _venv(tmp_path / "venv")
    before = upstream.count("/simple/dep-lib/")
    result = devpi("install", "--venv", str(venv), "app-pkg", timeout=180)
    assert "Successfully installed app-pkg-1.0 dep-lib-1.0" in result.out
    assert (
        _python(venv, "import app_pkg, dep_lib; print(app_pkg.__version__, dep_lib.ANSWER)")
        == "1.0 42"
    )
    # the dependency came through root/pypi; app-pkg is private and never asked upstream
    assert upstream.count("/simple/dep-lib/") > before
    assert upstream.count("/simple/app-pkg/") == 0
    listed = devpi("install", "--venv", str(venv), "-l")
    assert "app-pkg" in listed.out
    assert "dep-lib" in listed.out


def test_set_cfg_makes_plain_pip_use_the_index(user, devpi, tmp_path):
    devpi("upload", str(make_wheel(DistSpec("cfg-pkg", "2.0")).write(tmp_path)))
    pip_conf = devpi.home / ".config" / "pip" / "pip.conf"
    devpi("use", "--set-cfg", user.fullindex, env={"PIP_CONFIG_FILE": str(pip_conf)})
    venv = _venv(tmp_path / "venv")
    completed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-cache-dir", "cfg-pkg", "dep-lib"],
        env=clean_env(PIP_CONFIG_FILE=str(pip_conf)),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"Looking in indexes: {user.url}/{user.fullindex}/+simple/" in completed.stdout
    assert "Successfully installed cfg-pkg-2.0 dep-lib-1.0" in completed.stdout


def test_refresh_fetches_new_upstream_release(user, devpi, upstream, api):
    upstream.add("fresh-lib", make_wheel(DistSpec("fresh-lib", "1.0")))
    page = api.get(
        "root/pypi/+simple/fresh-lib/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    assert [f["filename"] for f in page.json()["files"]] == ["fresh_lib-1.0-py3-none-any.whl"]
    upstream.add("fresh-lib", make_wheel(DistSpec("fresh-lib", "1.1")))
    result = devpi("refresh", "fresh-lib")
    assert "Refreshed fresh-lib" in result.out
    assert "Couldn't refresh" not in result.out
    page = api.get(
        f"{user.fullindex}/+simple/fresh-lib/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    assert sorted(f["filename"] for f in page.json()["files"]) == [
        "fresh_lib-1.0-py3-none-any.whl",
        "fresh_lib-1.1-py3-none-any.whl",
    ]
    assert "Refreshed fresh-lib" in devpi("refresh", "--index", "root/pypi", "fresh-lib").out


def test_devpi_test_runs_tox_and_uploads_result(user, devpi, api, tmp_path):
    project = write_project(
        tmp_path / "proj",
        "tested-pkg",
        "1.0",
        tox_command='python -c "import tested_pkg; print(tested_pkg.__version__)"',
    )
    sdist = next(p for p in build_dists(project, tmp_path / "dist") if p.name.endswith(".tar.gz"))
    devpi("upload", str(sdist))
    result = devpi("test", "tested-pkg", timeout=300)
    assert (
        f"received {user.url.replace('://', f'://{user.name}:****@')}/{user.fullindex}/+f/"
        in result.out
    )
    assert "congratulations :)" in result.out
    href = api.result(f"{user.fullindex}/tested-pkg/1.0")["+links"][0]["href"]
    assert f"posting tox result data to {href}" in result.out
    assert "success" in result.out
    links = api.result(f"{user.fullindex}/tested-pkg/1.0")["+links"]
    toxresult = next(link for link in links if link["rel"] == "toxresult")
    assert toxresult["for_href"] == href
    report = api.get(toxresult["href"], headers={"Accept": "*/*"}).json()
    assert report["testenvs"]["py"]["test"][0]["retcode"] == 0
    assert "tests passed" in devpi("list", "-t", "tested-pkg").out
    listed = devpi("test", "--list", "tested-pkg").out
    assert "would test:" in listed
    assert href in listed


def test_devpi_test_without_toxresult_permission(server, user, devpi, api, tmp_path):
    project = write_project(tmp_path / "proj", "guarded-pkg", "1.0", tox_command="python -c pass")
    # no packaging environments: only the upload of the result matters here
    (project / "tox.ini").write_text("[testenv]\nskip_install = true\ncommands = python -c pass\n")
    sdist = next(p for p in build_dists(project, tmp_path / "dist") if p.name.endswith(".tar.gz"))
    devpi("upload", str(sdist))
    devpi("index", "dev", f"acl_toxresult_upload={user.name}")
    anonymous = DevpiCLI.create(tmp_path / "anon")
    anonymous("use", f"{server.url}/{user.fullindex}")
    result = anonymous("test", "guarded-pkg", timeout=300, code=None)
    assert (
        "403 Forbidden: No permission to upload tox results. You can use the devpi test "
        in result.out
    )
    assert "--no-upload option to skip the upload." in result.out
    links = api.result(f"{user.fullindex}/guarded-pkg/1.0")["+links"]
    assert [link["rel"] for link in links] == ["releasefile"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX venv layout")
def test_install_missing_package_fails(user, devpi, tmp_path):
    venv = _venv(tmp_path / "venv")
    result = devpi("install", "--venv", str(venv), "no-such-package-anywhere", code=1, timeout=180)
    assert "No matching distribution found for no-such-package-anywhere" in result.out
