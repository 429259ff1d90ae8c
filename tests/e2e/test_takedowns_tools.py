"""Upstream takedowns through a real server with real pip and uv: a file removed upstream and a
quarantined project (PEP 792), then ``devpi-core quarantined`` (in this process, on the stopped
server's directory) listing the kept blobs.

The mirror revalidates every page (``mirror_cache_expiry=0``), the existing refresh mechanism;
nothing waits for time to pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from devpi_core.cli import main
from devpi_core.testing.contracts import wait_until
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import bin_path, clean_env

pytestmark = pytest.mark.e2e
TIMEOUT = 180
CONFIG = {"plugins": {"mirror": {"init_root_pypi": False, "timeout": 2, "file_timeout": 2}}}
PEP691 = "application/vnd.pypi.simple.v1+json"


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


def pip_download(simple: str, dest: Path, *reqs: str, home: Path, check: bool = True):
    return run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
         "--index-url", simple, "-d", dest, *reqs],
        home=home,
        check=check,
    )


def uv_install(simple: str, target: Path, req: str, *, home: Path, check: bool = True):
    return run(
        [bin_path("uv"), "pip", "install", "--no-cache", "--index-url", simple,
         "--python", sys.executable, "--target", target, req],
        home=home,
        check=check,
    )


def setup_indexes(url: str, upstream_url: str) -> None:
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    login = session.post(f"{url}/+login", json={"user": "root", "password": ""}, timeout=10)
    session.auth = ("root", login.json()["result"]["password"])
    mirror = {"type": "mirror", "mirror_url": upstream_url, "mirror_cache_expiry": 0}
    assert session.put(f"{url}/root/fake", json=mirror, timeout=10).status_code == 200
    assert session.put(f"{url}/root/dev", json={"bases": "root/fake"}, timeout=10).ok


def wait_cached(url: str, count: int, timeout: float = 30) -> None:
    """Wait until the server stored ``count`` downloaded files. A fill records its file only
    after the last byte went out, so a client can have the whole file before it is cached
    (and a page refresh marks only the files recorded by then as removed upstream)."""

    def cached() -> float:
        status = requests.get(f"{url}/+status", headers={"Accept": "application/json"},
                              timeout=10)
        metrics = {name: value for name, _kind, value in status.json()["result"]["metrics"]}
        return float(metrics["devpi_mirror_files_cached"])

    wait_until(lambda: cached() >= count, timeout)


def test_pip_and_uv_see_removed_files_and_quarantine(
    devpi_server, fake_upstream, tmp_path, capsys
):
    old = make_wheel(DistSpec("dep", "1.0"))
    new = make_wheel(DistSpec("dep", "1.1"))
    fake_upstream.add("dep", old)
    fake_upstream.add("dep", new)
    server = devpi_server(CONFIG)
    setup_indexes(server.url, fake_upstream.url)
    simple = f"{server.url}/root/dev/+simple/"
    page = requests.get(f"{simple}dep/", headers={"Accept": PEP691}, timeout=10).json()
    urls = {f["filename"]: urljoin(f"{simple}dep/", f["url"]) for f in page["files"]}
    for url in urls.values():  # both cached, as an earlier install would have left them
        assert requests.get(url, timeout=10).status_code == 200
    wait_cached(server.url, 2)

    # 1.1 disappears upstream: resolvers fall back to 1.0, a locked URL gets 410
    fake_upstream.remove_file("dep", new.filename)
    pip_download(simple, tmp_path / "pip", "dep", home=tmp_path)
    assert [p.name for p in (tmp_path / "pip").iterdir()] == [old.filename]
    uv_install(simple, tmp_path / "uv", "dep", home=tmp_path)
    assert (tmp_path / "uv" / "dep-1.0.dist-info").is_dir()
    pinned = uv_install(
        simple, tmp_path / "pinned", f"dep @ {urls[new.filename]}", home=tmp_path, check=False
    )
    assert pinned.returncode != 0
    assert "410" in pinned.stdout + pinned.stderr

    # the upstream quarantines the project: nothing to install, by name or by URL
    fake_upstream.set_status("dep", "quarantined", "malware")
    refused = uv_install(simple, tmp_path / "uv2", "dep", home=tmp_path, check=False)
    assert refused.returncode != 0
    assert not (tmp_path / "uv2" / "dep-1.0.dist-info").exists()
    page = requests.get(f"{simple}dep/", headers={"Accept": PEP691}, timeout=10).json()
    assert page["project-status"] == {"status": "quarantined", "reason": "malware"}
    assert page["files"] == []
    cached_old = requests.get(urls[old.filename], timeout=10)
    assert cached_old.status_code == 410
    assert "malware" in cached_old.text

    # the kept blobs, listed for forensics
    server.stop()
    assert main(["quarantined", "--json", "--serverdir", str(server.serverdir),
                 "--config", str(server.config)]) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {e["filename"]: e for e in entries}
    assert by_name[new.filename]["sha256"] == new.sha256
    assert by_name[old.filename]["sha256"] == old.sha256
    assert {e["index"] for e in entries} == {"root/fake"}
    assert "malware" in by_name[old.filename]["reason"]
    for entry in entries:
        assert Path(entry["blob"]).is_file()
