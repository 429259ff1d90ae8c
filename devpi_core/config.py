"""The YAML configuration: load, resolve secret references, validate, turn into dataclasses.

One file names the plugin set and holds every setting. Top-level keys: ``server``, ``logging``,
``storage`` and ``plugins``; each plugin owns ``plugins.<name>`` and declares its schema through
``devpi_config_sections``. Every error is reported at once as ``file:line: dotted.key: message``.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import jsonschema
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

# SIZE_SCHEMA and parse_size are re-exported: plugins have imported them from here
from devpi_core.config_fields import SIZE_SCHEMA as SIZE_SCHEMA  # noqa: PLC0414
from devpi_core.config_fields import build, optional_tuple, setting, size_setting
from devpi_core.config_fields import parse_size as parse_size  # noqa: PLC0414
from devpi_core.errors import ConfigError
from devpi_core.networks import AddressSet
from devpi_core.outbound import Rules
from devpi_core.specs import ConfigSection

if TYPE_CHECKING:
    from devpi_core.plugins import Plugins

DEFAULT_SERVERDIR = "~/.devpi-core"
SERVERDIR_ENV = "DEVPI_CORE_SERVERDIR"
CONFIG_ENV = "DEVPI_CORE_CONFIG"
CONFIG_NAME = "devpi-core.yml"
T = TypeVar("T")

PLUGIN_LIST_SCHEMA: dict[str, Any] = {"type": "array", "items": {"type": "string"}}


def resolve_serverdir(value: str | None) -> str:
    """``value``, else ``$DEVPI_CORE_SERVERDIR``, else ``~/.devpi-core``; made absolute."""
    chosen = value or os.environ.get(SERVERDIR_ENV) or DEFAULT_SERVERDIR
    return str(Path(chosen).expanduser().resolve())


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value)


_HOST_RULES = {"type": "array", "items": {"type": "string", "format": "host-rule"}}


@dataclass(frozen=True)
class ServerSettings:
    """The ``server`` section."""

    serverdir: str = setting(
        None,
        f"directory holding the data; default ${SERVERDIR_ENV} or {DEFAULT_SERVERDIR}",
        {"type": ["string", "null"], "minLength": 1},
        convert=resolve_serverdir,
    )
    host: str = setting("127.0.0.1", "address to listen on", {"type": "string", "minLength": 1})
    port: int = setting(
        3141,
        "TCP port to listen on (0 picks a free one and prints it)",
        {"type": "integer", "minimum": 0, "maximum": 65535},
    )
    threads: int = setting(
        16, "worker threads serving requests", {"type": "integer", "minimum": 1, "maximum": 1000}
    )
    connection_limit: int = setting(
        1000,
        "open connections accepted at once; near the limit, the connections silent longest are "
        "closed to make room for new ones",
        {"type": "integer", "minimum": 1},
    )
    idle_timeout: int = setting(
        20,
        "seconds a connection may stay silent (between requests, or within one) before it is "
        "closed",
        {"type": "integer", "minimum": 1},
    )
    request_timeout: int = setting(
        60,
        "seconds a request (line, headers and body) may take to arrive, plus a second for every "
        "request_min_rate bytes received; then the connection is closed",
        {"type": "integer", "minimum": 1},
    )
    request_min_rate: int = size_setting(
        "16K",
        "bytes per second that extend request_timeout, so slow but steady uploads finish; 0 "
        "makes request_timeout a fixed deadline",
    )
    outside_url: str | None = setting(
        None,
        "URL clients use to reach the server (simple pages then link absolutely)",
        {"type": ["string", "null"], "pattern": "^https?://"},
    )
    docs_url: str | None = setting(
        None,
        "origin (scheme, host, port) of a second name of this server that serves only "
        "documentation; doc URLs elsewhere redirect there. null: docs are served on every "
        "origin, sandboxed without scripts",
        {"type": ["string", "null"], "pattern": "^https?://[^/?#]+/?$"},
    )
    docs_allow_scripts: bool = setting(
        False,
        "let documentation run script on the docs_url origin (sandboxed without scripts on any "
        "other); documentation pages can then read each other",
        {"type": "boolean"},
    )
    absolute_urls: bool = setting(
        False,
        "absolute links on simple pages even when no outside URL is known",
        {"type": "boolean"},
    )
    offline_mode: bool = setting(
        False,
        "never contact upstream indexes; serve only what is cached",
        {"type": "boolean"},
    )
    max_upload_size: int = size_setting("1G", "largest accepted upload (request body)")
    page_cache_size: int = size_setting(
        "32M", "memory for rendered simple pages (pages under 256 KiB)"
    )
    page_cache_disk_size: int = size_setting(
        "1G", "temp file space for larger rendered pages (served from the OS cache)"
    )
    simple_max_age: int = setting(
        60, "Cache-Control max-age in seconds for simple pages", {"type": "integer", "minimum": 0}
    )
    restrict_modify: tuple[str, ...] | None = setting(
        None,
        "only these users or :groups may create users and indexes (devpi's --restrict-modify); "
        "null lets anyone create a user and users create their own indexes",
        {"type": ["array", "null"], "items": {"type": "string"}},
        convert=optional_tuple,
    )
    outbound_allow: tuple[str, ...] = setting(
        [],
        "hosts mirrors and pushes may reach although they are not public: host names (a * "
        "wildcard matches any part), IP addresses or CIDR networks; by default loopback, "
        "private, link-local, multicast and reserved addresses are refused",
        _HOST_RULES,
        convert=_tuple,
    )
    outbound_deny: tuple[str, ...] = setting(
        [],
        "hosts mirrors and pushes may never reach (same forms; wins over outbound_allow)",
        _HOST_RULES,
        convert=_tuple,
    )
    # setting() returns a dataclasses.field, which ruff cannot tell
    trusted_proxies: AddressSet = setting(  # noqa: RUF009
        ["127.0.0.1", "::1"],
        "addresses or networks (CIDR) of reverse proxies whose X-Outside-Url header is "
        "believed; from any other client the header is ignored",
        {"type": "array", "items": {"type": "string", "format": "ip-network"}},
        convert=AddressSet.parse,
    )


@dataclass(frozen=True)
class LoggingSettings:
    """The ``logging`` section."""

    level: str = setting(
        "INFO", "lowest level logged", {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"]}
    )
    format: str = setting("text", "text, or json (one object per line)", {"enum": ["text", "json"]})
    access_log: bool = setting(
        True,
        "log one line per request",
        {"type": "boolean"},
    )
    file: str | None = setting(
        None, "log to this file instead of standard error", {"type": ["string", "null"]}
    )


@dataclass(frozen=True)
class StorageSettings:
    """The ``storage`` section: backend names and blob garbage collection."""

    metadata: str = setting("sqlite", "metadata store backend", {"type": "string"})
    blobs: str = setting("fs", "file content store backend", {"type": "string"})
    blob_gc_grace: float = setting(
        3600,
        "seconds a file's content stays after its last reference went (a deleted release, an "
        "overwritten file) before garbage collection removes it; an upload of the same "
        "content meanwhile keeps it",
        {"type": "number", "minimum": 0},
        convert=float,
    )
    blob_gc_interval: float = setting(
        600,
        "seconds between the server's garbage collection sweeps (0: none; then run "
        "``devpi-core gc``)",
        {"type": "number", "minimum": 0},
        convert=float,
    )


CORE_SECTIONS = {
    name: ConfigSection.declare(name, settings_class)
    for name, settings_class in (
        ("server", ServerSettings),
        ("logging", LoggingSettings),
        ("storage", StorageSettings),
    )
}


@dataclass(frozen=True)
class Settings:
    """The whole validated configuration."""

    server: ServerSettings
    logging: LoggingSettings
    storage: StorageSettings
    enabled: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str | None = None
    typed: Mapping[str, object] = field(default_factory=dict)

    def plugin(self, name: str) -> Mapping[str, Any]:
        """The settings section of plugin ``name`` with its defaults applied."""
        return self.plugins.get(name, MappingProxyType({}))

    def section(self, name: str, settings_class: type[T]) -> T:
        """Plugin ``name``'s section as its declared dataclass (``ConfigSection.declare``).

        Built once when the configuration is loaded; for a section that was not declared with
        ``settings_class`` (or a plugin that is not active) it is built from :meth:`plugin`.
        """
        found = self.typed.get(name)
        if isinstance(found, settings_class):
            return found
        return build(settings_class, self.plugin(name))

    def with_overrides(self, **server: Any) -> Settings:
        """A copy with ``server`` settings replaced (for command-line flags); None keeps."""
        changes = {key: value for key, value in server.items() if value is not None}
        return replace(self, server=replace(self.server, **changes))


# -- loading --------------------------------------------------------------------------------
@dataclass
class RawConfig:
    """A parsed YAML document plus where it came from, for line numbers in errors."""

    data: Any
    source: str

    def line_of(self, path: Sequence[Any]) -> str:
        """``file:line`` of the deepest existing key along ``path``."""
        node, line = self.data, 1
        for key in path:
            if isinstance(node, CommentedMap) and key in node:
                line = node.lc.key(key)[0] + 1
            elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
                line = node.lc.item(key)[0] + 1
            else:
                break
            node = node[key]
        return f"{self.source}:{line}"


def read_yaml(path: str) -> RawConfig:
    """Parse ``path``; syntax errors become a :class:`ConfigError` with the line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        data = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{path}{line}: invalid YAML: {problem}"]) from None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, Mapping):
        raise ConfigError([f"{path}:1: the file must hold a mapping of sections"])
    return RawConfig(data, path)


