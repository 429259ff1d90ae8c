"""The server directory: identity, secret file, scratch space left by dead processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from devpi_core.errors import StartupError
from devpi_core.serverdir import SECRET_BYTES, create, is_initialised, open_serverdir


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_create_writes_identity_and_a_private_secret(tmp_path):
    path = str(tmp_path / "sd")
    serverdir = create(path)
    assert is_initialised(path)
    assert mode(os.path.join(path, ".secret")) == 0o600
    assert mode(path) == 0o700
    assert len(serverdir.secret) == SECRET_BYTES
    info = json.loads((tmp_path / "sd" / ".nodeinfo").read_text())
    assert info == {"uuid": serverdir.uuid, "format": 1}
    assert not [name for name in os.listdir(path) if ".tmp-" in name]


def test_reopening_keeps_uuid_and_secret(tmp_path):
    first = create(str(tmp_path))
    again = open_serverdir(str(tmp_path))
    assert (again.uuid, again.secret) == (first.uuid, first.secret)


def test_two_server_dirs_differ(tmp_path):
    one, two = create(str(tmp_path / "a")), create(str(tmp_path / "b"))
    assert one.uuid != two.uuid
    assert one.secret != two.secret


def test_create_refuses_a_directory_with_other_content(tmp_path):
    for name in ("notes.txt", "photos", ".bashrc", "x"):
        (tmp_path / name).write_text("")
    expected = r"is not empty \(\.bashrc, notes\.txt, photos, \.\.\.\) and"
    with pytest.raises(StartupError, match=expected):
        create(str(tmp_path))
    assert not (tmp_path / ".secret").exists()


def test_create_accepts_a_prepared_configuration(tmp_path):
    (tmp_path / "devpi-core.yml").write_text("server:\n  port: 4000\n")
    (tmp_path / "lost+found").mkdir()
    create(str(tmp_path))
    assert is_initialised(str(tmp_path))
    assert (tmp_path / "devpi-core.yml").read_text() == "server:\n  port: 4000\n"


def test_create_refuses_an_initialised_dir(tmp_path):
    create(str(tmp_path))
    with pytest.raises(StartupError, match="already initialised"):
        create(str(tmp_path))


def test_open_refuses_an_empty_dir_and_says_what_to_run(tmp_path):
    with pytest.raises(StartupError, match="run 'devpi-core init --serverdir"):
        open_serverdir(str(tmp_path))


def test_open_refuses_another_data_format(tmp_path):
    create(str(tmp_path))
    (tmp_path / ".nodeinfo").write_text(json.dumps({"uuid": "x", "format": 99}))
    with pytest.raises(StartupError, match="holds data format 99"):
        open_serverdir(str(tmp_path))


def test_open_refuses_a_truncated_secret(tmp_path):
    create(str(tmp_path))
    (tmp_path / ".secret").write_bytes(b"short")
    with pytest.raises(StartupError, match="too short"):
        open_serverdir(str(tmp_path))


def test_open_tightens_a_loose_secret_file(tmp_path):
    create(str(tmp_path))
    os.chmod(tmp_path / ".secret", 0o644)
    open_serverdir(str(tmp_path))
    assert mode(tmp_path / ".secret") == 0o600


def test_create_below_a_file_says_to_choose_another_dir(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StartupError, match=r"cannot initialise .*choose a writable --serverdir"):
        create(str(tmp_path / "file" / "sd"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_open_refuses_a_read_only_dir(tmp_path):
    create(str(tmp_path / "sd"))
    os.chmod(tmp_path / "sd", 0o500)
    try:
        with pytest.raises(StartupError, match="not writable"):
            open_serverdir(str(tmp_path / "sd"))
    finally:
        os.chmod(tmp_path / "sd", 0o700)


def test_scratch_space_of_dead_processes_is_removed(tmp_path):
    create(str(tmp_path))
    # A process that has exited: its pid is free, its scratch directory an orphan.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    orphan = tmp_path / "+tmp" / f"p{dead.stdout.strip()}"
    orphan.mkdir(parents=True)
    (orphan / "blob-half-written").write_bytes(b"x" * 100)
    stray = tmp_path / "+tmp" / "not-a-pid-dir"
    stray.mkdir()
    alive = tmp_path / "+tmp" / "p1"  # pid 1 always runs
    alive.mkdir()
    serverdir = open_serverdir(str(tmp_path))
    assert not orphan.exists()
    assert not stray.exists()
    assert alive.exists()
    assert os.path.isdir(serverdir.tmpdir)
    assert os.listdir(serverdir.tmpdir) == []
