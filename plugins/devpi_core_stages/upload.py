"""The legacy upload API: ``POST /<user>/<index>/`` with ``:action`` file_upload, submit,
doc_upload (twine, ``setup.py upload``, devpi-client, uv publish)."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from devpi_core import services
from devpi_core.blobs import BlobIngest
from devpi_core.errors import BadRequest, NotFound
from devpi_core.model.names import check_project, check_version, version_sort_key
from devpi_core_stages import archives, filelog, filenames, layout
from devpi_core_stages.docs import check_doczip
from devpi_core_stages.settings import stages_settings
from devpi_core_stages.stage import DOCZIP, RELEASE, StageIndex
from devpi_core_stages.storing import NewBlobs

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyramid.request import Request

METADATA_KEYS = (
    "name",
    "version",
    "metadata_version",
    "summary",
    "home_page",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
    "license",
    "description",
    "keywords",
    "platform",
    "classifiers",
    "download_url",
    "supported_platform",
    "comment",
    "provides",
    "requires",
    "obsoletes",
    "project_urls",
    "provides_dist",
    "obsoletes_dist",
    "requires_dist",
    "requires_external",
    "requires_python",
    "description_content_type",
    "provides_extras",
    "dynamic",
    "license_expression",
    "license_file",
)
LIST_KEYS = archives.MULTI_KEYS
IDENTICAL = "Upload of identical file to non volatile index."
# digests an uploader may send along (twine, devpi-client); checked when present
FORM_DIGESTS = {"sha256_digest": "sha256", "md5_digest": "md5", "blake2_256_digest": "blake2b"}


@dataclass
class Outcome:
    """What an upload did: ``stored`` False means an identical file was already there."""

    stored: bool
    reason: str = "OK"


def utc_iso(seconds: float) -> str:
    """PEP 700 ``upload-time``: ISO 8601 in UTC with microseconds."""
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1e6):06d}Z"
    )


def form_metadata(form: Mapping[str, Any], *, only_given: bool = False) -> dict[str, Any]:
    """devpi's metadata keys from an upload form; ``UNKNOWN`` means empty.

    ``only_given`` leaves out keys the form does not have (instead of defaulting them).
    """
    metadata: dict[str, Any] = {}
    for key in METADATA_KEYS:
        if only_given and key not in form:
            continue
        if key in LIST_KEYS:
            values = [v for v in form.getall(key) if isinstance(v, str) and v and v != "UNKNOWN"]  # type: ignore[attr-defined]
            metadata[key] = values
        else:
            value = form.get(key, "")
            metadata[key] = "" if not isinstance(value, str) or value == "UNKNOWN" else value
    return metadata


def fill_from_archive(metadata: dict[str, Any], raw: bytes | None) -> dict[str, Any]:
    """Fill keys the form left empty from the archive's METADATA or PKG-INFO."""
    if not raw:
        return metadata
    for key, value in archives.metadata_fields(raw).items():
        if key in METADATA_KEYS and key not in ("name", "version") and not metadata.get(key):
            metadata[key] = value
    return metadata


def stage_of(request: Request, record: Any) -> StageIndex:
    """The stage object of ``record``; 404 if the index does not take uploads."""
    itype = services.indexes(request).type_of(record)
    if not isinstance(itype, StageIndex):
        raise NotFound(f"cannot upload to {record.fullname}: it is a {record.type} index")
    return itype


def validated_name_version(
    form: Mapping[str, Any], *, need_version: bool = True
) -> tuple[str, str, str]:
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
    """The uploaded file's name and stream, or a 400 (a name with a path in it is refused)."""
    content = form.get("content")
    if content is None or not hasattr(content, "file"):
        raise BadRequest("content file field not found")
    filename = str(getattr(content, "filename", None) or "")
    if not filename:
        raise BadRequest("the content file field has no filename")
    if "/" in filename or "\\" in filename or filename in (".", ".."):
        raise BadRequest(f"invalid filename {filename!r}: no paths allowed")
    return filename, content.file


def ingest(request: Request, stream: BinaryIO) -> BlobIngest:
    """Copy the upload into a temp blob (hashing, with the size limit)."""
    env = services.indexes(request).env
    blob = BlobIngest(services.blob_store(request), env.tmpdir, limit=env.max_upload_size)
    try:
        blob.write_from(stream)
    except BaseException:
        blob.discard()
        raise
    return blob


def check_form_digests(form: Mapping[str, Any], blob: BlobIngest, filename: str) -> None:
    """Refuse an upload whose content does not match the digests the client sent."""
    for field, algorithm in FORM_DIGESTS.items():
        expected = form.get(field)
        if not isinstance(expected, str) or not expected:
            continue
        if algorithm == "sha256":
            actual = blob.sha256
        else:
            with blob.reader() as f:
                hasher = _hasher(algorithm, expected)
                for chunk in iter(lambda: f.read(1 << 18), b""):
                    hasher.update(chunk)
            actual = hasher.hexdigest()
        if not hmac.compare_digest(actual, expected.strip().lower()):
            raise BadRequest(
                f"{field} of {filename} does not match the uploaded content (corrupted in transit?)"
            )


def _hasher(algorithm: str, expected: str) -> Any:
    if algorithm == "md5":
        return hashlib.md5()  # noqa: S324 - only compared with what the client sent
    # Python <= 3.11 distutils sends a 512-bit blake2b under the name blake2_256_digest
    return hashlib.blake2b(digest_size=64 if len(expected.strip()) == 128 else 32)


