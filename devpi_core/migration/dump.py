"""devpi-server's export format (``devpi-export``), read and normalised; nothing is written here.

A dump is a directory with ``dataindex.json`` and the files it lists. devpi-server 4.x-6.x
write dump version ``"2"``; older ones ``"1"`` (no ``version`` on file entries, md5 hashes,
``hash_spec`` instead of ``hashes``, ``pypi_whitelist`` instead of ``mirror_whitelist``). This
module turns either into :class:`Dump`, as devpi-server's own ``Migrator`` does, and reports
the first structural problem as a :class:`DumpError` naming the item.

``dataindex.json``::

    {"dumpversion": "2", "devpi_server": "6.x", "pythonversion": [...],
     "users": {name: {"pwhash", "pwsalt"?, "email"?, "created"?, "custom_data"?, ...}},
     "indexes": {"user/index": {
        "indexconfig": {"type", "bases", "volatile", "acl_upload", ...},
        "projects": {normalized name: {version: verdata}},
        "files": [{"type": "releasefile"|"doczip"|"toxresult", "projectname", "version",
                   "relpath": path in the dump, "entrymapping": {"hashes", "last_modified",
                   "url"?}, "log": [...], "for_entrypath"?: release of a tox result}]}}}

A mirror index has ``projects`` and ``files`` only in a dump written with
``--include-mirrored-files``; its files carry the upstream ``url`` in their entrymapping and
are laid out as release files are (``user/index/<project>/<version>/<file>``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from typing import Any

from devpi_core.errors import DevpiError
from devpi_core.model.names import check_project, is_valid_name, normalize

DATAINDEX = "dataindex.json"
VERSIONS = ("1", "2")
RELS = ("releasefile", "doczip", "toxresult")
_HASH_RE = re.compile(r"^[0-9a-f]+$")
# hashlib names devpi-server writes in ``hashes`` (and md5 in dump version 1)
HASH_NAMES = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "blake2b")


class DumpError(Exception):
    """The dump cannot be imported; the message names the item."""


@dataclass
class DumpFile:
    """One file entry of an index (``files`` in ``dataindex.json``)."""

    rel: str
    project: str
    version: str
    path: str
    hashes: dict[str, str]
    log: list[dict[str, Any]] | None
    last_modified: float | None = None
    upload_time: str | None = None
    for_filename: str | None = None
    url: str | None = None

    @property
    def filename(self) -> str:
        """The file's name (the last part of its path in the dump)."""
        return PurePosixPath(self.path).name


@dataclass
class DumpIndex:
    """One index: its configuration, projects (``{name: {version: verdata}}``) and files."""

    fullname: str
    config: dict[str, Any]
    projects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    files: list[DumpFile] = field(default_factory=list)

    @property
    def type(self) -> str:
        """The index type (``stage``, ``mirror``, ...)."""
        return str(self.config.get("type", "stage"))


@dataclass
class Dump:
    """A whole dump, normalised to version 2."""

    root: Path
    version: str
    users: dict[str, dict[str, Any]]
    indexes: dict[str, DumpIndex]
    server_version: str = ""


