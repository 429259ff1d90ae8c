"""The ``plugins.mirror`` settings, the mirror index keys and the default upstream URL."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from devpi_core.config import SIZE_SCHEMA, parse_size
from devpi_core.errors import StartupError
from devpi_core.outbound import origin
from devpi_core.specs import ConfigSection, IndexKey

if TYPE_CHECKING:
    from collections.abc import Mapping

SECTION = "mirror"
_SECONDS = {"type": "number", "exclusiveMinimum": 0}
_CREDENTIAL = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url", "username", "password"],
    "properties": {
        "url": {"type": "string", "pattern": "^https?://[^/@]+"},
        "username": {"type": "string"},
        "password": {"type": "string"},
    },
    "description": "url is the upstream the credentials belong to; they are sent only to its "
    "scheme, host and port, and only while the index's mirror_url has that origin",
}
SCHEMA: dict[str, Any] = {
    "init_root_pypi": {"type": "boolean"},
    "default_url": {"type": ["string", "null"], "pattern": "^https?://"},
    "cache_expiry": {"type": "integer", "minimum": 0},
    "timeout": _SECONDS,
    "list_timeout": _SECONDS,
    "file_timeout": _SECONDS,
    "error_retry": {"type": "number", "minimum": 0},
    "missing_expiry": {"type": "number", "minimum": 0},
    "verify_before_send": SIZE_SCHEMA,
    "max_page_size": SIZE_SCHEMA,
    "credentials": {"type": "object", "additionalProperties": _CREDENTIAL},
}
DEFAULTS: dict[str, Any] = {
    "init_root_pypi": True,
    "default_url": None,
    "cache_expiry": 1800,
    "timeout": 5.0,
    "list_timeout": 30.0,
    "file_timeout": 30.0,
    "error_retry": 30.0,
    "missing_expiry": 60.0,
    "verify_before_send": "4M",
    "max_page_size": "256M",
    "credentials": {},
}
HELP = {
    "init_root_pypi": "create root/pypi (a mirror of default_url) on init",
    "default_url": "upstream of root/pypi; default: the installed pip's default index",
    "cache_expiry": "default mirror_cache_expiry: seconds a fetched page counts as fresh",
    "timeout": "seconds to wait for an upstream project page (connect, and each read)",
    "list_timeout": "seconds to wait for the upstream project list",
    "file_timeout": "seconds to wait for an upstream file (connect, and each read)",
    "error_retry": "seconds to serve a stale page after an upstream failure before asking again",
    "missing_expiry": "seconds an upstream 'no such project' is remembered",
    "verify_before_send": "first downloads up to this size are checked before sending (a bad "
    "hash is then a clean 502); larger ones stream while downloading",
    "max_page_size": "largest upstream page or project list accepted",
    "credentials": "per mirror index ('user/index'): {url, username, password}; sent only to the "
    "origin (scheme, host, port) of url, and only while the index's mirror_url has that origin; "
    "write the password as {env: NAME} or {file: PATH}. Credentials are never stored in the "
    "index configuration",
}
CONFIG_SECTION = ConfigSection(SECTION, SCHEMA, DEFAULTS, HELP)

MIRROR_KEYS = (
    IndexKey(
        "mirror_url",
        "url",
        help="the upstream simple index URL (no credentials); its host must pass "
        "server.outbound_allow",
        outbound=True,
    ),
    IndexKey("mirror_cache_expiry", "int", help="seconds a fetched page counts as fresh"),
    IndexKey(
        "mirror_ignore_serial_header",
        "bool",
        default=False,
        help="accept upstream answers whose X-PyPI-Last-Serial went backwards",
    ),
    IndexKey(
        "mirror_no_project_list",
        "bool",
        default=False,
        help="never fetch the upstream project list; list only cached projects",
    ),
    IndexKey(
        "mirror_use_external_urls",
        "bool",
        default=False,
        help="do not cache files: redirect downloads to the upstream URL",
    ),
    IndexKey("mirror_web_url_fmt", "str", help="web page of a project, with {name}"),
    IndexKey("mirror_source", "str", default="simple", help="how to read the upstream"),
    IndexKey("volatile", "bool", default=True, help="allow deleting the index and cached files"),
)


@dataclass(frozen=True)
class Credential:
    """Credentials for one mirror index, bound to the upstream origin they were configured for."""

    url: str
    username: str
    password: str

    def for_url(self, mirror_url: str) -> tuple[str, str] | None:
        """``(username, password)`` if ``mirror_url`` has the configured origin, else None."""
        if origin(mirror_url) != origin(self.url):
            return None
        return self.username, self.password


@dataclass(frozen=True)
class MirrorSettings:
    """The validated ``plugins.mirror`` section."""

    init_root_pypi: bool
    default_url: str | None
    cache_expiry: int
    timeout: float
    list_timeout: float
    file_timeout: float
    error_retry: float
    missing_expiry: float
    verify_before_send: int
    max_page_size: int
    credentials: Mapping[str, Credential]

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> MirrorSettings:
        """Build from the section (defaults filled in by core)."""
        values = {**DEFAULTS, **section}
        values["verify_before_send"] = parse_size(values["verify_before_send"])
        values["max_page_size"] = parse_size(values["max_page_size"])
        values["credentials"] = MappingProxyType(
            {
                index.strip("/"): Credential(
                    str(cred["url"]), str(cred["username"]), str(cred["password"])
                )
                for index, cred in (values["credentials"] or {}).items()
            }
        )
        return cls(**values)


def default_upstream_url() -> str:
    """The simple index URL the installed pip uses by default (the public index)."""
    try:
        from pip._internal.models.index import PyPI  # noqa: PLC0415 - optional, private API
    except ImportError:
        raise StartupError(
            "cannot tell the default upstream index because pip is not importable; "
            "set plugins.mirror.default_url"
        ) from None
    url = getattr(PyPI, "simple_url", None)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise StartupError("pip does not name a default index; set plugins.mirror.default_url")
    return url.rstrip("/") + "/"


def web_url_fmt(simple_url: str) -> str:
    """``https://host/project/{name}/`` for a ``https://host/simple/`` index (devpi's default)."""
    parts = urlsplit(simple_url)
    return f"{parts.scheme}://{parts.netloc}/project/{{name}}/"


def validate_index(config: Mapping[str, Any]) -> list[str]:
    """Problems with a mirror index configuration (each becomes part of a 400)."""
    problems = []
    url = config.get("mirror_url")
    if not url:
        problems.append("mirror_url is required for a mirror index")
    else:
        parts = urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"mirror_url must be an http:// or https:// URL, got {url!r}")
        elif parts.username is not None or parts.password is not None:
            problems.append(
                "mirror_url must not contain credentials (they would be stored and shown); "
                "remove them and configure plugins.mirror.credentials for this index in the "
                "server configuration, with the password as {env: NAME}"
            )
    expiry = config.get("mirror_cache_expiry")
    if expiry is not None and expiry < 0:
        problems.append("mirror_cache_expiry must not be negative")
    return problems