def _check_release_filename(filename: str, display: str, version: str) -> None:
    filenames.check_release_filename(filename, display, version)


def read_metadata(
    request: Request, f: BinaryIO, *, filename: str, name: str, version: str
) -> bytes | None:
    """Check the archive and return its METADATA/PKG-INFO, which must name this release.

    400 for a wheel without METADATA (pip could not install it), and for an archive whose
    metadata would take more than ``plugins.stages`` allows to find.
    """
    conf = stages_settings(request)
    limits = archives.Limits(conf.metadata_max_unpacked, conf.metadata_timeout)
    archives.check_archive(filename, f, limits)
    raw = archives.archive_metadata(filename, f, limits)
    if raw is None and filename.lower().endswith(".whl"):
        raise BadRequest(
            f"could not read metadata from {filename}: a wheel needs exactly one "
            f"<name>-<version>.dist-info/METADATA of at most {archives.MAX_METADATA} bytes"
        )
    filenames.check_metadata(filename, raw, name, version)
    return raw


def file_upload(
    request: Request, stage: StageIndex, form: Mapping[str, Any], who: str | None
) -> Outcome:
    """Store a release file, creating or updating its version's metadata."""
    display, project, version = validated_name_version(form)
    filename, stream = content_field(form)
    _check_release_filename(filename, display, version)
    new = NewBlobs(stage.env)
    with ingest(request, stream) as blob:
        check_form_digests(form, blob, filename)
        with blob.reader() as f:
            raw = read_metadata(request, f, filename=filename, name=display, version=version)
        full = fill_from_archive(form_metadata(form), raw)
        new.admit(
            stage, project=project, version=version, filename=filename, rel=RELEASE,
            action="upload", username=who, metadata={**full, "name": display, "version": version},
            size=blob.size, sha256=blob.sha256,
        )
        now = time.time()
        rec: dict[str, Any] = {
            "filename": filename,
            "rel": RELEASE,
            "size": blob.size,
            "upload_time": utc_iso(now),
            "last_modified": now,
            "log": [filelog.upload(who, stage.name)],
        }
        sha256 = new.commit(blob)
    if raw and filename.lower().endswith(".whl"):
        rec["core_metadata"] = {"sha256": new.put_bytes(raw)}
    rec.update(
        sha256=sha256,
        hashes={"sha256": sha256},
        requires_python=full["requires_python"] or None,
        relpath=layout.hashdir_relpath(stage.name, sha256, filename),
    )
    with new.transaction() as tx:
        existing = tx.get(layout.version_key(stage.name, project, version))
        # a first upload registers everything; later ones update only what the form carries
        given = (
            full
            if existing is None
            else fill_from_archive(form_metadata(form, only_given=True), raw)
        )
        stage.set_metadata(
            tx,
            project,
            version,
            {**given, "name": display, "version": version},
            display_name=display,
        )
        stored = new.add_file(tx, stage, project, version, rec, who=who)
    if not stored:
        return Outcome(False, IDENTICAL if stage.record.config.get("volatile") is False else "OK")
    return Outcome(True)


def submit(
    request: Request, stage: StageIndex, form: Mapping[str, Any], who: str | None
) -> Outcome:
    """Register (or overwrite) a version's metadata without a file."""
    display, project, version = validated_name_version(form)
    metadata = {**form_metadata(form), "name": display, "version": version}
    with stage.env.store.write() as tx:
        stage.set_metadata(tx, project, version, metadata, display_name=display, replace=True)
    return Outcome(True)


def doc_upload(
    request: Request, stage: StageIndex, form: Mapping[str, Any], who: str | None
) -> Outcome:
    """Store a documentation zip for a version (the newest one if none is given)."""
    display, project, version = validated_name_version(form, need_version=False)
    _filename, stream = content_field(form)
    if not version:
        versions = sorted(stage.versions(project), key=version_sort_key)
        if not versions:  # devpi-server's words (devpi-client shows them)
            raise BadRequest(
                f"doczip has no version and {project!r} has no releases to derive one from"
            )
        version = versions[-1]
    filename = f"{project}-{version}.doc.zip"
    new = NewBlobs(stage.env)
    with ingest(request, stream) as blob:
        with blob.reader() as f:
            check_doczip(f)
        known = stage.version(project, version) or {}
        new.admit(
            stage, project=project, version=version, filename=filename, rel=DOCZIP,
            action="upload", username=who,
            metadata={**{k: v for k, v in known.items() if not k.startswith("+")},
                      "name": display, "version": version},
            size=blob.size, sha256=blob.sha256,
        )
        now = time.time()
        size = blob.size
        sha256 = new.commit(blob)
    rec = {
        "filename": filename,
        "rel": DOCZIP,
        "size": size,
        "upload_time": utc_iso(now),
        "last_modified": now,
        "sha256": sha256,
        "hashes": {"sha256": sha256},
        "relpath": layout.hashdir_relpath(stage.name, sha256, filename),
        "log": [filelog.upload(who, stage.name)],
    }
    with new.transaction() as tx:
        if tx.get(layout.version_key(stage.name, project, version)) is None:
            # registered as devpi-server does: every metadata key, empty unless the form has it
            metadata = {**form_metadata(form), "name": display, "version": version}
            stage.set_metadata(tx, project, version, metadata, display_name=display)
        stored = new.add_file(tx, stage, project, version, rec, who=who)
    if not stored:
        return Outcome(False, IDENTICAL if stage.record.config.get("volatile") is False else "OK")
    return Outcome(True)


ACTIONS = {"file_upload": file_upload, "submit": submit, "doc_upload": doc_upload}
