"""The legacy upload API: ``POST /<user>/<index>/`` with ``:action`` file_upload, submit,
doc_upload (twine, ``setup.py upload``, devpi-client, uv publish)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from devpi_core import services
from devpi_core.blobs import BlobIngest
from devpi_core.errors import BadRequest, NotFound, PayloadTooLarge
from devpi_core.model.names import (
    check_filename,
    check_project,
    check_version,
    filename_version_matches,
    version_sort_key,
)
from devpi_core.records import UploadEvent

from devpi_core_stages import archives, layout
from devpi_core_stages.docs import check_doczip
from devpi_core_stages.stage import DOCZIP, RELEASE, StageIndex, log_entry

if TYPE_CHECKING:
    from pyramid.request import Request

METADATA_KEYS = (
    "name", "version", "metadata_version", "summary", "home_page", "author", "author_email",
    "maintainer", "maintainer_email", "license", "description", "keywords", "platform",
    "classifiers", "download_url", "supported_platform", "comment", "provides", "requires",
    "obsoletes", "project_urls", "provides_dist", "obsoletes_dist", "requires_dist",
    "requires_external", "requires_python", "description_content_type", "provides_extras",
    "dynamic", "license_expression", "license_file",
)
LIST_KEYS = frozenset((
    "platform", "classifiers", "supported_platform", "provides", "requires", "obsoletes",
    "project_urls", "provides_dist", "obsoletes_dist", "requires_dist", "requires_external",
    "provides_extras", "dynamic", "license_file",
))


@dataclass
class Outcome:
    """What an upload did: ``stored`` False means an identical file was already there."""

    stored: bool
    reason: str = "OK"


def utc_iso(seconds: float) -> str:
    """PEP 700 ``upload-time``: ISO 8601 in UTC with microseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1e6):06d}Z"


def form_metadata(form: Mapping[str, Any]) -> dict[str, Any]:
    """devpi's metadata keys from an upload form; ``UNKNOWN`` means empty."""
    metadata: dict[str, Any] = {}
    for key in METADATA_KEYS:
        if key in LIST_KEYS:
            values = [v for v in form.getall(key) if isinstance(v, str) and v != "UNKNOWN"]  # type: ignore[attr-defined]
            metadata[key] = values
        else:
            value = form.get(key, "")
            metadata[key] = "" if not isinstance(value, str) or value == "UNKNOWN" else value
    return metadata


def stage_of(request: Request, record: Any) -> StageIndex:
    """The stage object of ``record``; 404 if the index does not take uploads."""
    itype = services.indexes(request).type_of(record)
    if not isinstance(itype, StageIndex):
        raise NotFound(f"cannot upload to {record.fullname}: it is a {record.type} index")
    return itype


def validated_name_version(form: Mapping[str, Any], *, need_version: bool = True) -> tuple[str, str, str]:
    """``(display name, normalized name, version)`` from the form, or a 400."""
    name = form.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest("invalid metadata: missing 'name'")
    project = check_project(name)
    version = form.get("version") or ""
    if not isinstance(version, str):
        raise BadRequest("invalid metadata: 'version' must be text")
    if need_version and not version:
        raise BadRequest("invalid metadata: missing 'version'")
    if version:
        check_version(version)
    return name, project, version


def content_field(form: Mapping[str, Any]) -> tuple[str, BinaryIO]:
    """The uploaded file's name and stream, or a 400."""
    content = form.get("content")
    if content is None or not hasattr(content, "file") or not getattr(content, "filename", None):
        raise BadRequest("missing file field 'content'")
    return str(content.filename).replace("\\", "/").rsplit("/", 1)[-1], content.file


def ingest(request: Request, stream: BinaryIO) -> BlobIngest:
    """Copy the upload into a temp blob (hashing, with the size limit)."""
    env = services.indexes(request).env
    blob = BlobIngest(services.blob_store(request), env.tmpdir, limit=env.max_upload_size)
    try:
        blob.write_from(stream)
    except PayloadTooLarge:
        blob.discard()
        raise
    return blob


