"""The server runs with a bundled plugin switched off (``plugins: {disabled: [...]}``).

- without ``stages``: a pure mirror; pip installs through root/pypi from a fake upstream;
- without ``mirror``: a private index only; an upload installs with pip, no root/pypi exists;
- without ``webui``: the JSON API and the simple pages work, browsers get JSON or plain text.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
from cli_run import login, upload

from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import clean_env

pytestmark = pytest.mark.e2e
JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def pip_install(index_url, project, target, home):
    result = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps",
            "--index-url", index_url, "--target", str(target), project,
        ],
        env=clean_env(home),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def plugins_of(url):
    return requests.get(f"{url}/+status", headers=JSON, timeout=10).json()["result"]["plugins"]


def test_mirror_only_without_stages(devpi_server, fake_upstream, tmp_path):
    fake_upstream.add("mirrored", make_wheel(DistSpec("mirrored", "1.0", module_code="X = 1\n")))
    server = devpi_server(
        {"plugins": {"disabled": ["stages"], "mirror": {"default_url": fake_upstream.url}}}
    )
    assert "stages" not in plugins_of(server.url)
    pip_install(f"{server.url}/root/pypi/+simple/", "mirrored", tmp_path / "t", tmp_path)
    assert (tmp_path / "t" / "mirrored" / "__init__.py").read_text() == "X = 1\n"
    assert fake_upstream.count("/simple/mirrored/") >= 1  # it came through the mirror
    # no stage type, so nothing takes uploads
    token = login(server.url, "root", "")
    refused = upload(server.url, "root/pypi", ("root", token), make_wheel(DistSpec("x", "1.0")))
    assert refused.status_code in (404, 405), refused.text
    created = requests.put(f"{server.url}/root/dev", json={"type": "stage"},
                           auth=("root", token), headers=JSON, timeout=10)
    assert created.status_code == 400
    assert "unknown index type 'stage'" in created.json()["message"]


def test_stages_only_without_mirror(devpi_server, tmp_path):
    server = devpi_server({"plugins": {"disabled": ["mirror"]}})
    assert "mirror" not in plugins_of(server.url)
    assert requests.get(f"{server.url}/root/pypi/+simple/", timeout=10).status_code == 404
    token = login(server.url, "root", "")
    auth = ("root", token)
    assert requests.put(f"{server.url}/root/dev", json={}, auth=auth, headers=JSON,
                        timeout=10).status_code == 200
    wheel = make_wheel(DistSpec("private-pkg", "1.0", module_code="Y = 2\n"))
    assert upload(server.url, "root/dev", auth, wheel).status_code == 200
    pip_install(f"{server.url}/root/dev/+simple/", "private-pkg", tmp_path / "t", tmp_path)
    assert (tmp_path / "t" / "private_pkg" / "__init__.py").read_text() == "Y = 2\n"
    mirror = requests.put(f"{server.url}/root/m", json={"type": "mirror"}, auth=auth,
                          headers=JSON, timeout=10)
    assert mirror.status_code == 400
    assert "unknown index type 'mirror'" in mirror.json()["message"]


def test_no_webui(devpi_server, tmp_path):
    server = devpi_server({"plugins": {"disabled": ["webui"], "mirror": {"init_root_pypi": False}}})
    url = server.url
    assert "webui" not in plugins_of(url)
    token = login(url, "root", "")
    auth = ("root", token)
    assert requests.put(f"{url}/root/dev", json={}, auth=auth, headers=JSON,
                        timeout=10).status_code == 200
    wheel = make_wheel(DistSpec("plain-pkg", "1.0"))
    assert upload(url, "root/dev", auth, wheel).status_code == 200
    # the JSON API and the simple pages (PEP 503 HTML and PEP 691 JSON) work as ever
    assert requests.get(f"{url}/root/dev/plain-pkg/1.0", headers=JSON,
                        timeout=10).json()["result"]["+links"]
    page = requests.get(f"{url}/root/dev/+simple/plain-pkg/", timeout=10)
    assert page.status_code == 200
    assert wheel.filename in page.text
    pip_install(f"{url}/root/dev/+simple/", "plain-pkg", tmp_path / "t", tmp_path)
    # a browser gets JSON for pages and plain text for errors, never a 500 or an empty page
    home = requests.get(f"{url}/", headers=BROWSER, timeout=10)
    assert home.status_code == 200
    assert home.headers["Content-Type"].startswith("application/json")
    assert "root" in home.json()["result"]
    version = requests.get(f"{url}/root/dev/plain-pkg/1.0", headers=BROWSER, timeout=10)
    assert version.status_code == 200
    assert version.headers["Content-Type"].startswith("application/json")
    missing = requests.get(f"{url}/root/dev/plain-pkg/9.9", headers=BROWSER, timeout=10)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("text/plain")
    assert "9.9" in missing.text
    # devpi answers project JSON only to JSON clients: the browser is told so, in plain text
    project = requests.get(f"{url}/root/dev/plain-pkg", headers=BROWSER, timeout=10)
    assert project.status_code == 415
    assert project.headers["Content-Type"].startswith("text/plain")
    assert "Accept: application/json" in project.text
    # the webui's own pages are gone, not broken
    assert requests.get(f"{url}/+search?query=plain", headers=BROWSER,
                        timeout=10).status_code == 404
