"""A third-party index type: ``constrained``, from a real plugin, through pip and uv.

``tests/e2e/data/devpi-core-constrained`` (the index type example of docs/plugins.rst) is
pip-installed into its own environment and enabled as ``constrained``. ``root/constrained`` has
``bases=root/stage,root/fake`` (a stage holding ``pkg`` 1.0, 1.5 and 2.0; a mirror of a fake
upstream holding ``evil-pkg`` and ``mirrored`` 1.0 and 2.0) and the constraints ``pkg<2``,
``evil-pkg`` (never) and ``mirrored>=1,<2``: pages, the project list and installers see only the
allowed versions, and a file of an excluded version is refused with a 403.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from plugin_venv import venv_with_plugin

from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import bin_path, clean_env

pytestmark = pytest.mark.e2e
PLUGIN_SOURCE = Path(__file__).parent / "data" / "devpi-core-constrained"
CONFIG = {
    "plugins": {
        "enabled": ["constrained"],
        "mirror": {"init_root_pypi": False, "timeout": 5, "file_timeout": 5},
    }
}
PEP691 = "application/vnd.pypi.simple.v1+json"
TIMEOUT = 180
PKG_VERSIONS = ("1.0", "1.5", "2.0")


@pytest.fixture(scope="module")
def python(tmp_path_factory):
    """The python of a venv with the plugin installed (and, via .pth, this devpi-core)."""
    return venv_with_plugin(tmp_path_factory.mktemp("constrained"), PLUGIN_SOURCE)


@dataclass
class World:
    url: str
    session: requests.Session
    wheels: dict[str, bytes]  # filename -> content, of root/stage

    def simple(self, index: str, project: str, fmt: str = PEP691) -> requests.Response:
        return self.session.get(
            f"{self.url}/{index}/+simple/{project}/", headers={"Accept": fmt}, timeout=30
        )


def wheel(name: str, version: str):
    return make_wheel(DistSpec(name, version, module_code=f"VALUE = {version!r}\n"))


@pytest.fixture
def world(devpi_server, python, fake_upstream):
    for version in ("1.0", "2.0"):
        fake_upstream.add("mirrored", wheel("mirrored", version))
    fake_upstream.add("evil-pkg", wheel("evil-pkg", "1.0"))
    server = devpi_server(CONFIG, command=[python, "-m", "devpi_core"])
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    login = session.post(f"{server.url}/+login", json={"user": "root", "password": ""})
    session.auth = ("root", login.json()["result"]["password"])
    for index, config in (
        ("fake", {"type": "mirror", "mirror_url": fake_upstream.url}),
        ("stage", {}),
        (
            "constrained",
            {
                "type": "constrained",
                "bases": "root/stage,root/fake",
                "constraints": "pkg<2,evil-pkg,mirrored>=1,<2",
            },
        ),
    ):
        response = session.put(f"{server.url}/root/{index}", json=config)
        assert response.status_code == 200, response.text
    wheels = {}
    for version in PKG_VERSIONS:
        dist = wheel("pkg", version)
        response = session.post(
            f"{server.url}/root/stage/",
            data={":action": "file_upload", "name": "pkg", "version": version},
            files={"content": (dist.filename, dist.content)},
        )
        assert response.status_code == 200, response.text
        wheels[dist.filename] = dist.content
    yield World(server.url, session, wheels)
    session.close()


def run(args, *, home: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        env=clean_env(home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def test_pages_and_project_list_show_only_allowed_versions(world):
    page = world.simple("root/constrained", "pkg")
    assert page.status_code == 200, page.text
    files = page.json()["files"]
    assert [f["filename"] for f in files] == [
        "pkg-1.0-py3-none-any.whl",
        "pkg-1.5-py3-none-any.whl",
    ]
    # the links point into the constrained index, and are served from there
    for entry in files:
        url = requests.compat.urljoin(page.url, entry["url"])
        assert "/root/constrained/" in url
        fetched = world.session.get(url, headers={"Accept": "*/*"}, timeout=30)
        assert fetched.status_code == 200
        assert fetched.content == world.wheels[entry["filename"]]
    html = world.simple("root/constrained", "pkg", fmt="text/html")
    assert html.status_code == 200
    assert "pkg-1.5-py3-none-any.whl" in html.text
    assert "pkg-2.0" not in html.text
    # the base serves every version; the constrained index leaves the excluded ones out
    assert len(world.simple("root/stage", "pkg").json()["files"]) == 3
    versions = world.session.get(f"{world.url}/root/constrained/pkg", timeout=30)
    assert sorted(versions.json()["result"]) == ["1.0", "1.5"]
    mirrored = world.simple("root/constrained", "mirrored").json()["files"]
    assert [f["filename"] for f in mirrored] == ["mirrored-1.0-py3-none-any.whl"]

    assert world.simple("root/fake", "evil-pkg").status_code == 200
    assert world.simple("root/constrained", "evil-pkg").status_code == 404
    assert world.simple("root/constrained", "evil-pkg", fmt="text/html").status_code == 404
    listing = world.session.get(
        f"{world.url}/root/constrained/+simple/", headers={"Accept": PEP691}, timeout=30
    )
    names = {project["name"] for project in listing.json()["projects"]}
    assert {"pkg", "mirrored"} <= names
    assert "evil-pkg" not in names


def test_a_file_of_an_excluded_version_is_refused(world):
    stage_files = world.simple("root/stage", "pkg").json()["files"]
    (excluded,) = [f for f in stage_files if f["filename"] == "pkg-2.0-py3-none-any.whl"]
    base_url = requests.compat.urljoin(f"{world.url}/root/stage/+simple/pkg/", excluded["url"])
    assert "/root/stage/" in base_url
    refused = world.session.get(base_url.replace("/root/stage/", "/root/constrained/"), timeout=30)
    assert refused.status_code == 403
    assert "excluded by its constraint pkg<2" in refused.json()["message"]


def test_pip_and_uv_get_the_newest_allowed_versions(world, tmp_path):
    simple = f"{world.url}/root/constrained/+simple/"
    run(
        [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
            "--only-binary=:all:", "--index-url", simple, "-d", tmp_path / "pip",
            "pkg", "mirrored",
        ],
        home=tmp_path,
    )
    assert sorted(p.name for p in (tmp_path / "pip").iterdir()) == [
        "mirrored-1.0-py3-none-any.whl",
        "pkg-1.5-py3-none-any.whl",
    ]
    run(
        [
            bin_path("uv"), "pip", "install", "--no-cache", "--index-url", simple,
            "--python", sys.executable, "--target", tmp_path / "uv", "pkg", "mirrored",
        ],
        home=tmp_path,
    )
    assert (tmp_path / "uv" / "pkg" / "__init__.py").read_text() == "VALUE = '1.5'\n"
    assert (tmp_path / "uv" / "mirrored" / "__init__.py").read_text() == "VALUE = '1.0'\n"


def test_bad_constraints_and_uploads_are_refused(world):
    bad = world.session.put(
        f"{world.url}/root/bad",
        json={"type": "constrained", "bases": "root/stage", "constraints": "pkg<<2"},
    )
    assert bad.status_code == 400
    assert "constraints: invalid requirement 'pkg<<2'" in bad.json()["message"]
    dist = wheel("pkg", "0.5")
    upload = world.session.post(
        f"{world.url}/root/constrained/",
        data={":action": "file_upload", "name": "pkg", "version": "0.5"},
        files={"content": (dist.filename, dist.content)},
    )
    assert upload.status_code == 404
    assert "cannot upload to root/constrained" in upload.json()["message"]


def test_two_constrained_indexes_based_on_each_other_leave_each_other_out(world):
    created = world.session.put(
        f"{world.url}/root/other",
        json={"type": "constrained", "bases": "root/constrained", "constraints": "pkg<1.5"},
    )
    assert created.status_code == 200, created.text
    assert [f["filename"] for f in world.simple("root/other", "pkg").json()["files"]] == [
        "pkg-1.0-py3-none-any.whl"
    ]
    changed = world.session.patch(f"{world.url}/root/constrained", json=["bases+=root/other"])
    assert changed.status_code == 200, changed.text
    # a base that leads back is left out (no endless asking); the rest still answers
    assert len(world.simple("root/constrained", "pkg").json()["files"]) == 2
    assert world.simple("root/other", "pkg").status_code == 404