def resolve_secrets(raw: RawConfig) -> list[str]:
    """Replace ``{env: NAME}`` and ``{file: PATH}`` references in place; return errors."""
    errors: list[str] = []

    def walk(node: Any, path: list[Any]) -> None:
        items = node.items() if isinstance(node, Mapping) else enumerate(node)
        for key, value in list(items):
            here = [*path, key]
            if isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in _REFERENCES:
                kind, ref = next(iter(value.items()))
                resolved = _resolve_one(kind, str(ref))
                if resolved is None:
                    problem = "is not set" if kind == "env" else "cannot be read"
                    errors.append(f"{raw.line_of(here)}: {_dotted(here)}: {kind} {ref!r} {problem}")
                else:
                    node[key] = resolved
            elif isinstance(value, (Mapping, list)):
                walk(value, here)

    walk(raw.data, [])
    return errors


_REFERENCES = ("env", "file")


def _resolve_one(kind: str, ref: str) -> str | None:
    if kind == "env":
        return os.environ.get(ref) or None
    try:
        return Path(ref).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _dotted(path: Sequence[Any]) -> str:
    return ".".join(str(part) for part in path) or "(top)"


def find_config_file(explicit: str | None, serverdir: str | None) -> str | None:
    """The file to load: ``--config``, else ``$DEVPI_CORE_CONFIG``, else the serverdir's."""
    if explicit:
        return explicit
    if os.environ.get(CONFIG_ENV):
        return os.environ[CONFIG_ENV]
    candidate = Path(resolve_serverdir(serverdir)) / CONFIG_NAME
    return str(candidate) if candidate.is_file() else None


