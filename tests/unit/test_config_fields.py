"""Settings declared once: the dataclass field feeds the schema, defaults, docs and typed object."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from devpi_core import hookimpl
from devpi_core.config import LoggingSettings, ServerSettings, load_raw, settings_for
from devpi_core.config_reference import default_yaml, describe_plugin_settings, reference_rst
from devpi_core.errors import ConfigError
from devpi_core.plugins import make_pm
from devpi_core.specs import ConfigSection, build, setting, size_setting


@dataclass(frozen=True)
class WebhookSettings:
    url: str | None = setting(None, "where events are posted", {"type": ["string", "null"]})
    retries: int = setting(3, "attempts per event", {"type": "integer", "minimum": 0})
    max_body: int = size_setting("64K", "largest body posted")
    topics: tuple[str, ...] = setting(
        ["upload"], "events posted", {"type": "array", "items": {"type": "string"}}, convert=tuple
    )


class Webhook:
    @hookimpl
    def devpi_config_sections(self):
        return [ConfigSection.declare("webhook", WebhookSettings)]


class OldStyle:
    """A third-party plugin written before declarations: the three mappings directly."""

    @hookimpl
    def devpi_config_sections(self):
        schema = {"greeting": {"type": "string", "minLength": 1}}
        return [ConfigSection("old", schema, {"greeting": "hi"}, {"greeting": "what to say"})]


def load(tmp_path, text):
    path = tmp_path / "devpi-core.yml"
    path.write_text(text, encoding="utf-8")
    plugins = make_pm([("webhook", Webhook()), ("old", OldStyle())], entrypoints=False)
    return plugins, settings_for(load_raw(str(path)), plugins)


def test_the_section_is_read_as_its_typed_dataclass(tmp_path):
    _plugins, settings = load(
        tmp_path, "plugins:\n  webhook:\n    max_body: 1M\n    topics: [upload, delete]\n"
    )
    webhook = settings.section("webhook", WebhookSettings)
    assert webhook == WebhookSettings(
        url=None, retries=3, max_body=1 << 20, topics=("upload", "delete")
    )
    # the plain mapping of YAML values stays available, defaults applied
    assert settings.plugin("webhook")["max_body"] == "1M"
    assert settings.plugin("webhook")["retries"] == 3


def test_the_declaration_validates_with_file_line_and_key(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "plugins:\n  webhook:\n    retries: many\n    max_body: lots\n")
    path = tmp_path / "devpi-core.yml"
    assert info.value.errors == [
        f"{path}:3: plugins.webhook.retries: expected integer, got 'many'",
        f"{path}:4: plugins.webhook.max_body: expected a size such as 1048576 or '64M', got 'lots'",
    ]


def test_the_declaration_documents_the_section(tmp_path):
    plugins, _settings = load(tmp_path, "")
    assert '#     max_body: "64K"  # largest body posted' in default_yaml(plugins)
    page = reference_rst(plugins)
    assert "``plugins.webhook``" in page
    assert "    attempts per event (integer; default ``3``)" in page
    assert describe_plugin_settings(plugins, "webhook")[-1] == (
        'plugins.webhook.topics = ["upload"]  # events posted'
    )


def test_a_section_written_as_mappings_keeps_working(tmp_path):
    plugins, settings = load(tmp_path, "plugins:\n  old:\n    greeting: hello\n")
    assert settings.plugin("old") == {"greeting": "hello"}
    assert 'plugins.old.greeting = "hi"  # what to say' in describe_plugin_settings(plugins, "old")
    with pytest.raises(ConfigError, match=r"devpi-core\.yml:3: plugins\.old\.greeting: "):
        load(tmp_path, "plugins:\n  old:\n    greeting: ''\n")


def test_build_fills_defaults_and_converts():
    assert build(WebhookSettings, {"retries": 0}) == WebhookSettings(
        None, 0, 64 * 1024, ("upload",)
    )
    # the dataclass defaults are the converted YAML defaults
    assert WebhookSettings() == build(WebhookSettings, {})


def test_core_sections_are_declared_the_same_way():
    plugins = make_pm(entrypoints=False)
    settings = settings_for(None, plugins)
    assert settings.server == ServerSettings()
    assert settings.server.max_upload_size == 1 << 30
    assert settings.logging == LoggingSettings()


def test_a_field_without_a_declaration_is_refused():
    @dataclass(frozen=True)
    class Partial:
        declared: int = setting(1, "a declared key", {"type": "integer"})
        plain: int = field(default=2)

    with pytest.raises(TypeError, match=r"Partial\.plain is not declared with setting\(\)"):
        ConfigSection.declare("partial", Partial)
