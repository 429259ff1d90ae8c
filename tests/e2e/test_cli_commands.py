"""``devpi-core init | passwd | plugins | check-config | gen-config`` as subprocesses."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import pytest
from cli_run import FAST_HASHING, assert_one_line_error, devpi_core
from ruamel.yaml import YAML

from devpi_core import __version__
from devpi_core.bootstrap import load_plugins, open_core
from devpi_core.config import load_raw
from devpi_core.serverdir import open_serverdir
from devpi_core.testing.plugin import clean_env, write_config

pytestmark = pytest.mark.e2e


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(FAST_HASHING)
    return path


def password_matches(config, serverdir, user, password):
    plugins, settings = load_plugins(load_raw(str(config)))
    settings = settings.with_overrides(serverdir=str(serverdir))
    core = open_core(plugins, settings, open_serverdir(str(serverdir)))
    try:
        return core.users.hasher.verify(password, core.users.require(user)["pwhash"])
    finally:
        core.close()


@pytest.mark.pkgcheck
def test_init_creates_a_server_dir(tmp_path, config):
    serverdir = tmp_path / "sd"
    result = devpi_core(
        "init",
        "--serverdir",
        str(serverdir),
        "--config",
        str(config),
        "--root-passwd",
        "s3cret",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"initialised {serverdir}: user root")
    assert stat.S_IMODE(os.stat(serverdir / ".secret").st_mode) == 0o600
    assert (serverdir / "metadata.sqlite").exists()
    assert password_matches(config, serverdir, "root", "s3cret")
    # the commented default configuration is valid as it stands
    written = serverdir / "devpi-core.yml"
    assert "# server:" in written.read_text()
    checked = devpi_core("check-config", str(written), home=tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_init_twice_is_refused(tmp_path, config):
    args = ("init", "--serverdir", str(tmp_path / "sd"), "--config", str(config))
    assert devpi_core(*args, home=tmp_path).returncode == 0
    assert_one_line_error(devpi_core(*args, home=tmp_path), 1, "is already initialised")


def test_default_server_dir_is_in_home_and_the_environment_overrides_it(tmp_path, config):
    result = devpi_core("init", "--config", str(config), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".devpi-core" / ".nodeinfo").exists()
    elsewhere = tmp_path / "elsewhere"
    result = devpi_core(
        "init", "--config", str(config), home=tmp_path, DEVPI_CORE_SERVERDIR=str(elsewhere)
    )
    assert result.returncode == 0, result.stderr
    assert (elsewhere / ".nodeinfo").exists()


def test_python_dash_m_runs_the_command(tmp_path, config):
    version = subprocess.run(
        [sys.executable, "-m", "devpi_core", "--version"],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert version.stdout.strip() == f"devpi-core {__version__}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "devpi_core",
            "init",
            "--serverdir",
            str(tmp_path / "sd"),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sd" / ".nodeinfo").exists()


def test_passwd_from_standard_input(tmp_path, config):
    serverdir = tmp_path / "sd"
    devpi_core("init", "--serverdir", str(serverdir), "--config", str(config), home=tmp_path)
    result = devpi_core(
        "passwd",
        "root",
        "--serverdir",
        str(serverdir),
        "--config",
        str(config),
        home=tmp_path,
        input="n3w-pass\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "password of root changed"
    assert password_matches(config, serverdir, "root", "n3w-pass")
    assert not password_matches(config, serverdir, "root", "")


def test_passwd_sets_an_empty_password_from_an_empty_line(tmp_path, config):
    serverdir = tmp_path / "sd"
    devpi_core("init", "--serverdir", str(serverdir), "--config", str(config), home=tmp_path)
    args = ("passwd", "root", "--serverdir", str(serverdir), "--config", str(config))
    assert devpi_core(*args, home=tmp_path, input="n3w-pass\n").returncode == 0
    # what tooling does to reset root: devpi accepts the empty password (with a warning)
    result = devpi_core(*args, home=tmp_path, input="\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "password of root changed"
    assert "empty password" in result.stderr
    assert password_matches(config, serverdir, "root", "")
    assert not password_matches(config, serverdir, "root", "n3w-pass")


@pytest.mark.parametrize(
    ("user", "given", "message"),
    [
        ("nobody", "x\n", "no user 'nobody'"),
        ("root", "", "no password on standard input; nothing changed"),
    ],
)
def test_passwd_refusals(tmp_path, config, user, given, message):
    serverdir = tmp_path / "sd"
    devpi_core("init", "--serverdir", str(serverdir), "--config", str(config), home=tmp_path)
    result = devpi_core(
        "passwd",
        user,
        "--serverdir",
        str(serverdir),
        "--config",
        str(config),
        home=tmp_path,
        input=given,
    )
    assert_one_line_error(result, 1, message)


def test_passwd_needs_an_initialised_server_dir(tmp_path, config):
    result = devpi_core(
        "passwd",
        "root",
        "--serverdir",
        str(tmp_path / "none"),
        "--config",
        str(config),
        home=tmp_path,
        input="x\n",
    )
    assert_one_line_error(result, 1, "is not initialised; run 'devpi-core init")


def test_plugins_lists_plugins_hooks_and_settings(tmp_path, config):
    result = devpi_core("plugins", "--config", str(config), home=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "fsstore (bundled): devpi_core_fsstore" in out
    assert "stages (bundled): devpi_core_stages" in out
    assert "  hooks: devpi_blob_backends, devpi_config_sections, devpi_metadata_backends" in out
    # the file's values are not the defaults: the listing shows defaults and help
    assert "  plugins.passwd.argon2_time_cost = 3  # argon2 iterations" in out
    assert '  plugins.fsstore.synchronous = "normal"' in out


def test_plugins_follows_the_configured_plugin_set(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("plugins:\n  disabled: [stages]\n")
    result = devpi_core("plugins", "--config", str(config), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "stages (" not in result.stdout
    assert "passwd (bundled)" in result.stdout


def test_check_config_accepts_a_good_file(tmp_path, config):
    result = devpi_core("check-config", str(config), home=tmp_path)
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, f"{config}: ok", "")


def test_check_config_reports_every_error_with_status_2(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "server:\n  port: '80'\n  threds: 4\nplugins:\n  passwd:\n    login_token_expiry: soon\n"
        "  disabled: [fstore]\n"
    )
    result = devpi_core("check-config", str(bad), home=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    errors = result.stderr.splitlines()
    assert errors[:3] == [
        f"{bad}:2: server.port: expected integer, got '80'",
        f"{bad}:3: server.threds: unknown key; did you mean 'threads'?",
        f"{bad}:6: plugins.passwd.login_token_expiry: expected integer, got 'soon'",
    ]
    assert errors[3].startswith(
        f"{bad}:7: plugins.disabled: unknown plugin 'fstore'; available: fsstore, "
    )
    assert len(errors) == 4


def test_check_config_of_a_missing_file(tmp_path):
    result = devpi_core("check-config", str(tmp_path / "nope.yml"), home=tmp_path)
    assert_one_line_error(result, 2, f"{tmp_path / 'nope.yml'}: cannot read")


def uncommented(text):
    """The settings of a generated file as data, as if every setting were uncommented."""
    config, section, current = {}, None, None
    for line in text.splitlines():
        if match := re.match(r"^# (\w+):$", line):
            section = current = config.setdefault(match[1], {})
        elif (match := re.match(r"^#   (\w+):$", line)) and section is not None:
            current = section.setdefault(match[1], {})
        elif (match := re.match(r"^#\s+(\w+): (.*?)(?:\s+#.*)?$", line)) and current is not None:
            current[match[1]] = YAML(typ="safe").load(match[2])
    return config


def test_gen_config_prints_a_valid_commented_file(tmp_path):
    result = devpi_core("gen-config", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert YAML(typ="safe").load(result.stdout) is None  # everything is commented out
    settings = uncommented(result.stdout)
    assert settings["server"]["port"] == 3141
    assert settings["plugins"]["fsstore"]["synchronous"] == "normal"
    assert set(settings["plugins"]) >= {"fsstore", "passwd"}
    # uncommenting every setting gives a valid file
    checked = devpi_core(
        "check-config", str(write_config(tmp_path / "all.yml", settings)), home=tmp_path
    )
    assert checked.returncode == 0, checked.stderr
