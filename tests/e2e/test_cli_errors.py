"""What an operator sees when ``serve`` cannot start: one line that says what to do."""

from __future__ import annotations

import os
import socket

import pytest
from cli_run import FAST_HASHING, assert_one_line_error, devpi_core

pytestmark = pytest.mark.e2e


def test_bad_config_lists_every_problem_and_exits_2(tmp_path):
    config = tmp_path / "devpi-core.yml"
    config.write_text("server:\n  port: many\nlogging:\n  levl: DEBUG\n")
    result = devpi_core(
        "serve", "--serverdir", str(tmp_path / "sd"), "--config", str(config), home=tmp_path
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"{config}:2: server.port: expected integer, got 'many'",
        f"{config}:4: logging.levl: unknown key; did you mean 'level'?",
    ]
    assert not (tmp_path / "sd").exists()  # nothing was created


def test_config_in_the_server_dir_is_read_by_default(tmp_path):
    serverdir = tmp_path / "sd"
    serverdir.mkdir()
    (serverdir / "devpi-core.yml").write_text("server:\n  prot: 1\n")
    result = devpi_core("serve", "--serverdir", str(serverdir), home=tmp_path)
    assert_one_line_error(result, 2, f"{serverdir / 'devpi-core.yml'}:2: server.prot: unknown key")


def test_config_from_the_environment(tmp_path):
    config = tmp_path / "env.yml"
    config.write_text("storage:\n  metadata: postgres\n")
    result = devpi_core(
        "serve", "--serverdir", str(tmp_path / "sd"), home=tmp_path, DEVPI_CORE_CONFIG=str(config)
    )
    assert_one_line_error(
        result, 2, "storage.metadata: unknown backend 'postgres'; available: postgresql, sqlite"
    )


def test_server_dir_below_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    config = tmp_path / "c.yml"
    config.write_text(FAST_HASHING)
    result = devpi_core(
        "serve",
        "--serverdir",
        str(tmp_path / "file" / "sd"),
        "--config",
        str(config),
        home=tmp_path,
    )
    assert_one_line_error(result, 1, "cannot initialise", "choose a writable --serverdir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_server_dir(tmp_path):
    config = tmp_path / "c.yml"
    config.write_text(FAST_HASHING)
    serverdir = tmp_path / "sd"
    assert (
        devpi_core(
            "init", "--serverdir", str(serverdir), "--config", str(config), home=tmp_path
        ).returncode
        == 0
    )
    os.chmod(serverdir, 0o500)
    try:
        result = devpi_core(
            "serve", "--serverdir", str(serverdir), "--config", str(config), home=tmp_path
        )
    finally:
        os.chmod(serverdir, 0o700)
    assert_one_line_error(
        result, 1, "is not writable", "fix its permissions or choose another --serverdir"
    )


def test_unreadable_server_dir_contents(tmp_path):
    # a server directory whose identity file is garbage: say so, no traceback
    config = tmp_path / "c.yml"
    config.write_text(FAST_HASHING)
    serverdir = tmp_path / "sd"
    assert (
        devpi_core(
            "init", "--serverdir", str(serverdir), "--config", str(config), home=tmp_path
        ).returncode
        == 0
    )
    (serverdir / ".nodeinfo").write_text("{not json")
    result = devpi_core(
        "serve", "--serverdir", str(serverdir), "--config", str(config), home=tmp_path
    )
    assert_one_line_error(result, 1, f"cannot read {serverdir}")


def test_port_in_use(tmp_path):
    config = tmp_path / "c.yml"
    config.write_text(FAST_HASHING)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = devpi_core(
            "serve",
            "--serverdir",
            str(tmp_path / "sd"),
            "--config",
            str(config),
            "--port",
            str(port),
            home=tmp_path,
        )
    assert_one_line_error(
        result,
        1,
        f"port {port} on 127.0.0.1 is in use",
        "stop the other server or choose another --port",
    )


def test_address_that_is_not_ours(tmp_path):
    config = tmp_path / "c.yml"
    config.write_text(FAST_HASHING)
    result = devpi_core(
        "serve",
        "--serverdir",
        str(tmp_path / "sd"),
        "--config",
        str(config),
        "--host",
        "192.0.2.1",
        "--port",
        "0",
        home=tmp_path,
    )  # TEST-NET-1
    assert_one_line_error(
        result, 1, "cannot listen on 192.0.2.1:0", "choose another --host or --port"
    )


def test_unknown_command_and_bad_flag(tmp_path):
    result = devpi_core("serv", home=tmp_path)
    assert result.returncode == 2
    assert "invalid choice: 'serv'" in result.stderr
    result = devpi_core("serve", "--port", "eighty", home=tmp_path)
    assert result.returncode == 2
    assert "invalid int value: 'eighty'" in result.stderr
    assert "Traceback" not in result.stderr
