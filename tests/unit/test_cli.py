"""The ``devpi-core`` command in process: exit statuses and messages of every branch.

The end-to-end tests run the same commands as subprocesses; these cover the branches that are
hard to provoke from outside (a full disk) quickly.
"""

from __future__ import annotations

import errno
import io
import signal
from pathlib import Path

import pytest

from devpi_core import cli
from devpi_core.testing.plugin import FAST_HASHING, write_config


@pytest.fixture(autouse=True)
def _keep_sigterm_handler():
    # main() installs its own SIGTERM handler; the test process keeps pytest's
    saved = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, saved)


@pytest.fixture
def config(tmp_path):
    return str(write_config(tmp_path / "c.yml", {"plugins": {"passwd": dict(FAST_HASHING)}}))


@pytest.fixture
def serverdir(tmp_path):
    return str(tmp_path / "sd")


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_init_then_passwd_then_refusals(capsys, monkeypatch, config, serverdir):
    status, out, _ = run(
        capsys, "init", "--serverdir", serverdir, "--config", config, "--no-default-indexes"
    )
    assert (status, out.strip()) == (0, f"initialised {serverdir}: user root")
    assert run(capsys, "init", "--serverdir", serverdir, "--config", config)[0] == 1

    monkeypatch.setattr("sys.stdin", io.StringIO("secret\n"))
    status, out, _ = run(capsys, "passwd", "root", "--serverdir", serverdir, "--config", config)
    assert (status, out.strip()) == (0, "password of root changed")

    monkeypatch.setattr("sys.stdin", io.StringIO("x\n"))
    status, _, err = run(capsys, "passwd", "bob", "--serverdir", serverdir, "--config", config)
    assert (status, err.strip()) == (1, f"devpi-core: error: no user 'bob' in {serverdir}")


def test_passwd_on_a_terminal_asks_twice(capsys, monkeypatch, config, serverdir):
    run(capsys, "init", "--serverdir", serverdir, "--config", config, "--no-default-indexes")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    answers = iter(["one", "two"])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt: next(answers))
    status, _, err = run(capsys, "passwd", "root", "--serverdir", serverdir, "--config", config)
    assert (status, err.strip()) == (1, "devpi-core: error: the passwords differ; nothing changed")


def test_plugins_and_reference(capsys, config):
    status, out, _ = run(capsys, "plugins", "--config", config)
    assert status == 0
    assert "passwd (bundled): devpi_core_passwd" in out
    status, out, _ = run(capsys, "plugins", "--reference", "--config", config)
    assert status == 0
    assert out.startswith("Configuration reference\n=======================")


def test_check_config(capsys, tmp_path, config):
    assert run(capsys, "check-config", config)[:2] == (0, f"{config}: ok\n")
    bad = tmp_path / "bad.yml"
    bad.write_text("server:\n  port: x\n")
    status, out, err = run(capsys, "check-config", str(bad))
    assert (status, out, err) == (2, "", f"{bad}:2: server.port: expected integer, got 'x'\n")


def test_gen_config(capsys):
    status, out, _ = run(capsys, "gen-config")
    assert status == 0
    assert "#   port: 3141  # TCP port to listen on" in out


def test_an_os_error_is_one_line(capsys, monkeypatch, config, serverdir):
    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", disk_full)
    status, _, err = run(capsys, "init", "--serverdir", serverdir, "--config", config)
    assert status == 1
    assert err == f"devpi-core: error: {serverdir}/devpi-core.yml: No space left on device\n"


def test_interrupted_command_exits_130(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "gen-config", interrupted)
    assert run(capsys, "gen-config")[0] == 130


def test_sigterm_becomes_a_keyboard_interrupt():
    with pytest.raises(KeyboardInterrupt):
        cli._terminate(15, None)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"argon2_memory_cost": 16, "argon2_parallelism": 4},
         "plugins.passwd.argon2_memory_cost: argon2 needs at least 8 KiB per lane: 32 for "
         "argon2_parallelism 4, got 16"),
        ({"argon2_memory_cost": 2**32 - 1}, "plugins.passwd.argon2_memory_cost: 4294967295 KiB "
         "cannot be allocated: this machine has"),
        ({"argon2_parallelism": 0}, "plugins.passwd.argon2_parallelism: 0 is less than the "
         "minimum of 1"),
    ],
)
def test_impossible_argon2_settings_are_config_errors(capsys, tmp_path, serverdir, values,
                                                      message):
    path = tmp_path / "argon2.yml"
    config = str(write_config(path, {"plugins": {"passwd": {**FAST_HASHING, **values}}}))
    for argv in (("check-config", config),
                 ("init", "--serverdir", serverdir, "--config", config, "--no-default-indexes")):
        status, out, err = run(capsys, *argv)
        assert (status, out) == (2, ""), err
        assert err.startswith(f"{path}:"), err
        assert message in err
        assert "Traceback" not in err
    assert not Path(serverdir).exists()
