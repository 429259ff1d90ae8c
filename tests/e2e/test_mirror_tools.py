"""pip and uv through a real ``devpi-core serve`` whose stage has ``bases: root/fake``, a mirror of
a fake upstream in this process: installs, the cache, restarts with the upstream gone, offline mode.

Every subprocess runs with :func:`clean_env` and explicit index URLs; the fake upstream records
what reached it, so "served from the cache" is checked, not assumed.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import requests

from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel
from devpi_core.testing.plugin import bin_path, clean_env

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e
TIMEOUT = 180
CONFIG = {"plugins": {"mirror": {"init_root_pypi": False, "timeout": 2, "file_timeout": 2}}}


def run(args, *, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        env=clean_env(home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def setup_indexes(url: str, upstream_url: str, **mirror: object) -> requests.Session:
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    token = session.post(f"{url}/+login", json={"user": "root", "password": ""}).json()["result"][
        "password"
    ]
    session.auth = ("root", token)
    response = session.put(
        f"{url}/root/fake", json={"type": "mirror", "mirror_url": upstream_url, **mirror}
    )
    assert response.status_code == 200, response.text
    assert session.put(f"{url}/root/dev", json={"bases": "root/fake"}).status_code == 200
    return session


@pytest.fixture
def published(fake_upstream):
    """dep 1.0 (wheel + sdist) and a 2 MB wheel 'big' on the fake upstream."""
    dep = make_wheel(DistSpec("dep", "1.0", module_code="VALUE = 'dep from upstream'\n"))
    fake_upstream.add("dep", dep)
    fake_upstream.add("dep", make_sdist(DistSpec("dep", "1.0")))
    fake_upstream.add("big", make_wheel(DistSpec("big", "1.0"), padding=2 << 20))
    return fake_upstream


@pytest.mark.pkgcheck  # the built wheel holds the mirror plugin and the fake upstream
def test_pip_and_uv_install_own_upload_with_upstream_dependency(devpi_server, published, tmp_path):
    server = devpi_server(CONFIG)
    session = setup_indexes(server.url, published.url)
    app = make_wheel(DistSpec("app", "1.0", requires_dist=["dep"], module_code="VALUE = 'app'\n"))
    response = session.post(
        f"{server.url}/root/dev/",
        data={":action": "file_upload", "name": "app", "version": "1.0"},
        files={"content": (app.filename, app.content)},
    )
    assert response.status_code == 200, response.text
    simple = f"{server.url}/root/dev/+simple/"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--index-url",
            simple,
            "--target",
            tmp_path / "pip",
            "app",
        ],
        home=tmp_path,
    )
    assert (tmp_path / "pip" / "dep" / "__init__.py").read_text() == "VALUE = 'dep from upstream'\n"
    assert (tmp_path / "pip" / "app" / "__init__.py").exists()
    run(
        [
            bin_path("uv"),
            "pip",
            "install",
            "--no-cache",
            "--index-url",
            simple,
            "--python",
            sys.executable,
            "--target",
            tmp_path / "uv",
            "app",
        ],
        home=tmp_path,
    )
    assert (tmp_path / "uv" / "dep" / "__init__.py").exists()
    assert published.count("/simple/app/") == 0  # a private name never goes upstream
    fetched = sorted(r.path.rsplit("/", 1)[-1] for r in published.seen("/files/"))
    # once each for both installers: the PEP 658 metadata first, then the wheel
    assert fetched == ["dep-1.0-py3-none-any.whl", "dep-1.0-py3-none-any.whl.metadata"]


def download(
    url: str, dest: Path, *projects: str, home: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-cache-dir",
            "--only-binary=:all:",
            "--index-url",
            f"{url}/root/dev/+simple/",
            "-d",
            dest,
            *projects,
        ],
        home=home,
        check=check,
    )


def test_second_download_is_served_from_the_cache(devpi_server, published, tmp_path):
    server = devpi_server(CONFIG)
    setup_indexes(server.url, published.url)
    download(server.url, tmp_path / "one", "dep", "big", home=tmp_path)
    published.clear()
    download(server.url, tmp_path / "two", "dep", "big", home=tmp_path)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "big-1.0-py3-none-any.whl",
        "dep-1.0-py3-none-any.whl",
    ]
    assert published.count() == 0


def test_restart_with_upstream_down_installs_everything_cached(devpi_server, published, tmp_path):
    server = devpi_server(CONFIG)
    setup_indexes(server.url, published.url, mirror_cache_expiry=0)
    download(server.url, tmp_path / "one", "dep", "big", home=tmp_path)
    serverdir = server.serverdir
    server.stop()
    published.stop()
    again = devpi_server(CONFIG, serverdir=serverdir)
    download(again.url, tmp_path / "two", "dep", "big", home=tmp_path)
    assert len(list((tmp_path / "two").iterdir())) == 2
    # logged before the page went out, but this process reads the server's output on a
    # thread of its own, which may not have the line yet when pip is done: wait for it
    again.wait_for("serving the cached page")
    missing = download(again.url, tmp_path / "three", "other", home=tmp_path, check=False)
    assert missing.returncode != 0


def test_offline_mode_serves_only_the_cache_and_never_calls_out(devpi_server, published, tmp_path):
    server = devpi_server(CONFIG)
    setup_indexes(server.url, published.url, mirror_cache_expiry=0)
    download(server.url, tmp_path / "one", "dep", home=tmp_path)
    serverdir = server.serverdir
    server.stop()
    published.clear()
    offline = devpi_server(CONFIG, "--offline-mode", serverdir=serverdir)
    download(offline.url, tmp_path / "two", "dep", home=tmp_path)
    page = requests.get(
        f"{offline.url}/root/fake/+simple/dep/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=10,
    ).json()
    assert [f["filename"] for f in page["files"]] == [
        "dep-1.0-py3-none-any.whl"
    ]  # the sdist is not cached
    assert (
        download(offline.url, tmp_path / "three", "big", home=tmp_path, check=False).returncode != 0
    )
    assert published.count() == 0
