"""One smoke test against the real public index through root/pypi (skipped when unreachable)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
from devpi_core_mirror.settings import default_upstream_url

from devpi_core.testing.plugin import clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.internet]


def test_pip_download_through_root_pypi(devpi_server, tmp_path):
    upstream = default_upstream_url()
    try:
        requests.head(upstream, timeout=5)
    except requests.RequestException:
        pytest.skip("the public index is unreachable")
    server = devpi_server({"plugins": {"mirror": {"timeout": 20}}})
    args = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-cache-dir",
        "--only-binary=:all:",
        "--index-url",
        f"{server.url}/root/pypi/+simple/",
        "-d",
        str(tmp_path / "dl"),
        "packaging",
    ]
    for _ in range(2):  # the second round comes from the cache
        result = subprocess.run(
            args, env=clean_env(tmp_path), capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
    assert any(p.name.startswith("packaging-") for p in (tmp_path / "dl").iterdir())
    page = requests.get(
        f"{server.url}/root/pypi/+simple/packaging/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=30,
    ).json()
    assert all(f["hashes"].get("sha256") for f in page["files"])
    assert any(f.get("upload-time") for f in page["files"])
