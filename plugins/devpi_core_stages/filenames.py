"""Release filenames and metadata: which project and version a file says it is.

An upload or a push stores a file under the project and version of its form (or its source
version). The filename and the metadata inside the archive must name the same project (PEP 503
normalized) and version (compared as PEP 440 versions when both are valid), as on PyPI; before,
the form's version only had to occur somewhere in the filename, and a wheel whose METADATA named
another project was stored (and served to pip as ``.metadata``) all the same.

Filenames are limited to the characters wheel and sdist names use, so that every link to them
works unquoted: ``%``, ``#``, ``?``, spaces, slashes and non-ASCII letters broke links.
"""

from __future__ import annotations

import re
from email.parser import BytesParser

from packaging.version import InvalidVersion, Version

from devpi_core.errors import BadRequest
from devpi_core.model.names import check_filename, normalize

# letters, digits and what versions need: local versions (+), epochs (!), legacy tildes
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!~-]*")
# formats named <name>-<version><suffix>: the name/version split must be exact
SDIST_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".zip")
# legacy binary formats (bdist_egg, bdist_wininst, bdist_msi, bdist_rpm...): <name>-<version>
# followed by '-' or '.' and platform tags
LEGACY_SUFFIXES = (".egg", ".exe", ".msi", ".rpm", ".deb", ".dmg", ".bz2")


def same_version(a: str, b: str) -> bool:
    """Whether two version strings mean the same version (PEP 440 when both are valid)."""
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def check_release_filename(filename: str, name: str, version: str) -> None:
    """Raise a 400 unless ``filename`` is a release file of project ``name`` at ``version``."""
    check_filename(filename)
    if not _SAFE.fullmatch(filename):
        raise BadRequest(
            f"invalid filename {filename!r}: use only letters, digits and '.', '_', '-', '+', "
            "'!' or '~' (as wheel and sdist names do)"
        )
    lower = filename.lower()
    if lower.endswith(".whl"):
        candidates = _wheel_candidates(filename)
    elif lower.endswith(SDIST_SUFFIXES):
        stem = filename[: -len(next(s for s in SDIST_SUFFIXES if lower.endswith(s)))]
        candidates = _splits(stem)
    else:
        candidates = _legacy_candidates(filename)
    project = normalize(name)
    versions = [found for found_name, found in candidates if normalize(found_name) == project]
    if not versions:
        raise BadRequest(f"filename {filename!r} does not match project name {name!r}")
    if not any(same_version(found, version) for found in versions):
        raise BadRequest(f"filename {filename!r} does not contain version {version!r}")


def _splits(stem: str) -> list[tuple[str, str]]:
    """Every ``(name, version)`` a ``-`` in ``stem`` could separate (names may contain ``-``)."""
    return [(stem[:i], stem[i + 1 :]) for i, ch in enumerate(stem) if ch == "-"]


def _wheel_candidates(filename: str) -> list[tuple[str, str]]:
    # PEP 427: name-version(-build)?-python-abi-platform.whl; '-' inside a part is escaped as
    # '_' (older tools escaped a version's '-' that way too: 1.0_1 is 1.0-1)
    parts = filename[: -len(".whl")].split("-")
    if len(parts) not in (5, 6) or (len(parts) == 6 and not parts[2][:1].isdigit()):
        raise BadRequest(
            f"invalid wheel filename {filename!r}: expected "
            "name-version(-build)-python-abi-platform.whl (PEP 427)"
        )
    return [(parts[0], parts[1].replace("_", "-"))]


def _legacy_candidates(filename: str) -> list[tuple[str, str]]:
    # name-version, then tags after '-' or after '.' and a letter ("pkg-1.0-py3.8.egg",
    # "pkg-1.0.win32.exe", "pkg-1.0-1.noarch.rpm"): so pkg-1.5.exe is 1.5, never 1
    stem = filename.rsplit(".", 1)[0]
    found = []
    for name, rest in _splits(stem):
        ends = [
            i
            for i, ch in enumerate(rest)
            if ch == "-" or (ch == "." and rest[i + 1 : i + 2].isalpha())
        ]
        found += [(name, rest[:end].replace("_", "-")) for end in [*ends, len(rest)]]
    return found


def check_metadata(filename: str, raw: bytes | None, name: str, version: str) -> None:
    """Raise a 400 if the archive's METADATA/PKG-INFO names another project or version."""
    if not raw:
        return
    headers = BytesParser().parsebytes(raw, headersonly=True)
    found_name = str(headers.get("Name") or "").strip()
    found_version = str(headers.get("Version") or "").strip()
    # distutils wrote UNKNOWN for what setup() was not given
    if found_name not in ("", "UNKNOWN") and normalize(found_name) != normalize(name):
        raise BadRequest(f"metadata of {filename} names project {found_name!r}, not {name!r}")
    if found_version not in ("", "UNKNOWN") and not same_version(found_version, version):
        raise BadRequest(f"metadata of {filename} names version {found_version!r}, not {version!r}")
