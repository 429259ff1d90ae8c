"""The upload gate with a real third-party plugin, real twine and real devpi-client.

``tests/e2e/data/devpi-core-license-gate`` (the gate example of docs/plugins.rst) is
pip-installed into its own environment, enabled as ``license_gate``, and refuses release files
whose metadata names no license: twine and ``devpi upload`` must show its message, nothing may
be stored, and licensed packages upload as before.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from plugin_venv import venv_with_plugin

from devpi_core.testing.devpiclient import DevpiCLI, ServerAPI, setup_user
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import bin_path, clean_env

pytestmark = pytest.mark.e2e
PLUGIN_SOURCE = Path(__file__).parent / "data" / "devpi-core-license-gate"
REFUSAL = "no license in its metadata; set License-Expression (PEP 639), License or a 'License ::'"


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """The python of a venv with the plugin installed (and, via .pth, this devpi-core)."""
    return venv_with_plugin(tmp_path_factory.mktemp("license-gate"), PLUGIN_SOURCE)


@pytest.fixture
def server(devpi_server, gated):
    return devpi_server(
        {"plugins": {"enabled": ["license_gate"]}}, command=[gated, "-m", "devpi_core"]
    )


@pytest.fixture
def user(server, tmp_path):
    return setup_user(DevpiCLI.create(tmp_path / "devpi"), server.url)


def twine_upload(url, user, path, home):
    return subprocess.run(
        [
            bin_path("twine"), "upload", "--non-interactive", "--disable-progress-bar",
            "--repository-url", f"{url}/{user.fullindex}/", "-u", user.name,
            "-p", user.password, str(path),
        ],
        env=clean_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def stored(user, project):
    api = ServerAPI(user.url)
    try:
        return api.status(f"{user.fullindex}/{project}")
    finally:
        api.close()


def test_twine_shows_the_refusal_and_a_licensed_wheel_uploads(server, user, tmp_path):
    bare = make_wheel(DistSpec("no-license", "1.0")).write(tmp_path)
    refused = twine_upload(server.url, user, bare, tmp_path)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output
    assert "400" in output
    assert REFUSAL in " ".join(output.split()), output
    assert stored(user, "no-license") == 404

    (tmp_path / "ok").mkdir()
    licensed = make_wheel(DistSpec("licensed", "1.0", extra_metadata=("License: MIT",)))
    accepted = twine_upload(server.url, user, licensed.write(tmp_path / "ok"), tmp_path)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert stored(user, "licensed") == 200


def test_devpi_upload_shows_the_refusal_and_a_classified_wheel_uploads(server, user, tmp_path):
    bare = make_wheel(DistSpec("no-license-cli", "1.0")).write(tmp_path)
    refused = user.devpi("upload", str(bare), code=None)
    assert refused.returncode != 0, refused
    assert "400" in refused.out
    assert REFUSAL in " ".join(refused.out.split()), refused
    assert stored(user, "no-license-cli") == 404

    (tmp_path / "ok").mkdir()
    spec = DistSpec(
        "classified", "1.0", extra_metadata=("Classifier: License :: OSI Approved :: MIT License",)
    )
    accepted = user.devpi("upload", str(make_wheel(spec).write(tmp_path / "ok")))
    assert "file_upload of classified-1.0-py3-none-any.whl" in accepted.out
    assert stored(user, "classified") == 200
