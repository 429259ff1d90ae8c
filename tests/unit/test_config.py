"""The YAML configuration: loading, secret references, validation messages, defaults."""

from __future__ import annotations

import pytest

from devpi_core.bootstrap import load_plugins
from devpi_core.config import (
    CONFIG_ENV,
    CONFIG_NAME,
    SERVERDIR_ENV,
    find_config_file,
    load_raw,
    parse_size,
    plugin_lists,
    read_yaml,
    resolve_serverdir,
)
from devpi_core.errors import ConfigError


def write(tmp_path, text, name="devpi-core.yml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def errors_of(path):
    with pytest.raises(ConfigError) as info:
        load_plugins(load_raw(path))
    return info.value.errors


def test_no_file_gives_defaults():
    _plugins, settings = load_plugins(None)
    assert settings.server.port == 3141
    assert settings.server.host == "127.0.0.1"
    assert settings.server.max_upload_size == 1 << 30
    assert settings.storage.metadata == "sqlite"
    assert settings.storage.blobs == "fs"
    assert settings.logging.level == "INFO"
    assert settings.plugin("passwd")["login_token_expiry"] == 36000


def test_values_from_the_file_override_defaults(tmp_path):
    path = write(
        tmp_path,
        "server:\n  port: 4000\n  page_cache_size: 2M\n"
        "plugins:\n  passwd:\n    login_token_expiry: 120\n",
    )
    _plugins, settings = load_plugins(load_raw(path))
    assert settings.server.port == 4000
    assert settings.server.page_cache_size == 2 * 1024 * 1024
    assert settings.plugin("passwd")["login_token_expiry"] == 120
    assert settings.plugin("passwd")["argon2_parallelism"] == 4  # default kept
    assert settings.source == path


def test_every_error_at_once_with_file_line_key_and_expectation(tmp_path):
    path = write(
        tmp_path,
        "\n".join(
            [
                "server:",
                "  port: http",  # 2: wrong type
                "  hots: 0.0.0.0",  # 3: typo
                "logging:",
                "  level: LOUD",  # 5: not one of the choices
                "plugins:",
                "  passwd:",
                "    argon2_time_cost: x",  # 8: wrong type in a plugin's section
                "  fsstore:",
                "    synchronus: full",  # 10: typo in a plugin's section
            ]
        )
        + "\n",
    )
    assert errors_of(path) == [
        f"{path}:2: server.port: expected integer, got 'http'",
        f"{path}:3: server.hots: unknown key; did you mean 'host'?",
        f"{path}:5: logging.level: expected one of 'DEBUG', 'INFO', 'WARNING', 'ERROR', got 'LOUD'",
        f"{path}:8: plugins.passwd.argon2_time_cost: expected integer, got 'x'",
        f"{path}:10: plugins.fsstore.synchronus: unknown key; did you mean 'synchronous'?",
    ]


def test_unknown_section_lists_the_valid_ones(tmp_path):
    path = write(tmp_path, "servers:\n  port: 1\n")
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:1: servers: unknown key; did you mean 'server'?")


def test_unknown_key_without_a_close_match_lists_choices(tmp_path):
    path = write(tmp_path, "storage:\n  zzz: 1\n")
    assert errors_of(path) == [
        f"{path}:2: storage.zzz: unknown key; expected one of: "
        "blob_gc_grace, blob_gc_interval, blobs, metadata"
    ]


def test_bad_size_says_what_a_size_looks_like(tmp_path):
    path = write(tmp_path, "server:\n  max_upload_size: lots\n")
    assert errors_of(path) == [
        f"{path}:2: server.max_upload_size: expected a size such as 1048576 or '64M', got 'lots'"
    ]


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "server:\n  port: 1\n  host: [unclosed\n")
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:")
    assert "invalid YAML" in error


def test_file_must_be_a_mapping(tmp_path):
    path = write(tmp_path, "- a\n- b\n")
    assert errors_of(path) == [f"{path}:1: the file must hold a mapping of sections"]


def test_empty_file_means_defaults(tmp_path):
    _plugins, settings = load_plugins(load_raw(write(tmp_path, "# nothing yet\n")))
    assert settings.server.port == 3141


def test_missing_file_is_a_config_error(tmp_path):
    missing = str(tmp_path / "nope.yml")
    with pytest.raises(ConfigError) as info:
        read_yaml(missing)
    assert info.value.errors == [f"{missing}: cannot read: No such file or directory"]


def test_unknown_plugin_name_has_a_line_and_the_available_names(tmp_path):
    path = write(
        tmp_path, "plugins:\n  disabled:\n    - stages\n    - stagez\n  enabled: [nothere]\n"
    )
    found = errors_of(path)
    assert len(found) == 2
    assert found[0].startswith(f"{path}:4: plugins.disabled: unknown plugin 'stagez'; available: ")
    assert found[1].startswith(f"{path}:5: plugins.enabled: unknown plugin 'nothere'; available: ")
    assert "fsstore" in found[0]
    assert "passwd" in found[0]


