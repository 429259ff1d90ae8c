"""The ``plugins.mirror`` settings, the mirror index keys and the default upstream URL."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from devpi_core.errors import StartupError
from devpi_core.outbound import origin
from devpi_core.specs import ConfigSection, IndexKey, setting, size_setting

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
    IndexKey(
        "mirror_keep_removed",
        "bool",
        default=False,
        help="keep serving cached files the upstream page no longer lists (at their old URL; "
        "they are not linked again); files of quarantined projects are never served",
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


def _credentials(value: Mapping[str, Mapping[str, Any]] | None) -> Mapping[str, Credential]:
    return MappingProxyType(
        {
            index.strip("/"): Credential(
                str(cred["url"]), str(cred["username"]), str(cred["password"])
            )
            for index, cred in (value or {}).items()
        }
    )


@dataclass(frozen=True)
class MirrorSettings:
    """The ``plugins.mirror`` section."""

    init_root_pypi: bool = setting(
        True,
        "create root/pypi (a mirror of default_url) on init",
        {"type": "boolean"},
    )
    default_url: str | None = setting(
        None,
        "upstream of root/pypi; default: the installed pip's default index",
        {"type": ["string", "null"], "pattern": "^https?://"},
    )
    cache_expiry: int = setting(
        1800,
        "default mirror_cache_expiry: seconds a fetched page counts as fresh",
        {"type": "integer", "minimum": 0},
    )
    timeout: float = setting(
        5.0, "seconds to wait for an upstream project page (connect, and each read)", _SECONDS
    )
    list_timeout: float = setting(30.0, "seconds to wait for the upstream project list", _SECONDS)
    file_timeout: float = setting(
        30.0, "seconds to wait for an upstream file (connect, and each read)", _SECONDS
    )
    error_retry: float = setting(
        30.0,
        "seconds to serve a stale page after an upstream failure before asking again",
        {"type": "number", "minimum": 0},
    )
    missing_expiry: float = setting(
        60.0,
        "seconds an upstream 'no such project' is remembered",
        {"type": "number", "minimum": 0},
    )
    verify_before_send: int = size_setting(
        "4M",
        "first downloads up to this size are checked before sending (a bad hash is then a clean "
        "502); larger ones stream while downloading, all but the last byte until size and hashes "
        "check out (else the transfer breaks off)",
    )
    fill_lease_ttl: float = setting(
        10.0,
        "seconds a first download's lease outlives its holder's last heartbeat (renewed every "
        "quarter of it): processes sharing the store wait for the holder instead of fetching "
        "the file too, and take over once a killed holder's lease expired",
        _SECONDS,
    )
    fill_follow_wait: float = setting(
        8.0,
        "seconds a request waits for another process's first download of a file to be stored "
        "before it streams the file from upstream itself without storing it (keep it below "
        "pip's 15 s read timeout)",
        {"type": "number", "minimum": 0},
    )
    max_page_size: int = size_setting("256M", "largest upstream page or project list accepted")
    credentials: Mapping[str, Credential] = setting(
        {},
        "per mirror index ('user/index'): {url, username, password}; sent only to the origin "
        "(scheme, host, port) of url, and only while the index's mirror_url has that origin; "
        "write the password as {env: NAME} or {file: PATH}. Credentials are never stored in the "
        "index configuration",
        {"type": "object", "additionalProperties": _CREDENTIAL},
        convert=_credentials,
    )


CONFIG_SECTION = ConfigSection.declare(SECTION, MirrorSettings)


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