def file_upload(request: Request, stage: StageIndex, form: Mapping[str, Any], who: str | None) -> Outcome:
    """Store a release file, creating or updating its version's metadata."""
    display, project, version = validated_name_version(form, need_version=False)
    filename, stream = content_field(form)
    check_filename(filename)
    if not version:
        raise BadRequest("invalid metadata: missing 'version'")
    if not filename_version_matches(filename, display, version):
        raise BadRequest(f"filename {filename!r} does not match project {display!r} version {version!r}")
    with ingest(request, stream) as blob:
        with blob.reader() as f:
            archives.check_archive(filename, f)
            raw_metadata = archives.wheel_metadata(filename, f)
        metadata = form_metadata(form)
        now = time.time()
        rec: dict[str, Any] = {
            "filename": filename, "rel": RELEASE, "size": blob.size,
            "upload_time": utc_iso(now), "last_modified": now,
            "requires_python": metadata.get("requires_python") or None,
            "log": [log_entry("upload", who, stage.name)],
        }
        core = _store_metadata(request, raw_metadata) if raw_metadata else None
        if core is not None:
            rec["core_metadata"] = core
            if not rec["requires_python"]:
                rec["requires_python"] = archives.metadata_fields(raw_metadata or b"").get("requires_python")
        sha256 = blob.commit()
    rec.update(sha256=sha256, hashes={"sha256": sha256},
               relpath=layout.hashdir_relpath(stage.name, sha256, filename))
    with stage.env.store.write() as tx:
        existing = tx.get(layout.version_key(stage.name, project, version))
        merged = metadata if existing is None else {k: v for k, v in metadata.items() if v not in ("", [])}
        stage.set_metadata(tx, project, version, {**merged, "name": display, "version": version},
                           display_name=display)
        stored = stage.add_file(tx, project, version, rec, overwrite_who=who)
    if not stored:
        return Outcome(False, "Upload of identical file to non volatile index.")
    _emit(request, stage, project, version, filename, RELEASE, who)
    return Outcome(True)


def _store_metadata(request: Request, raw: bytes) -> dict[str, str]:
    env = services.indexes(request).env
    with BlobIngest(services.blob_store(request), env.tmpdir) as blob:
        blob.write(raw)
        digest = blob.commit()
    return {"sha256": digest}


def submit(request: Request, stage: StageIndex, form: Mapping[str, Any], who: str | None) -> Outcome:
    """Register (or overwrite) a version's metadata without a file."""
    display, project, version = validated_name_version(form)
    metadata = {**form_metadata(form), "name": display, "version": version}
    with stage.env.store.write() as tx:
        stage.set_metadata(tx, project, version, metadata, display_name=display)
    return Outcome(True)


def doc_upload(request: Request, stage: StageIndex, form: Mapping[str, Any], who: str | None) -> Outcome:
    """Store a documentation zip for a version (the newest one if none is given)."""
    display, project, version = validated_name_version(form, need_version=False)
    _filename, stream = content_field(form)
    if not version:
        versions = sorted(stage.versions(project), key=version_sort_key)
        if not versions:
            raise BadRequest(f"no version of {display!r} on {stage.name} to attach docs to")
        version = versions[-1]
    filename = f"{project}-{version}.doc.zip"
    with ingest(request, stream) as blob:
        with blob.reader() as f:
            check_doczip(f)
        now = time.time()
        sha256 = blob.commit()
        size = blob.size
    rec = {
        "filename": filename, "rel": DOCZIP, "size": size, "upload_time": utc_iso(now),
        "last_modified": now, "sha256": sha256, "hashes": {"sha256": sha256},
        "relpath": layout.hashdir_relpath(stage.name, sha256, filename),
        "log": [log_entry("upload", who, stage.name)],
    }
    with stage.env.store.write() as tx:
        if tx.get(layout.version_key(stage.name, project, version)) is None:
            stage.set_metadata(tx, project, version, {"name": display, "version": version},
                               display_name=display)
        stored = stage.add_file(tx, project, version, rec, overwrite_who=who)
    if not stored:
        return Outcome(False, "Upload of identical file to non volatile index.")
    _emit(request, stage, project, version, filename, DOCZIP, who)
    return Outcome(True)


def _emit(request: Request, stage: StageIndex, project: str, version: str, filename: str,
          rel: str, who: str | None) -> None:
    serial = stage.env.store.current_serial()
    stage.env.emit(UploadEvent(stage.name, project, version, filename, rel, who, serial))


ACTIONS = {"file_upload": file_upload, "submit": submit, "doc_upload": doc_upload}
