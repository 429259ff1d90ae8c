"""``devpi-core import DUMPDIR``: a devpi-server export into an empty devpi-core server.

All or nothing, in three phases:

1. *check*: read ``dataindex.json`` and check every user, index and project (no writes);
2. *files*: stream every file once, checking its hashes, into the blob store (``--dry-run``
   only hashes). Blobs stored here are referenced by nothing yet, so readers never see them;
3. *metadata*: users, indexes, projects and file records in **one** metadata transaction.

Any error stops the import with a message naming the item; the blobs phase 2 added are then
deleted and the transaction is rolled back, so the target is left as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from devpi_core.blobs import CHUNK, BlobIngest
from devpi_core.errors import DevpiError
from devpi_core.indextypes import RestoredFile
from devpi_core.migration.dump import DumpError, read_dump
from devpi_core.migration.plan import plan_dump, user_record
from devpi_core.model.indexes import index_key
from devpi_core.model.users import user_key
from devpi_core.records import IndexRecord

if TYPE_CHECKING:
    from pathlib import Path

    from devpi_core.bootstrap import Core
    from devpi_core.interfaces import WriteTransaction
    from devpi_core.migration.dump import Dump, DumpFile
    from devpi_core.migration.plan import IndexPlan
    from devpi_core.migration.progress import Progress
    from devpi_core.model.indexes import Indexes


@dataclass
class Summary:
    """What an import or export moved."""

    users: int = 0
    indexes: int = 0
    projects: int = 0
    files: int = 0
    nbytes: int = 0
    seconds: float = 0.0
    skipped: int = 0

    def line(self, verb: str) -> str:
        """One line for the operator."""
        skipped = f", {self.skipped} mirrored files skipped" if self.skipped else ""
        return (f"{verb} {self.users} users, {self.indexes} indexes, {self.projects} projects, "
                f"{self.files} files, {self.nbytes} bytes in {self.seconds:.1f} s{skipped}")


def refuse_non_empty(core: Core) -> None:
    """Refuse a target with data: more than user root and the default mirror ``root/pypi``."""
    users = [name for name in core.users.names() if name != "root"]
    with core.store.read() as tx:
        indexes = [key.split(":", 1)[1] for key in tx.keys("index:")]
    extra = [name for name in indexes if name != "root/pypi"]
    if users or extra:
        found = ", ".join([*(f"user {u}" for u in users), *(f"index {i}" for i in extra)][:5])
        raise DumpError(f"the target server is not empty ({found}); import needs a new server "
                        "(devpi-core init --no-default-indexes, or a new --serverdir)")


def import_dump(
    core: Core,
    root: Path,
    *,
    progress: Progress,
    dry_run: bool = False,
    include_mirrored_files: bool = False,
) -> Summary:
    """Import ``root`` into ``core``'s stores (nothing is written with ``dry_run``); mirrored
    files are imported into their mirror's cache with ``include_mirrored_files``, else skipped."""
    refuse_non_empty(core)
    with progress.phase("check", 1, unit="dump") as phase:
        dump = read_dump(root)
        plans = plan_dump(core.indexes, dump, include_mirrored=include_mirrored_files)
        phase.advance()
    summary = Summary(
        users=len(dump.users),
        indexes=len(plans),
        projects=sum(len(plan.projects) for plan in plans),
        skipped=sum(plan.skipped_files for plan in plans),
    )
    before = set() if dry_run else set(core.blobs.iter_blobs())
    try:
        # one sync at the end instead of two fsyncs per file (see BlobStore.batch)
        with core.blobs.batch():
            restored = _store_files(core, dump, plans, progress=progress, dry_run=dry_run,
                                    summary=summary)
            if not dry_run:
                _write_metadata(core, dump, plans, restored, progress=progress)
    except BaseException:
        if not dry_run:
            for digest in set(core.blobs.iter_blobs()) - before:
                core.blobs.delete(digest)
        raise
    summary.seconds = progress.elapsed()
    return summary


