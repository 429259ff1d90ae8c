"""Writing a project read from a dump (``devpi-core import``) in the stage's own layout.

The blobs are in the blob store already; this writes the version records, the file records
(with their history, the PEP 658 metadata of wheels and tox results tied to their release
file), the filename lookups and the blob references, all in the importer's transaction.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from devpi_core.blobs import BlobIngest
from devpi_core.errors import BadRequest
from devpi_core.model.blobrefs import add_ref
from devpi_core_stages import archives, layout

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from devpi_core.indextypes import RestoredFile
    from devpi_core.interfaces import WriteTransaction
    from devpi_core_stages.stage import StageIndex

RELEASE = "releasefile"
TOXRESULT = "toxresult"


def _core_metadata(stage: StageIndex, restored: RestoredFile) -> str | None:
    """The blob of a wheel's METADATA (served as ``<file>.metadata``), or None."""
    if restored.rel != RELEASE or not restored.filename.lower().endswith(".whl"):
        return None
    with contextlib.closing(stage.env.blobs.open(restored.sha256)) as f:
        try:
            raw = archives.wheel_metadata(restored.filename, f)
        except BadRequest:
            return None  # served without .metadata, as devpi-server would serve it
    if raw is None:
        return None
    with BlobIngest(stage.env.blobs, stage.env.tmpdir) as blob:
        blob.write(raw)
        return blob.commit()


def _record(
    stage: StageIndex, restored: RestoredFile, metadata: Mapping[str, Any]
) -> dict[str, Any]:
    from devpi_core_stages.upload import utc_iso  # noqa: PLC0415 - upload imports the stage

    last_modified = restored.last_modified if restored.last_modified is not None else time.time()
    rec: dict[str, Any] = {
        "filename": restored.filename,
        "rel": restored.rel,
        "size": restored.size,
        "upload_time": restored.upload_time or utc_iso(last_modified),
        "last_modified": last_modified,
        "sha256": restored.sha256,
        "hashes": {**restored.hashes, "sha256": restored.sha256},
        "relpath": layout.hashdir_relpath(stage.name, restored.sha256, restored.filename),
        "log": [dict(entry) for entry in restored.log],
    }
    if restored.rel == RELEASE:
        rec["requires_python"] = metadata.get("requires_python") or None
        core = _core_metadata(stage, restored)
        if core is not None:
            rec["core_metadata"] = {"sha256": core}
    return rec


def restore_project(
    stage: StageIndex,
    tx: WriteTransaction,
    project: str,
    *,
    display_name: str,
    versions: Mapping[str, Mapping[str, Any]],
    files: Sequence[RestoredFile],
) -> None:
    """Write ``project`` with its versions and files (see ``IndexType.restore_project``)."""
    records: dict[str, dict[str, Any]] = {}
    for version, verdata in versions.items():
        metadata = {k: v for k, v in verdata.items() if not k.startswith("+") and k != "yanked"}
        record: dict[str, Any] = {"metadata": metadata, "files": {}}
        if verdata.get("yanked") not in (None, False):
            record["yanked"] = verdata["yanked"]
        records[version] = record
    by_name: dict[str, dict[str, Any]] = {}
    # release files first: a tox result points at its release file's relpath
    for restored in sorted(files, key=lambda f: f.rel == TOXRESULT):
        record = records.setdefault(
            restored.version,
            {"metadata": {"name": display_name, "version": restored.version}, "files": {}},
        )
        rec = _record(stage, restored, record["metadata"])
        if restored.for_filename is not None:
            release = by_name.get(restored.for_filename)
            if release is None:
                raise BadRequest(f"tox result {restored.filename} of {project}: release file "
                                 f"{restored.for_filename} is not in the dump")
            rec["for_relpath"] = release["relpath"]
            rec["relpath"] = f"{release['relpath'].rsplit('/', 1)[0]}/{restored.filename}"
        by_name[restored.filename] = rec
        record["files"][restored.filename] = rec
        owner = f"{stage.name}/{restored.filename}"
        add_ref(tx, stage.env.blobs, restored.sha256, owner, stored=True)
        if rec.get("core_metadata"):
            add_ref(tx, stage.env.blobs, rec["core_metadata"]["sha256"], f"{owner}.metadata",
                    stored=True)
        tx.set(layout.file_key(stage.name, restored.filename), [project, restored.version])
    for version, record in records.items():
        tx.set(layout.version_key(stage.name, project, version), record)
    if tx.get(layout.project_key(stage.name, project)) is None:
        names = dict(tx.get(layout.names_key(stage.name)) or {})
        tx.set(layout.names_key(stage.name), {"changes": int(names.get("changes", 0)) + 1})
    tx.set(layout.project_key(stage.name, project), {"name": display_name, "changes": 1})