def test_plugin_names_and_settings_are_reported_together_in_file_order(tmp_path):
    path = write(
        tmp_path, "server:\n  port: x\nplugins:\n  enabled: [nothere]\nlogging:\n  level: 1\n"
    )
    found = errors_of(path)
    assert [error.split(": ")[1] for error in found] == [
        "server.port",
        "plugins.enabled",
        "logging.level",
    ]


def test_storage_backends_must_exist(tmp_path):
    path = write(tmp_path, "storage:\n  metadata: postgres\n  blobs: gcs\n")
    assert errors_of(path) == [
        f"{path}:2: storage.metadata: unknown backend 'postgres'; available: postgresql, sqlite",
        f"{path}:3: storage.blobs: unknown backend 'gcs'; available: fs, s3",
    ]


def test_disabling_the_only_storage_plugin_is_reported(tmp_path):
    path = write(tmp_path, "plugins:\n  disabled: [fsstore, s3store, pgstore]\n")
    assert errors_of(path) == [
        f"{path}:1: storage.metadata: unknown backend 'sqlite'; "
        "available: none (no storage plugin)",
        f"{path}:1: storage.blobs: unknown backend 'fs'; available: none (no storage plugin)",
    ]


def test_plugin_lists_must_be_lists_of_names(tmp_path):
    path = write(tmp_path, "plugins:\n  enabled: hello\n")
    with pytest.raises(ConfigError) as info:
        plugin_lists(read_yaml(path))
    assert info.value.errors == [f"{path}:2: plugins.enabled: expected a list of plugin names"]


def test_settings_of_a_disabled_plugin_are_kept_not_validated(tmp_path):
    # Turning a plugin off must not force deleting its section.
    path = write(tmp_path, "plugins:\n  disabled: [passwd]\n  passwd:\n    whatever: 1\n")
    plugins, settings = load_plugins(load_raw(path))
    assert "passwd" not in plugins.names()
    assert settings.disabled == ("passwd",)


def test_section_of_an_unknown_plugin_is_an_error(tmp_path):
    path = write(tmp_path, "plugins:\n  nosuchplugin:\n    a: 1\n")
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:2: plugins.nosuchplugin: unknown key")


def test_env_and_file_references_are_resolved(tmp_path, monkeypatch):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("DEVPI_TEST_HOST", "0.0.0.0")
    path = write(
        tmp_path,
        f"server:\n  host: {{env: DEVPI_TEST_HOST}}\n  outside_url: {{file: {secret_file}}}\n",
    )
    raw = load_raw(path)
    assert raw is not None
    assert raw.data["server"]["host"] == "0.0.0.0"
    assert raw.data["server"]["outside_url"] == "from-a-file"


def test_unresolvable_references_are_all_reported(tmp_path, monkeypatch):
    monkeypatch.delenv("DEVPI_TEST_UNSET", raising=False)
    path = write(
        tmp_path,
        "server:\n  host: {env: DEVPI_TEST_UNSET}\n"
        f"  outside_url: {{file: {tmp_path / 'missing'}}}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_raw(path)
    assert info.value.errors == [
        f"{path}:2: server.host: env 'DEVPI_TEST_UNSET' is not set",
        f"{path}:3: server.outside_url: file '{tmp_path / 'missing'}' cannot be read",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (0, 0),
        (1048576, 1048576),
        ("10", 10),
        ("64M", 64 << 20),
        ("1.5G", 3 << 29),
        ("2k", 2048),
        ("1 GiB", 1 << 30),
        ("3mb", 3 << 20),
        ("1T", 1 << 40),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


def test_parse_size_rejects_nonsense():
    with pytest.raises(ValueError, match="not a size"):
        parse_size("12 parsecs")


def test_serverdir_flag_then_environment_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(SERVERDIR_ENV, raising=False)
    assert resolve_serverdir(None) == str(tmp_path / ".devpi-core")
    monkeypatch.setenv(SERVERDIR_ENV, str(tmp_path / "from-env"))
    assert resolve_serverdir(None) == str(tmp_path / "from-env")
    assert resolve_serverdir(str(tmp_path / "flag")) == str(tmp_path / "flag")


def test_config_file_flag_then_environment_then_serverdir(tmp_path, monkeypatch):
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    serverdir = tmp_path / "sd"
    serverdir.mkdir()
    assert find_config_file(None, str(serverdir)) is None
    (serverdir / CONFIG_NAME).write_text("")
    assert find_config_file(None, str(serverdir)) == str(serverdir / CONFIG_NAME)
    monkeypatch.setenv(CONFIG_ENV, "/from/env.yml")
    assert find_config_file(None, str(serverdir)) == "/from/env.yml"
    assert find_config_file("/flag.yml", str(serverdir)) == "/flag.yml"


def test_flags_override_the_file(tmp_path):
    path = write(tmp_path, "server:\n  port: 4000\n  host: 0.0.0.0\n")
    _plugins, settings = load_plugins(load_raw(path))
    changed = settings.with_overrides(port=5000, host=None, offline_mode=True)
    assert (changed.server.port, changed.server.host, changed.server.offline_mode) == (
        5000,
        "0.0.0.0",
        True,
    )