def _store_files(
    core: Core,
    dump: Dump,
    plans: list[IndexPlan],
    *,
    progress: Progress,
    dry_run: bool,
    summary: Summary,
) -> dict[int, RestoredFile]:
    restored: dict[int, RestoredFile] = {}
    todo = [f for plan in plans for project in plan.projects.values() for f in project.files]
    with progress.phase("files", len(todo)) as phase:
        for dumpfile in todo:
            path = dump.root / dumpfile.path
            if not path.is_file():
                raise DumpError(f"file {dumpfile.path}: missing from the dump")
            with path.open("rb") as f:
                sha256, size = (_hash_only(f, dumpfile) if dry_run
                                else _ingest(core, f, dumpfile))
            restored[id(dumpfile)] = RestoredFile(
                filename=dumpfile.filename, rel=dumpfile.rel, version=dumpfile.version,
                sha256=sha256, size=size, hashes=dict(dumpfile.hashes),
                log=dumpfile.log if dumpfile.log is not None
                else [{"what": "upload", "who": "<import>", "dst": ""}],
                last_modified=dumpfile.last_modified, upload_time=dumpfile.upload_time,
                for_filename=dumpfile.for_filename, url=dumpfile.url,
            )
            phase.advance(1, size)
            summary.files += 1
            summary.nbytes += size
    return restored


def _check(dumpfile: DumpFile, got: dict[str, str]) -> None:
    for name, expected in dumpfile.hashes.items():
        if got.get(name, expected) != expected:
            raise DumpError(f"file {dumpfile.path}: {name} mismatch: the dump says {expected}, "
                            f"the file has {got[name]}")


def _hash_only(f: BinaryIO, dumpfile: DumpFile) -> tuple[str, int]:
    hashers = {name: hashlib.new(name) for name in {"sha256", *dumpfile.hashes}}
    size = 0
    while chunk := f.read(CHUNK):
        size += len(chunk)
        for h in hashers.values():
            h.update(chunk)
    _check(dumpfile, {name: h.hexdigest() for name, h in hashers.items()})
    return hashers["sha256"].hexdigest(), size


def _ingest(core: Core, f: BinaryIO, dumpfile: DumpFile) -> tuple[str, int]:
    with BlobIngest(core.blobs, core.serverdir.tmpdir) as blob:
        for name in dumpfile.hashes:
            blob.also_hash(name)
        blob.write_from(f)
        _check(dumpfile, {name: blob.hexdigest(name) for name in dumpfile.hashes})
        blob.commit()
        return blob.sha256, blob.size


def _write_metadata(
    core: Core,
    dump: Dump,
    plans: list[IndexPlan],
    restored: dict[int, RestoredFile],
    *,
    progress: Progress,
) -> None:
    indexes = core.indexes
    with progress.phase("metadata", sum(len(p.projects) for p in plans), unit="project") as phase, \
            core.store.write() as tx:
        for name, data in dump.users.items():
            tx.set(user_key(name), user_record(name, data))
        for plan in plans:
            existing = indexes.get(plan.fullname, tx)
            if existing is not None:  # the default root/pypi of an initialised server
                _drop(indexes, tx, existing)
            tx.set(index_key(plan.fullname), plan.config)
        for plan in plans:
            user, name = plan.fullname.split("/", 1)
            index_type = indexes.type_of(IndexRecord(user, name, plan.config))
            for project in plan.projects.values():
                try:
                    index_type.restore_project(
                        tx, project.name, display_name=project.display,
                        versions=project.versions,
                        files=[restored[id(f)] for f in project.files],
                    )
                except DevpiError as exc:
                    raise DumpError(f"index {plan.fullname}: project {project.name}: "
                                    f"{exc.message}") from None
                phase.advance()


def _drop(indexes: Indexes, tx: WriteTransaction, record: IndexRecord) -> None:
    with contextlib.suppress(DevpiError):  # its plugin may be off: nothing of it to drop then
        indexes.type_of(record).delete_all(tx)
