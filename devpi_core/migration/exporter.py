"""``devpi-core export DUMPDIR``: devpi-server's dump format (version 2), read by ``devpi-import``.

Files are laid out as ``devpi-export`` lays them out (``user/index/<project>/<version>/<file>``,
``user/index/<project>-<version>.doc.zip``, ``user/index/<project>/<release hash>/<toxresult>``).
devpi-core's additions travel where ``devpi-import`` keeps or ignores them: ``yanked`` in the
version data, ``acl_read`` and policy keys in the index configuration (kept as unknown keys),
PEP 700 ``upload_time`` and ``size`` in each file's ``entrymapping``. A devpi-core import of
this export restores all of them. Mirror indexes are exported with their configuration only,
unless ``--include-mirrored-files`` asks for their cached files too (as ``devpi-export`` writes
them: release files with the upstream ``url`` in their entrymapping).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from devpi_core import __version__
from devpi_core.indextypes import verdata_links
from devpi_core.migration.dump import DATAINDEX, DumpError
from devpi_core.migration.importer import Summary
from devpi_core.pwhashes import split_legacy
from devpi_core.records import IndexRecord

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from devpi_core.bootstrap import Core
    from devpi_core.indextypes import FileRef, IndexType
    from devpi_core.migration.progress import Phase, Progress

DUMPVERSION = "2"


def export_user(name: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """A user as devpi-export writes it: the hash, salted ones split into pwhash and pwsalt."""
    data = {key: value for key, value in record.items() if key != "pwhash"}
    data["username"] = name
    pwhash = record.get("pwhash")
    if isinstance(pwhash, str):
        legacy = split_legacy(pwhash)
        if legacy is not None:
            data["pwsalt"], data["pwhash"] = legacy
        else:
            data["pwhash"] = pwhash
    return data


def export_dump(
    core: Core, root: Path, *, progress: Progress, include_mirrored_files: bool = False
) -> Summary:
    """Write everything in ``core``'s stores to ``root`` (which must not exist or be empty);
    mirrors' cached files only with ``include_mirrored_files``."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise DumpError(f"export directory {root} must not exist or be empty")
    root.mkdir(parents=True, exist_ok=True)
    summary = Summary()
    users = core.users.all()
    with core.store.read() as tx:
        configs = {key.split(":", 1)[1]: dict(value) for key, value in tx.items("index:")}
    data: dict[str, Any] = {
        "dumpversion": DUMPVERSION,
        "pythonversion": list(sys.version_info),
        "devpi_server": f"devpi-core {__version__}",
        "users": {name: export_user(name, record) for name, record in users.items()},
        "indexes": {},
    }
    summary.users = len(users)
    with progress.phase("export", len(configs), unit="index") as phase:
        for fullname, config in sorted(configs.items()):
            user, name = fullname.split("/", 1)
            record = IndexRecord(user, name, config)
            entry: dict[str, Any] = {"indexconfig": config}
            if core.indexes.spec(record) is not None and not core.indexes.is_mirror(record):
                entry["projects"], entry["files"] = {}, []
                _export_index(core.indexes.type_of(record), root, entry, summary, phase)
            elif core.indexes.spec(record) is not None and include_mirrored_files:
                entry["projects"], entry["files"] = {}, []
                _export_mirror(core.indexes.type_of(record), root, entry, summary, phase)
            data["indexes"][fullname] = entry
            summary.indexes += 1
            phase.advance()
    with (root / DATAINDEX).open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    summary.seconds = progress.elapsed()
    return summary


def _export_index(
    index: IndexType, root: Path, entry: dict[str, Any], summary: Summary, phase: Phase
) -> None:
    for project in sorted(index.project_names()):
        versions = index.versions(project)
        entry["projects"][project] = {
            version: {k: v for k, v in verdata.items() if not k.startswith("+")}
            for version, verdata in versions.items()
        }
        summary.projects += 1
        for version, verdata in versions.items():
            links = sorted(verdata_links(verdata), key=lambda link: link["rel"] == "toxresult")
            for link in links:
                filedesc = _export_file(index, root, project, version, link)
                if filedesc is not None:
                    entry["files"].append(filedesc)
                    summary.files += 1
                    summary.nbytes += int(filedesc["entrymapping"].get("size") or 0)
                    phase.advance(0, int(filedesc["entrymapping"].get("size") or 0))


def _export_file(
    index: IndexType, root: Path, project: str, version: str, link: Mapping[str, Any]
) -> dict[str, Any] | None:
    ref = index.get_file(str(link["relpath"]))
    if ref is None or ref.sha256 is None or not index.env.blobs.exists(ref.sha256):
        raise DumpError(f"index {index.name}: the file of {link['relpath']} is missing")
    rel = str(link["rel"])
    base = f"{index.name}"
    if rel == "doczip":
        relpath = f"{base}/{project}-{version}.doc.zip"
    elif rel == "toxresult":
        release = str(link.get("for_relpath", ""))
        sha = release.split("/+f/", 1)[-1]
        release_ref = index.get_file(release)
        spec = f"sha256={release_ref.sha256}" if release_ref else sha.replace("/", "")
        relpath = f"{base}/{project}/{spec}/{ref.filename}"
    else:
        relpath = f"{base}/{project}/{version}/{ref.filename}"
    target = root / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    with index.env.blobs.open(ref.sha256) as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    mapping: dict[str, Any] = {"hashes": {**ref.hashes, "sha256": ref.sha256},
                               "size": target.stat().st_size}
    if ref.last_modified is not None:
        mapping["last_modified"] = formatdate(ref.last_modified, usegmt=True)
    if ref.meta.get("last_modified"):
        mapping["upload_time"] = ref.meta["last_modified"]  # the stage's PEP 700 time
    filedesc: dict[str, Any] = {
        "type": rel, "projectname": project, "version": version, "relpath": relpath,
        "entrymapping": mapping, "log": list(link.get("log") or []),
    }
    if rel == "toxresult":
        filedesc["for_entrypath"] = str(link.get("for_relpath"))
    return filedesc


def _export_mirror(
    index: IndexType, root: Path, entry: dict[str, Any], summary: Summary, phase: Phase
) -> None:
    """A mirror's cached files, laid out and described as ``devpi-export`` does."""
    by_project: dict[str, list[FileRef]] = {}
    for ref in index.cached_files():
        if ref.version:  # devpi-import needs a version for every file
            by_project.setdefault(ref.project, []).append(ref)
    now = time.time()
    for project, refs in sorted(by_project.items()):
        known = index.versions(project)
        versions: dict[str, dict[str, Any]] = entry["projects"].setdefault(project, {})
        for ref in refs:
            assert ref.version is not None
            assert ref.sha256 is not None
            verdata = known.get(ref.version) or {"name": project, "version": ref.version}
            versions[ref.version] = {k: v for k, v in verdata.items() if not k.startswith("+")}
            relpath = f"{index.name}/{project}/{ref.version}/{ref.filename}"
            target = root / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            with index.env.blobs.open(ref.sha256) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            size = target.stat().st_size
            entry["files"].append({
                "type": "releasefile", "projectname": project, "version": ref.version,
                "relpath": relpath, "log": [],
                "entrymapping": {
                    "hashes": {**ref.hashes, "sha256": ref.sha256}, "size": size,
                    "url": str(ref.meta.get("url", "")),
                    "last_modified": formatdate(ref.last_modified or now, usegmt=True),
                },
            })
            summary.files += 1
            summary.nbytes += size
            phase.advance(0, size)
        summary.projects += 1