def http_time(value: Any) -> float | None:
    """devpi-server's ``last_modified`` (an HTTP date) as a timestamp; None if absent."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return parsedate_to_datetime(str(value)).timestamp()
    except (TypeError, ValueError):
        raise DumpError(f"unreadable last_modified {value!r}") from None


def read_dump(root: Path) -> Dump:
    """Read and normalise ``root/dataindex.json``; :class:`DumpError` on the first problem."""
    path = root / DATAINDEX
    if not path.is_file():
        raise DumpError(f"{path}: no such file (is {root} a devpi-export directory?)")
    try:
        with path.open(encoding="utf-8") as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DumpError(f"{path}: malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DumpError(f"{path}: expected a JSON object")
    version = str(data.get("dumpversion"))
    if version not in VERSIONS:
        raise DumpError(f"{path}: unknown dump version {data.get('dumpversion')!r} "
                        f"(devpi-core reads {', '.join(VERSIONS)})")
    users = _users(_mapping(data, "users", path))
    indexes = {
        fullname: _index(fullname, value, version, users)
        for fullname, value in _mapping(data, "indexes", path).items()
    }
    for index in indexes.values():
        for base in index.config.get("bases") or ():
            if base not in indexes:
                raise DumpError(f"index {index.fullname}: base index {base!r} is not in the dump")
    return Dump(root, version, users, indexes, str(data.get("devpi_server", "")))


def _users(users: dict[str, Any]) -> dict[str, Any]:
    for name, user in users.items():
        if not is_valid_name(name):
            raise DumpError(f"user {name!r}: invalid user name")
        if not isinstance(user, dict):
            raise DumpError(f"user {name!r}: expected an object")
    return users


def _mapping(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise DumpError(f"{path}: {key!r} must be an object")
    return value


def _index(fullname: str, data: Any, version: str, users: dict[str, Any]) -> DumpIndex:
    user, _, name = fullname.partition("/")
    if not is_valid_name(user) or not is_valid_name(name) or "/" in name:
        raise DumpError(f"index {fullname!r}: invalid index name")
    if user not in users:
        raise DumpError(f"index {fullname}: its user {user!r} is not in the dump")
    if not isinstance(data, dict) or not isinstance(data.get("indexconfig"), dict):
        raise DumpError(f"index {fullname}: no indexconfig")
    config = dict(data["indexconfig"])
    if "pypi_whitelist" in config:  # renamed in devpi-server 3.0
        whitelist = config.pop("pypi_whitelist")
        config.setdefault("mirror_whitelist", whitelist)
    if config.get("uploadtrigger_jenkins") in (None, ""):
        config.pop("uploadtrigger_jenkins", None)
    projects: dict[str, dict[str, dict[str, Any]]] = {}
    for project, versions in (data.get("projects") or {}).items():
        if not isinstance(versions, dict):
            raise DumpError(f"index {fullname}: project {project!r}: expected an object")
        try:
            check_project(project)
        except DevpiError as exc:
            raise DumpError(f"index {fullname}: project {project!r}: {exc.message}") from None
        # older dumps may list one project under several spellings: merge them
        projects.setdefault(normalize(project), {}).update(versions)
    files = [_file(fullname, entry, version) for entry in data.get("files") or ()]
    return DumpIndex(fullname, config, projects, files)


def _file(fullname: str, entry: Any, version: str) -> DumpFile:
    if not isinstance(entry, dict) or not isinstance(entry.get("relpath"), str):
        raise DumpError(f"index {fullname}: a file entry without relpath: {entry!r}")
    relpath = entry["relpath"]
    where = f"index {fullname}: file {relpath}"
    parts = PurePosixPath(relpath).parts
    if PurePosixPath(relpath).is_absolute() or ".." in parts:
        raise DumpError(f"{where}: path leaves the dump directory")
    rel = entry.get("type")
    if rel not in RELS:
        raise DumpError(f"{where}: unknown file type {rel!r}")
    mapping = dict(entry.get("entrymapping") or {})
    hashes = _hashes(mapping, where)
    for_filename = _for_filename(entry, where) if rel == "toxresult" else None
    if for_filename is not None and len(parts) == 5:
        name, _, value = parts[3].partition("=")
        if hashes.get(name) == value:
            hashes.clear()  # devpi-server 6.5-6.8 wrote the release file's hash here
    file_version = entry.get("version")
    if version == "1" and not file_version:
        file_version = _version_from_name(PurePosixPath(relpath).name)
    if not isinstance(file_version, str) or not file_version:
        raise DumpError(f"{where}: no version")
    project = entry.get("projectname")
    if not isinstance(project, str) or not project:
        raise DumpError(f"{where}: no projectname")
    log = entry.get("log")
    try:
        last_modified = http_time(mapping.get("last_modified"))
    except DumpError as exc:
        raise DumpError(f"{where}: {exc}") from None
    return DumpFile(
        rel, project, file_version, relpath, hashes,
        list(log) if isinstance(log, list) else None,
        last_modified=last_modified,
        upload_time=mapping.get("upload_time") if isinstance(mapping.get("upload_time"), str)
        else None,
        for_filename=for_filename,
        url=mapping["url"] if isinstance(mapping.get("url"), str) else None,
    )


def _hashes(mapping: dict[str, Any], where: str) -> dict[str, str]:
    hashes = {str(k): str(v).lower() for k, v in dict(mapping.get("hashes") or {}).items()}
    if "md5" in mapping:  # devpi-server 2.1 exported md5 checksums
        hashes["md5"] = str(mapping["md5"]).lower()
    if mapping.get("hash_spec"):
        name, _, value = str(mapping["hash_spec"]).partition("=")
        hashes[name] = value.lower()
    for name, value in hashes.items():
        if name not in HASH_NAMES or not _HASH_RE.match(value):
            raise DumpError(f"{where}: unreadable hash {name}={value}")
    return hashes


def _for_filename(entry: dict[str, Any], where: str) -> str:
    for_entrypath = entry.get("for_entrypath")
    if not isinstance(for_entrypath, str):
        raise DumpError(f"{where}: tox result without for_entrypath")
    return PurePosixPath(for_entrypath).name


def _version_from_name(filename: str) -> str | None:
    """The version in a dump-version-1 file name (``name-1.0.tar.gz``, ``name-1.0-py3-...``)."""
    stem = re.sub(r"(\.tar\.gz|\.tar\.bz2|\.tgz|\.zip|\.whl|\.egg|\.doc\.zip)$", "", filename)
    parts = stem.split("-")
    return parts[1] if len(parts) > 1 else None