def plugin_lists(raw: RawConfig | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``plugins.enabled`` and ``plugins.disabled`` (validated for shape)."""
    if raw is None:
        return (), ()
    plugins = raw.data.get("plugins") or {}
    result = []
    for key in ("enabled", "disabled"):
        value = plugins.get(key, []) if isinstance(plugins, Mapping) else []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            where = raw.line_of(["plugins", key])
            raise ConfigError([f"{where}: plugins.{key}: expected a list of plugin names"])
        result.append(tuple(value))
    return result[0], result[1]


def full_schema(plugins: Plugins) -> dict[str, Any]:
    """The JSON Schema of the whole file for the active plugin set."""

    def section(props: Mapping[str, Any]) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": False, "properties": dict(props)}

    plugin_props: dict[str, Any] = {"enabled": PLUGIN_LIST_SCHEMA, "disabled": PLUGIN_LIST_SCHEMA}
    for name, spec in plugins.config_sections().items():
        plugin_props[name] = section(spec.schema)
    props = {name: section(spec.schema) for name, spec in CORE_SECTIONS.items()}
    props["plugins"] = section(plugin_props)
    return section(props)


def validate(raw: RawConfig, plugins: Plugins, known_plugins: Sequence[str] = ()) -> list[str]:
    """Every schema violation as ``file:line: dotted.key: message``, in file order."""
    data = raw.data
    ignored = [name for name in known_plugins if name not in plugins.config_sections()]
    if ignored and isinstance(data.get("plugins"), Mapping):
        # Sections of installed but inactive plugins are kept, not validated: turning a
        # plugin off must not require deleting its settings.
        data = {**data, "plugins": {k: v for k, v in data["plugins"].items() if k not in ignored}}
    validator = jsonschema.Draft202012Validator(full_schema(plugins), format_checker=_formats())
    found = []
    for error in validator.iter_errors(data):
        for path, message in _describe(error):
            found.append((raw.line_of(path), _dotted(path), message))
    found.sort(key=lambda item: int(item[0].rsplit(":", 1)[1]))
    return [f"{where}: {key}: {message}" for where, key, message in dict.fromkeys(found)]


def _formats() -> jsonschema.FormatChecker:
    # only the formats declared here: jsonschema's own (uri, email...) stay unchecked
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("ip-network", raises=ValueError)(_is_ip_network)
    checker.checks("host-rule", raises=ValueError)(_is_host_rule)
    return checker


# jsonschema calls format checks for strings and others alike; other types are the type check's
# job. The ValueError's text is the message (``_describe``).
def _is_ip_network(value: object) -> bool:
    if isinstance(value, str):
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(
                f"expected an IP address or network such as 10.0.0.0/8, got {value!r}"
            ) from None
    return True


def _is_host_rule(value: object) -> bool:
    if isinstance(value, str):
        Rules([value])  # a host name, host glob, address or network (devpi_core.outbound)
    return True


def _describe(error: jsonschema.ValidationError) -> list[tuple[list[Any], str]]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        # the stubs type these as unions of every schema form; here they are plain JSON data
        schema: Any = error.schema
        instance: Any = error.instance
        allowed = sorted(schema.get("properties", {}))
        out = []
        for key in instance:
            if key in allowed:
                continue
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            suggestion = (
                f"did you mean {hint[0]!r}?" if hint else f"expected one of: {', '.join(allowed)}"
            )
            out.append(([*path, key], f"unknown key; {suggestion}"))
        return out
    return [(path, _message(error))]


def _message(error: jsonschema.ValidationError) -> str:
    schema: Any = error.schema
    if error.validator == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return f"expected {wanted}, got {error.instance!r}"
    if error.validator == "enum":
        choices = ", ".join(repr(c) for c in cast("list[Any]", error.validator_value))
        return f"expected one of {choices}, got {error.instance!r}"
    if error.validator == "required" and isinstance(schema, Mapping) and schema.get("description"):
        return f"{error.message}: {schema['description']}"
    if error.validator == "format" and error.cause is not None:
        return str(error.cause)
    if error.validator == "anyOf" and schema is SIZE_SCHEMA:
        return f"expected a size such as 1048576 or '64M', got {error.instance!r}"
    return error.message


def _merged(defaults: Mapping[str, Any], given: Any) -> dict[str, Any]:
    result = dict(defaults)
    if isinstance(given, Mapping):
        result.update({key: _plain(value) for key, value in given.items()})
    return result


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def from_mapping(data: Mapping[str, Any], plugins: Plugins, source: str | None = None) -> Settings:
    """Build :class:`Settings` from validated data, filling defaults."""
    given_plugins = data.get("plugins") or {}
    declared = plugins.config_sections()
    sections = {
        name: MappingProxyType(_merged(spec.defaults, given_plugins.get(name)))
        for name, spec in declared.items()
    }
    typed: dict[str, object] = {
        name: build(spec.settings, sections[name])
        for name, spec in declared.items()
        if spec.settings is not None
    }
    return Settings(
        server=build(ServerSettings, _merged({}, data.get("server"))),
        logging=build(LoggingSettings, _merged({}, data.get("logging"))),
        storage=build(StorageSettings, _merged({}, data.get("storage"))),
        enabled=tuple(given_plugins.get("enabled", ())),
        disabled=tuple(given_plugins.get("disabled", ())),
        plugins=MappingProxyType(sections),
        source=source,
        typed=MappingProxyType(typed),
    )


def load_raw(path: str | None) -> RawConfig | None:
    """Read and resolve the file at ``path`` (None: no file, defaults only)."""
    if path is None:
        return None
    raw = read_yaml(path)
    errors = resolve_secrets(raw)
    if errors:
        raise ConfigError(errors)
    return raw


def settings_for(
    raw: RawConfig | None, plugins: Plugins, known_plugins: Sequence[str] = ()
) -> Settings:
    """Validate ``raw`` against the active plugins and build :class:`Settings`."""
    if raw is None:
        settings = from_mapping({}, plugins)
    else:
        errors = validate(raw, plugins, known_plugins)
        if errors:
            raise ConfigError(errors)
        settings = from_mapping(raw.data, plugins, raw.source)
    errors = section_problems(raw, settings)
    if errors:
        raise ConfigError(errors)
    return settings


def section_problems(raw: RawConfig | None, settings: Settings) -> list[str]:
    """What a plugin section's own ``problems()`` finds once its keys are valid one by one:
    rules across keys, or limits of the machine (``file:line: plugins.<name>.<key>: message``).

    A section dataclass may define ``problems(self) -> list[tuple[str, str]]``, each pair a key
    of the section and a message; the schema cannot say these.
    """
    found: list[str] = []
    for name, section in settings.typed.items():
        check = getattr(section, "problems", None)
        if not callable(check):
            continue
        for key, message in check():
            where = f"{raw.line_of(['plugins', name, key])}: " if raw is not None else ""
            found.append(f"{where}plugins.{name}.{key}: {message}")
    return found
