"""One smoke test against the real public index through root/pypi (skipped when unreachable)."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

import pytest
import requests
from devpi_core_mirror.settings import default_upstream_url

from devpi_core.outbound import denied_reason, parse_address, system_resolver
from devpi_core.testing.plugin import clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.internet]


def test_pip_download_through_root_pypi(devpi_server, tmp_path):
    upstream = default_upstream_url()
    try:
        requests.head(upstream, timeout=5)
    except requests.RequestException:
        pytest.skip("the public index is unreachable")
    server = devpi_server(
        {
            "server": {"outbound_allow": ["127.0.0.0/8", *_intercepted(upstream)]},
            "plugins": {"mirror": {"timeout": 20}},
        }
    )
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


def _intercepted(url: str) -> list[str]:
    """Non-public addresses the public index answers on here: behind an intercepting proxy (a
    sandbox's, a company's) the administrator allows them with server.outbound_allow, as here."""
    host = urlsplit(url).hostname or ""
    found = system_resolver(host, 443)
    addresses = [parse_address(text) for text in found]
    return [str(a) for a in addresses if a is not None and denied_reason(a) is not None]
