"""Name rules: users, indexes, projects, versions and filenames.

Every name that comes from a request is checked here before it is used in a key or a path.
"""

from __future__ import annotations

import contextlib
import re

from packaging.version import InvalidVersion, Version

from devpi_core.errors import BadRequest

_NORMALIZE_RE = re.compile(r"[^A-Za-z0-9]+")
# devpi's rule for user and index names: no control characters, no space, none of these.
_FORBIDDEN_IN_NAMES = set("!\"#$%&'()*+,/:;<=>?[\\]^`{|}~ ")
_PROJECT_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_VERSION_BAD = set('<>%#"/\\') | {" ", "\t", "\n", "\r", "\x00"}
ARCHIVE_SUFFIXES = (
    ".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz", ".zip", ".whl", ".egg", ".exe", ".msi",
    ".rpm", ".deb", ".dmg", ".bz2",
)
MAX_NAME = 200


def normalize(name: str) -> str:
    """PEP 503 normalization, as devpi does it: runs of non-alphanumerics become ``-``."""
    return _NORMALIZE_RE.sub("-", name).lower()


def is_valid_name(name: str) -> bool:
    """Whether ``name`` is acceptable as a user or index name."""
    return (
        0 < len(name) <= MAX_NAME
        and name not in (".", "..")
        and not name.startswith("+")
        and not any(ch in _FORBIDDEN_IN_NAMES or ord(ch) < 32 or ord(ch) == 127 for ch in name)
    )


def check_name(kind: str, name: str) -> str:
    """Return ``name`` or raise a 400 saying what is wrong with it."""
    if not is_valid_name(name):
        raise BadRequest(f"invalid {kind} name {name!r}: use letters, digits, '.', '-' or '_'")
    return name


def check_project(name: str) -> str:
    """Return the normalized project name or raise a 400."""
    if not (0 < len(name) <= MAX_NAME) or not _PROJECT_RE.match(name) or not name.isascii():
        raise BadRequest(f"invalid project name {name!r}")
    return normalize(name)


def check_version(version: str) -> str:
    """Return ``version`` if it can be stored (PEP 440 or a legacy string) or raise a 400."""
    if not version or len(version) > MAX_NAME or any(ch in _VERSION_BAD for ch in version):
        raise BadRequest(f"invalid version {version!r}")
    if version in (".", "..") or not version.isascii() or not version.isprintable():
        raise BadRequest(f"invalid version {version!r}")
    return version


def check_filename(filename: str) -> str:
    """Return ``filename`` if it is a plain archive name or raise a 400 (no paths, no NUL)."""
    if (
        not filename
        or len(filename) > 255
        or "/" in filename
        or "\\" in filename
        or "\x00" in filename
        or filename.startswith(".")
        or not filename.isprintable()
    ):
        raise BadRequest(f"invalid filename {filename!r}")
    if not filename.lower().endswith(ARCHIVE_SUFFIXES):
        raise BadRequest(f"{filename!r} is not a valid archive name")
    return filename


def version_sort_key(version: str) -> tuple[int, Version | str]:
    """Sort PEP 440 versions by their meaning, others after them by text."""
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def is_prerelease(version: str) -> bool:
    """Whether ``version`` is a pre-release or dev release (non-PEP-440 counts as one)."""
    try:
        return Version(version).is_prerelease
    except InvalidVersion:
        return True


def filename_version_matches(filename: str, project: str, version: str) -> bool:
    """Whether an uploaded ``filename`` belongs to ``project`` and carries ``version``.

    Compares normalized forms, so ``Foo_Bar-1.0.tar.gz`` matches project ``foo-bar`` and wheel
    escaping (``1.0-1`` as ``1.0_1``) is understood.
    """
    base = filename
    for suffix in ARCHIVE_SUFFIXES:
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    norm_base = normalize(base)
    norm_project = normalize(project)
    if not (norm_base == norm_project or norm_base.startswith(norm_project + "-")):
        return False
    escaped = {version, version.replace("-", "_"), normalize(version)}
    with contextlib.suppress(InvalidVersion):
        escaped.add(str(Version(version)))
    rest = base[len(project):] if base.lower().startswith(project.lower()) else base
    return any(v in rest or normalize(v) in normalize(rest) for v in escaped)


def project_candidates(filename: str) -> list[str]:
    """Normalized project names ``filename`` could belong to, longest first.

    ``foo_bar-1.0-py3-none-any.whl`` -> ``foo-bar``; ``a-b-1.0.tar.gz`` -> ``a-b-1-0-tar``,
    ..., ``a-b``, ``a``: callers try each against what they store.
    """
    parts = filename.split("-")
    if filename.endswith(".whl"):
        return [normalize(parts[0])]
    return [normalize("-".join(parts[:i])) for i in range(len(parts) - 1, 0, -1)]
