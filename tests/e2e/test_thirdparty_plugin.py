"""A third-party plugin: ``pip install`` it beside devpi-core, enable it in YAML, see it work.

The plugin is ``tests/e2e/data/devpi-core-hello`` (also the example of the plugin author's guide):
its own distribution with an entry point in the ``devpi_core`` group, a view (``GET /+hello``),
a configuration section and an index type (``group``). It is installed with pip into a fresh
virtual environment that sees this devpi-core installation through a ``.pth`` file, so the test
needs no network and leaves the test environment untouched; the server runs from that
environment as ``python -m devpi_core serve``.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import requests
from cli_run import login, upload
from plugin_venv import venv_with_plugin

from devpi_core.plugins import available_entrypoints
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import clean_env

pytestmark = pytest.mark.e2e
PLUGIN_SOURCE = Path(__file__).parent / "data" / "devpi-core-hello"
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory) -> str:
    """The python of a venv holding devpi-core-hello, and (via .pth) this devpi-core."""
    return venv_with_plugin(tmp_path_factory.mktemp("thirdparty"), PLUGIN_SOURCE)


def serve_with(devpi_server, plugin_python, config, serverdir=None):
    return devpi_server(config, serverdir=serverdir, command=[plugin_python, "-m", "devpi_core"])


def test_the_plugin_is_only_in_its_own_environment(plugin_python):
    assert "hello" not in available_entrypoints()  # the test environment is untouched
    listed = subprocess.run(
        [plugin_python, "-m", "devpi_core", "plugins", "--config", "/dev/null"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "hello (" not in listed.stdout  # installed, but off until enabled


@pytest.mark.pkgcheck
def test_enabled_plugin_adds_a_view_settings_and_an_index_type(
    devpi_server, plugin_python, tmp_path
):
    config = {"plugins": {"enabled": ["hello"], "hello": {"greeting": "Hi from YAML"}}}
    server = serve_with(devpi_server, plugin_python, config)
    url = server.url
    token = login(url, "root", "")
    auth = {"X-Devpi-Auth": base64.b64encode(f"root:{token}".encode()).decode(), **JSON}

    hello = requests.get(f"{url}/+hello", headers=JSON, timeout=10)
    assert hello.status_code == 200
    assert hello.json() == {"type": "hello", "result": {"greeting": "Hi from YAML", "groups": []}}
    assert hello.headers["X-DEVPI-API-VERSION"] == "2"  # core's tweens wrap plugin views too

    status = requests.get(f"{url}/+status", timeout=10).json()["result"]
    assert status["versioninfo"]["devpi-core-hello"] == "1.0"
    assert "hello" in status["plugins"]

    assert requests.put(f"{url}/root/dev", json={}, headers=auth, timeout=10).status_code == 200
    wheel = make_wheel(DistSpec("in-a-group", "1.0"))
    assert upload(url, "root/dev", ("root", token), wheel).status_code == 200
    group = requests.put(
        f"{url}/root/all", json={"type": "group", "bases": "root/dev"}, headers=auth, timeout=10
    )
    assert group.status_code == 200, group.text
    assert group.json()["result"]["bases"] == ["root/dev"]

    page = requests.get(f"{url}/root/all/+simple/in-a-group/", timeout=10)
    assert page.status_code == 200
    assert wheel.filename in page.text
    assert requests.get(f"{url}/+hello", timeout=10).json()["result"]["groups"] == ["root/all"]
    refused = upload(url, "root/all", ("root", token), make_wheel(DistSpec("direct", "1.0")))
    assert refused.status_code == 404
    assert "group" in refused.reason

    listed = subprocess.run(
        [plugin_python, "-m", "devpi_core", "plugins", "--config", str(server.config)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert "hello (devpi-core-hello 1.0): devpi_core_hello" in listed.stdout
    assert "devpi_config_sections, devpi_index_types, devpi_pyramid_includes" in listed.stdout
    assert 'plugins.hello.greeting = "Hello from a devpi-core plugin"' in listed.stdout

    # turned off again (its settings may stay in the file): the view and the type are gone
    server.stop()
    off = serve_with(
        devpi_server,
        plugin_python,
        {"plugins": {"disabled": ["hello"], "hello": {"greeting": "kept"}}},
        serverdir=server.serverdir,
    )
    assert requests.get(f"{off.url}/+hello", headers=JSON, timeout=10).status_code == 404
    gone = requests.get(f"{off.url}/root/all/+simple/in-a-group/", headers=JSON, timeout=10)
    assert gone.status_code == 404
    assert "whose plugin is not enabled" in gone.json()["message"]
    token = login(off.url, "root", "")
    auth = {"X-Devpi-Auth": base64.b64encode(f"root:{token}".encode()).decode(), **JSON}
    again = requests.put(f"{off.url}/root/other", json={"type": "group"}, headers=auth, timeout=10)
    assert again.status_code == 400
    assert "unknown index type 'group'" in again.json()["message"]
    assert (
        "devpi-core-hello"
        not in requests.get(f"{off.url}/+status", timeout=10).json()["result"]["versioninfo"]
    )


def test_a_typo_in_the_plugins_settings_is_reported(plugin_python, tmp_path):
    config = tmp_path / "c.yml"
    config.write_text("plugins:\n  enabled: [hello]\n  hello:\n    greting: hi\n")
    result = subprocess.run(
        [plugin_python, "-m", "devpi_core", "check-config", str(config)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"{config}:4: plugins.hello.greting: unknown key; did you mean 'greeting'?"
    )
