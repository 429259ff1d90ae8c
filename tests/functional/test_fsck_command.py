"""``devpi-core fsck`` on a server directory an app wrote: clean, then damaged, then repaired."""

from __future__ import annotations

import hashlib
import os
import signal
import time

import pytest

from devpi_core import cli, services
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import FAST_HASHING, write_config


@pytest.fixture(autouse=True)
def _keep_sigterm_handler():
    saved = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, saved)


@pytest.fixture
def server(make_app, tmp_path):
    client = make_app()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")))
    serverdir = services.settings(client.app.app.registry).server.serverdir
    config = write_config(tmp_path / "c.yml", {"plugins": {"passwd": dict(FAST_HASHING)}})
    return serverdir, str(config)


def fsck(capsys, server, *extra):
    serverdir, config = server
    status = cli.main(["fsck", "--serverdir", serverdir, "--config", config, *extra])
    return status, capsys.readouterr().out.splitlines()


def blob_path(serverdir, data):
    sha256 = hashlib.sha256(data).hexdigest()
    return sha256, os.path.join(serverdir, "+blobs", sha256[:2], sha256[2:4], sha256)


def test_a_clean_server_passes(capsys, server):
    status, lines = fsck(capsys, server)
    assert status == 0, lines
    assert lines[-1].endswith("0 repaired, 0 problems")
    assert not lines[-1].startswith("0 references")


def test_a_missing_or_corrupt_file_fails(capsys, server):
    serverdir, _config = server
    wheel = make_wheel(DistSpec("pkg", "1.0"))
    sha256, path = blob_path(serverdir, wheel.content)
    assert os.path.exists(path)
    with open(path, "r+b") as f:
        f.write(b"X")
    status, lines = fsck(capsys, server)
    assert status == 1
    assert any(line.startswith(f"corrupt blob {sha256}") for line in lines), lines
    os.unlink(path)
    status, lines = fsck(capsys, server, "--repair")
    assert status == 1, "--repair never invents content"
    assert any(line.startswith(f"missing blob {sha256} (used by alice/dev/") for line in lines)


def test_orphans_past_the_grace_period_are_repaired(capsys, server):
    serverdir, _config = server
    young_sha, young = blob_path(serverdir, b"young orphan")
    old_sha, old = blob_path(serverdir, b"old orphan")
    for path, data in ((young, b"young orphan"), (old, b"old orphan")):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    status, lines = fsck(capsys, server)
    assert status == 1
    assert any(line.startswith(f"orphan blob {old_sha} (720") for line in lines), lines
    assert any(line.startswith(f"young orphan blob {young_sha}") for line in lines)
    status, lines = fsck(capsys, server, "--repair")
    assert status == 0, lines
    assert f"deleted orphan blob {old_sha}" in lines
    assert not os.path.exists(old)
    assert os.path.exists(young)
