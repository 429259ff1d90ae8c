"""The policy's index keys, how their values are read, and the rules an index's config holds."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from devpi_core.specs import IndexKey

if TYPE_CHECKING:
    from collections.abc import Mapping

ENFORCE = "enforce"
DRY_RUN = "dry_run"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_ISO_DURATION = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$",
    re.IGNORECASE,
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str) -> float:
    """Seconds of ``3d``, ``72h``, ``90m``, ``2w`` or ISO 8601 ``P3D``/``PT12H``."""
    text = value.strip()
    match = _DURATION.match(text)
    if match:
        return float(match.group(1)) * _UNITS[match.group(2).lower()]
    iso = _ISO_DURATION.match(text)
    if iso and text.upper() not in ("P", "PT") and any(iso.groupdict().values()):
        parts = {k: int(v or 0) for k, v in iso.groupdict().items()}
        return float(
            parts["w"] * _UNITS["w"] + parts["d"] * _UNITS["d"] + parts["h"] * _UNITS["h"]
            + parts["m"] * _UNITS["m"] + parts["s"]
        )
    raise ValueError(f"expected a duration like 3d, 72h or P3D, got {value!r}")


def parse_time(value: str) -> float:
    """A POSIX timestamp of an ISO 8601 date or time (UTC unless it names a zone)."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(
            f"expected an ISO 8601 date or time like 2026-11-01 or 2026-11-01T12:00:00Z, "
            f"got {value!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def iso(timestamp: float) -> str:
    """``2026-11-03T12:00:00Z``."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_duration(value: Any) -> str:
    parse_duration(str(value))
    return str(value).strip()


def _check_time(value: Any) -> str:
    return iso(parse_time(str(value)))


def _check_requirement(value: Any) -> str:
    try:
        return str(Requirement(str(value)))
    except InvalidRequirement as exc:
        raise ValueError(f"invalid requirement {value!r}: {exc}") from None


def _check_glob(value: Any) -> str:
    text = str(value).strip().lower()
    if not text or not re.fullmatch(r"[a-z0-9._*?\[\]!-]+", text):
        raise ValueError(f"expected a project name or glob, got {value!r}")
    return re.sub(r"[-_.]+", "-", text)


@dataclass(frozen=True)
class Waiver:
    """``name==version`` let through despite the age rules, until ``expires`` (if given)."""

    project: str
    version: str
    expires: float | None


def parse_waiver(value: str) -> Waiver:
    """``name==version`` or ``name==version@2026-12-31``."""
    text, _sep, until = value.strip().partition("@")
    name, sep, version = text.partition("==")
    if not sep or not name.strip() or not version.strip() or "=" in version:
        raise ValueError(f"expected name==version or name==version@date, got {value!r}")
    try:
        canonical = str(Version(version.strip()))
    except InvalidVersion:
        raise ValueError(f"invalid version in waiver {value!r}") from None
    return Waiver(
        canonicalize_name(name.strip()), canonical, parse_time(until) if until else None
    )


def _check_waiver(value: Any) -> str:
    waiver = parse_waiver(str(value))
    text = f"{waiver.project}=={waiver.version}"
    return f"{text}@{iso(waiver.expires)}" if waiver.expires is not None else text


KEYS = (
    IndexKey("min_release_age", "str", check=_check_duration,
             help="hold versions younger than this (3d, 72h, P3D), by upstream upload time"),
    IndexKey("exclude_newer", "str", check=_check_time,
             help="serve nothing uploaded after this time (a frozen view)"),
    IndexKey("deny", "list", check=_check_requirement,
             help="requirements (evil-pkg, foo==1.2, foo>=3) never served"),
    IndexKey("allow", "list", check=_check_requirement,
             help="when not empty, only what these requirements name is served"),
    IndexKey("policy_exempt", "list", check=_check_glob,
             help="project names or globs the age rules skip"),
    IndexKey("waivers", "list", check=_check_waiver,
             help="name==version[@expiry] let through despite the age rules"),
    IndexKey("policy_mode", "choice", choices=(ENFORCE, DRY_RUN),
             help="enforce (default) or dry_run: serve everything, audit what would be held"),
    IndexKey("policy_age_own_files", "bool",
             help="apply the age rules to files uploaded or pushed to the index too "
                  "(default: only to what it serves from mirrors)"),
    IndexKey("missing_upload_time", "choice", choices=("hold", "allow"),
             help="age rules and a mirror file without upload time: hold (default) or allow"),
)
KEY_NAMES = tuple(key.name for key in KEYS if key.name not in ("policy_mode",))


@dataclass(frozen=True)
class Rules:
    """What one index's configuration asks of the policy."""

    index: str
    min_age: float | None
    exclude_newer: float | None
    deny: tuple[Requirement, ...]
    allow: tuple[Requirement, ...]
    exempt: tuple[str, ...]
    waivers: tuple[Waiver, ...]
    dry_run: bool
    own_files: bool
    missing_allowed: bool

    @property
    def has_age_rules(self) -> bool:
        """Whether a version's upload time matters."""
        return self.min_age is not None or self.exclude_newer is not None

    def is_exempt(self, project: str) -> bool:
        """Whether ``project`` skips the age rules."""
        return any(fnmatch.fnmatchcase(project, pattern) for pattern in self.exempt)


def rules_of(index: str, config: Mapping[str, Any]) -> Rules | None:
    """The rules of an index configuration (stored values are valid), None if it has none."""
    if not any(config.get(name) for name in ("min_release_age", "exclude_newer", "deny", "allow")):
        return None
    age = config.get("min_release_age")
    newer = config.get("exclude_newer")
    return Rules(
        index=index,
        min_age=parse_duration(age) if age else None,
        exclude_newer=parse_time(newer) if newer else None,
        deny=tuple(Requirement(r) for r in config.get("deny") or ()),
        allow=tuple(Requirement(r) for r in config.get("allow") or ()),
        exempt=tuple(config.get("policy_exempt") or ()),
        waivers=tuple(parse_waiver(w) for w in config.get("waivers") or ()),
        dry_run=config.get("policy_mode") == DRY_RUN,
        own_files=bool(config.get("policy_age_own_files")),
        missing_allowed=config.get("missing_upload_time") == "allow",
    )
